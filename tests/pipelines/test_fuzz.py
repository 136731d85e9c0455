"""Property tests of the pipeline loader: any text fails only as PipelineInvalid with positions inside the
document, and valid random pipelines round-trip through to_yaml and parse."""

import re
import string
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longtail_mcp.pipelines.expressions import is_template
from longtail_mcp.pipelines.loader import PipelineInvalid, ToolInfo, ToolTable, dependencies, order, parse, to_yaml
from longtail_mcp.pipelines.model import Pipeline
from system_servers import SERVERS

TOOLS = ToolTable({f"{server}/{spec.name}": ToolInfo(spec.read_only, spec.input_schema())
                   for server, module in SERVERS.items() for spec in module.TOOLS})
BOUNDED = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
YAML_LINE_BREAK = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")


def parse_or_problems(text: str) -> Pipeline | None:
    """Parse; a failure must be PipelineInvalid whose every problem points inside the document."""
    try:
        pipeline = parse(text, tools=TOOLS)
    except PipelineInvalid as exc:
        lines = YAML_LINE_BREAK.split(text)
        assert exc.problems
        for problem in exc.problems:
            assert 1 <= problem.line <= len(lines), (problem, len(lines))
            assert 1 <= problem.column <= len(lines[problem.line - 1]) + 1, problem
            assert problem.message
        assert exc.message.count("\n") == min(len(exc.problems), 50) + (len(exc.problems) > 50)
        return None
    assert parse(to_yaml(pipeline), tools=TOOLS) == pipeline  # whatever parses also round-trips
    return pipeline


# -- (a) arbitrary text -----------------------------------------------------------------------------------

@BOUNDED
@given(st.text(max_size=300))
def test_arbitrary_text_fails_only_as_pipeline_invalid(text: str) -> None:
    parse_or_problems(text)


@BOUNDED
@given(st.text(alphabet="name: steps-id\n tool{}[]'\"#&*!|>%,?\t\r\x85\u2028abc/_0123456789.", max_size=300))
def test_yaml_punctuation_fails_only_as_pipeline_invalid(text: str) -> None:
    parse_or_problems(text)


# -- (b) YAML-ish documents under pipeline keys --------------------------------------------------------------

FRAGMENTS = ["{{", "}}", "{%", "%}", "{#", "#}", "steps.", "inputs.", "item", "index", "run.id", "loop.", "|", " | ",
             "tojson", "fromjson", "join", "length", "__class__", "__globals__", "'", '"', " ", "a", "b", "rates", ".",
             "[", "]", "(", ")", "0", "1", "for x in ", "endfor", "if ", "endif", "set ", "=", "~", "*", "**", "10**9",
             "range(", "macro", "\n", ":", "#", "- ", "!", "&", "{", "}"]
expression = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=8), expression)
key = st.one_of(st.sampled_from(["type", "properties", "required", "url", "path", "content", "sql", "x", "<<"]),
                st.text(max_size=6))
json_value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(key, inner, max_size=4)), max_leaves=12)
step_id = st.one_of(st.sampled_from(["a", "b", "c", "rates", "Bad id"]), st.text(max_size=4))
tool_name = st.one_of(st.sampled_from([*TOOLS.names()[:12], "http-fetch/fetch_json", "files/write_file", "nope/x",
                                       "write_file"]), json_value)
human = st.one_of(st.fixed_dictionaries({"role": st.sampled_from(["reviewer", ""]), "message": expression},
                                        optional={"form_schema": json_value, "priority": st.integers(0, 6),
                                                  "data": json_value}), json_value)
step = st.one_of(st.fixed_dictionaries({}, optional={
    "id": step_id, "tool": tool_name, "human": human,
    "args": st.one_of(st.dictionaries(key, json_value, max_size=4), json_value), "when": expression,
    "for_each": expression, "needs": st.lists(step_id, max_size=3), "retries": st.integers(-1, 12),
    "concurrency": st.integers(0, 70), "description": st.text(max_size=8), "bogus": json_value,
}), json_value)
schema = st.one_of(st.just({"type": "object", "properties": {"base": {"type": "string"}}}),
                   st.just({"type": "object"}), json_value)
document = st.one_of(st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.sampled_from(["p", "save_rates", "Bad"]), json_value),
    "steps": st.one_of(st.lists(step, max_size=5), json_value), "input_schema": schema, "output_schema": schema,
    "output": json_value, "schedule": st.one_of(st.fixed_dictionaries(
        {"cron": st.sampled_from(["0 6 * * *", "*/5 * * * * *", "61 * * * *", "", "x"])},
        optional={"input": json_value}), json_value),
    "tags": json_value, "access": json_value, "examples": json_value, "prompt_template": json_value,
    "extra": json_value,
}), json_value)


@BOUNDED
@given(document, st.sampled_from([None, "block", "flow"]), st.data())
def test_yamlish_documents_parse_or_report_positions_inside_the_document(
        value: Any, style: str | None, data: st.DataObject) -> None:
    text = yaml.safe_dump(value, allow_unicode=True, sort_keys=False,
                          default_flow_style={None: None, "block": False, "flow": True}[style])
    if text and data.draw(st.booleans(), label="mutate"):  # now and then break it: a char dropped or added
        at = data.draw(st.integers(0, len(text) - 1), label="at")
        extra = data.draw(st.sampled_from(["", " ", "\n", ":", "-", "[", "{", "'", '"', "\t", "&x ", "*x"]),
                          label="put")
        text = text[:at] + extra + text[at + 1:]
    parse_or_problems(text)


# -- (c) valid random pipelines round-trip -------------------------------------------------------------------

plain_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30).filter(
    lambda s: not is_template(s))
safe_text = st.text(alphabet=string.ascii_letters + string.digits + " -_./:é€\n\t'\"#&*!|>%@`,[]", max_size=30).filter(
    lambda s: not is_template(s))


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[Pipeline, dict[str, set[str]]]:
    """A random valid DAG: each step reads or needs some steps generated before it; the file order is shuffled."""
    count = draw(st.integers(1, 7))
    ids = [f"s{i}_{draw(st.sampled_from(['fetch', 'save', 'ask', 'q']))}" for i in range(count)]
    steps, expected = [], {}
    for i, sid in enumerate(ids):
        kind = draw(st.sampled_from(["fetch", "write", "sql", "human"]))
        reads = draw(st.lists(st.sampled_from(ids[:i]), unique=True, max_size=3)) if i and kind != "sql" else []
        needs = draw(st.lists(st.sampled_from(ids[:i]), unique=True, max_size=2)) if i else []
        expected[sid] = set(reads) | set(needs)
        wires = [f"{{{{ steps.{r}.data | tojson }}}}" for r in reads]
        text = draw(st.one_of(plain_text, safe_text))
        step: dict[str, Any] = {"id": sid}
        looped = draw(st.booleans())
        item = " {{ item }} {{ index }}" if looped else ""
        if kind == "fetch":
            step |= {"tool": "http-fetch/fetch_json", "args": {"url": "https://x.example/" + "/".join(wires) + item}}
        elif kind == "write":
            step |= {"tool": "files/write_file",
                     "args": {"path": "{{ inputs.base }}" + item, "content": " ".join([text, *wires])}}
        elif kind == "sql":
            step |= {"tool": "db-query/run_sql",
                     "args": {"sql": text or "select 1", "max_rows": draw(st.integers(1, 9))}}
        else:
            data = draw(st.dictionaries(safe_text, st.one_of(plain_text, st.integers(), st.floats(allow_nan=False,
                                        allow_infinity=False), st.booleans(), st.none()), max_size=3))
            step["human"] = {"role": "reviewer", "message": " ".join([text.strip() or "ok", *wires]) + item,
                             "data": data, "priority": draw(st.integers(1, 5))}
        if looped:
            step["for_each"] = f"{{{{ steps.{reads[0]}.data.items }}}}" if reads else "{{ [1, 2, 3] }}"
            step["concurrency"] = draw(st.integers(1, 64))
        if draw(st.booleans()):
            step["when"] = "{{ inputs.base != " + repr(draw(safe_text)) + " }}"
        if needs:
            step["needs"] = needs
        if draw(st.booleans()):
            step["description"] = draw(plain_text)
        steps.append(step)
    steps = draw(st.permutations(steps))
    pipeline = Pipeline.model_validate({
        "name": draw(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)), "description": draw(plain_text),
        "tags": draw(st.lists(safe_text, max_size=4)),
        "input_schema": {"type": "object", "properties": {"base": {"type": "string", "description": draw(plain_text)}}},
        "steps": steps,
        "output": draw(st.one_of(st.none(), st.just({"all": [f"{{{{ steps.{sid}.data }}}}" for sid in ids]}))),
        "schedule": draw(st.one_of(st.none(), st.just({"cron": "0 6 * * *", "input": {"base": "EUR"}}))),
        "access": {"roles": draw(st.lists(safe_text, max_size=2))},
        "prompt_template": draw(st.one_of(st.none(), plain_text)),
        "examples": draw(st.lists(st.fixed_dictionaries({"base": plain_text}), max_size=2)),
    })
    return pipeline, expected


@BOUNDED
@given(pipelines())
def test_valid_random_pipelines_round_trip_and_order_follows_the_dag(generated: tuple[Pipeline, dict[str, set[str]]]
                                                                     ) -> None:
    pipeline, expected = generated
    text = to_yaml(pipeline)
    assert parse(text, tools=TOOLS) == pipeline, text
    assert dependencies(pipeline) == expected
    position = {s.id: i for i, s in enumerate(pipeline.steps)}
    done: list[str] = []
    for sid in order(pipeline):  # each step is the earliest in the file of those whose dependencies are done
        ready = [s for s in position if s not in done and expected[s] <= set(done)]
        assert sid == min(ready, key=position.__getitem__)
        done.append(sid)
    assert sorted(done) == sorted(position)

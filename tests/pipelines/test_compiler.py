"""Compiling a run's journal into a draft pipeline: pure functions over hand-built exports, no database.

Inputs come from the run's input and the request, wires from earlier results, the rest stays constant;
repeated calls over a list become a loop; failed attempts, approvals and dead ends leave no step;
escalations become human steps; effects keep their order; compile hints are honoured; the same journal
always gives the same pipeline.
"""

import json
from collections.abc import Iterable
from itertools import chain, islice
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.nativetypes import NativeCodeGenerator, NativeTemplate
from jinja2.sandbox import SandboxedEnvironment

from longtail_mcp.errors import InvalidInput
from longtail_mcp.pipelines.compiler import Compiled, ToolFacts, compile_run
from longtail_mcp.pipelines.spelling import prompt_template

FACTS = {
    "http-fetch/fetch_json": ToolFacts(read_only=True),
    "files/list_dir": ToolFacts(read_only=True),
    "files/read_file": ToolFacts(read_only=True),
    "db-query/run_sql": ToolFacts(read_only=True),
    "files/write_file": ToolFacts(read_only=False),
    "mail/send": ToolFacts(read_only=False),
}


def tool(seq: int, name: str, args: dict[str, Any], output: Any = None, *, status: str = "completed",
         error: dict[str, Any] | None = None) -> dict[str, Any]:
    """A journal entry of kind `tool`, as `RunExport.to_json()` has it."""
    return {"seq": seq, "kind": "tool", "name": name, "status": status, "input": {"args": [args], "kwargs": {}},
            "output": output, "error": error, "attempts": 1}


def wait(seq: int, role: str, escalation_id: str, resolution: Any, *, status: str = "completed") -> dict[str, Any]:
    return {"seq": seq, "kind": "escalation", "name": role, "status": status,
            "input": {"escalation_id": escalation_id}, "output": resolution, "error": None, "attempts": 1}


def export(*steps: dict[str, Any], input: Any = None, result: Any = None, name: str = "save-rates",
           run_id: str = "run-1") -> dict[str, Any]:
    return {"run": {"id": run_id, "name": name, "status": "completed", "input": input, "result": result},
            "steps": list(steps), "signals": []}


def compile_(exp: dict[str, Any], facts: dict[str, ToolFacts] | None = None, **options: Any) -> Compiled:
    known = FACTS if facts is None else {**FACTS, **facts}
    return compile_run(exp, tools=known.get, **options)


def steps(compiled: Compiled) -> list[dict[str, Any]]:
    return [s.model_dump(exclude_defaults=True) for s in compiled.pipeline.steps]


# -- rendering compiled expressions the way a sandboxed native Jinja environment does


def _concat(values: Iterable[Any]) -> Any:
    """One expression keeps its value's type; anything else is text (no literal_eval of strings)."""
    head = list(islice(values, 2))
    if not head:
        return None
    if len(head) == 1:
        return head[0]
    return "".join(str(v) for v in chain(head, values))


class _Env(SandboxedEnvironment):
    code_generator_class = NativeCodeGenerator
    concat = staticmethod(_concat)


class _Template(NativeTemplate):
    environment_class = _Env


_Env.template_class = _Template
ENV = _Env(undefined=StrictUndefined)


def render(value: Any, scope: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return ENV.from_string(value).render(scope) if "{" in value else value
    if isinstance(value, dict):
        return {k: render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    return value


# -- the main case, exactly

RATES = {"status": 200, "data": {"base": "EUR", "currencies": ["USD", "GBP", "JPY"],
                                 "rates": {"USD": 1.1, "GBP": 0.85, "JPY": 160.5}}}
RATES_RUN = export(
    tool(1, "http-fetch/fetch_json", {"url": "https://rates.example/latest?base=EUR"}, RATES),
    tool(2, "db-query/run_sql", {"sql": "SELECT count(*) FROM audit"}, {"rows": [[7]]}),
    tool(3, "files/write_file", {"path": "out/rates.json", "content": json.dumps(RATES["data"]["rates"])},
         {"path": "out/rates.json", "bytes": 41}),
    tool(4, "files/write_file", {"path": "out/rates.json.USD", "content": "currency USD"}, {"path": "out/USD"}),
    tool(5, "files/write_file", {"path": "out/rates.json.GBP", "content": "currency GBP"}, {"path": "out/GBP"}),
    tool(6, "files/write_file", {"path": "out/rates.json.JPY", "content": "currency JPY"}, {"path": "out/JPY"}),
    input={"base": "EUR", "path": "out/rates.json"},
    result={"saved": "out/rates.json", "bytes": 41, "last": "out/JPY", "ok": True},
)


def test_a_run_compiles_to_inputs_wires_a_loop_and_an_output() -> None:
    compiled = compile_(RATES_RUN, request="Save today's EUR rates to out/rates.json")

    assert compiled.pipeline.model_dump(exclude_defaults=True) == {
        "name": "save_rates_pipeline",
        "description": "Save today's {base} rates to {path}. Compiled from run run-1: http-fetch/fetch_json → "
                       "files/write_file → "
                       "files/write_file (for each)",
        "tags": ["http-fetch", "files"],
        "input_schema": {"type": "object", "required": ["base", "path"], "properties": {
            "base": {"type": "string", "examples": ["EUR"]},
            "path": {"type": "string", "examples": ["out/rates.json"]}}},
        "steps": [
            {"id": "fetch_json", "tool": "http-fetch/fetch_json",
             "args": {"url": "https://rates.example/latest?base={{ inputs.base }}"}},
            {"id": "write_file", "tool": "files/write_file",
             "args": {"path": "{{ inputs.path }}", "content": "{{ steps.fetch_json.data.rates | tojson }}"}},
            {"id": "each_write_file", "tool": "files/write_file",
             "for_each": "{{ steps.fetch_json.data.currencies }}",
             "args": {"path": "{{ inputs.path }}.{{ item }}", "content": "currency {{ item }}"},
             "needs": ["write_file"]},
        ],
        "output": {"saved": "{{ inputs.path }}", "bytes": "{{ steps.write_file.bytes }}",
                   "last": "{{ steps.each_write_file[2].path }}", "ok": True},
        "prompt_template": "Save today's {base} rates to {path}",
        "examples": [{"base": "EUR", "path": "out/rates.json"}],
    }


def test_the_compiled_arguments_evaluate_to_the_recorded_ones() -> None:
    compiled = compile_(RATES_RUN)
    scope = {"inputs": {"base": "EUR", "path": "out/rates.json"},
             "steps": {"fetch_json": RATES, "write_file": {"path": "out/rates.json", "bytes": 41}}}
    fetch, write, each = compiled.pipeline.steps

    assert render(fetch.args, scope) == {"url": "https://rates.example/latest?base=EUR"}
    assert json.loads(render(write.args, scope)["content"]) == RATES["data"]["rates"]
    items = render(each.for_each, scope)
    assert [render(each.args, {**scope, "item": item}) for item in items] == [
        {"path": "out/rates.json.USD", "content": "currency USD"},
        {"path": "out/rates.json.GBP", "content": "currency GBP"},
        {"path": "out/rates.json.JPY", "content": "currency JPY"},
    ]


def test_the_notes_say_what_was_decided_and_why() -> None:
    notes = compile_(RATES_RUN, request="Save today's EUR rates to out/rates.json").notes

    assert notes == [
        "loop: 3 calls of files/write_file (seq 4-6) over the items of an earlier result become one for_each step",
        "dropped db-query/run_sql at seq 2: read-only and nothing used its result",
        "step fetch_json: http-fetch/fetch_json at seq 1; url ← https://rates.example/latest?base={{ inputs.base }}",
        "step write_file: files/write_file at seq 3; path ← {{ inputs.path }}, "
        "content ← {{ steps.fetch_json.data.rates | tojson }}",
        "step each_write_file: files/write_file at seq 4-6, for each item of steps.fetch_json.data.currencies; "
        "path ← {{ inputs.path }}.{{ item }}, content ← currency {{ item }}",
        "step each_write_file needs write_file: steps with effects keep their recorded order",
        "input 'base': from the run's input",
        "input 'path': from the run's input",
        "prompt template: Save today's {base} rates to {path}",
    ]


def test_the_same_journal_always_compiles_to_the_same_pipeline() -> None:
    first = compile_(RATES_RUN, request="Save today's EUR rates to out/rates.json")
    again = compile_(json.loads(json.dumps(RATES_RUN)), request="Save today's EUR rates to out/rates.json")

    assert first.pipeline.model_dump() == again.pipeline.model_dump()
    assert first.notes == again.notes
    assert json.dumps(first.pipeline.model_dump()) == json.dumps(again.pipeline.model_dump())  # key order too


# -- inputs


def test_an_argument_equal_to_an_input_becomes_that_input_whatever_its_type() -> None:
    compiled = compile_(export(
        tool(1, "db-query/run_sql", {"sql": "SELECT * FROM t LIMIT 25", "limit": 25, "tags": ["a", "b"]},
             {"rows": []}),
        input={"limit": 25, "tags": ["a", "b"]}, result={"rows": []}))

    assert steps(compiled)[0]["args"] == {"sql": "SELECT * FROM t LIMIT 25", "limit": "{{ inputs.limit }}",
                                          "tags": "{{ inputs.tags }}"}
    assert compiled.pipeline.input_schema == {"type": "object", "required": ["limit", "tags"], "properties": {
        "limit": {"type": "integer", "examples": [25]}, "tags": {"type": "array", "examples": [["a", "b"]]}}}


def test_an_input_inside_a_longer_string_becomes_a_text_template() -> None:
    compiled = compile_(export(
        tool(1, "files/write_file", {"path": "reports/EURUSD/EUR.txt", "content": "pair EURUSD"}, {"path": "p"}),
        input={"pair": "EURUSD", "base": "EUR", "x": "ab"}, result=None))

    # The longest input first (EURUSD before EUR); a two-character input is never searched inside text.
    assert steps(compiled)[0]["args"] == {"path": "reports/{{ inputs.pair }}/{{ inputs.base }}.txt",
                                          "content": "pair {{ inputs.pair }}"}
    assert "left out input 'x' (from the run's input): nothing uses it" in compiled.notes


def test_a_value_inside_an_object_input_is_read_by_its_path() -> None:
    compiled = compile_(export(
        tool(1, "mail/send", {"to": "ann@example.com", "cc": ["lead@example.com"]}, {"sent": "yes"}),
        input={"user": {"name": "Ann", "email": "ann@example.com", "team": {"lead": "lead@example.com"}}},
        result=None))

    assert steps(compiled)[0]["args"] == {"to": "{{ inputs.user.email }}", "cc": ["{{ inputs.user.team.lead }}"]}


def test_a_common_value_matches_only_an_input_of_the_same_name() -> None:
    compiled = compile_(export(
        tool(1, "files/write_file", {"path": "a.txt", "overwrite": True, "make_dirs": True, "mode": "ab"},
             {"path": "a.txt"}),
        input={"overwrite": True, "dry_run": True, "mode": "ab"}, result=None))

    assert steps(compiled)[0]["args"] == {"path": "a.txt", "overwrite": "{{ inputs.overwrite }}",
                                          "make_dirs": True, "mode": "{{ inputs.mode }}"}


def test_a_run_input_that_is_not_an_object_is_the_input_named_input() -> None:
    compiled = compile_(export(tool(1, "http-fetch/fetch_json", {"url": "https://x.example/a"}, {"ok": "yes"}),
                               input="https://x.example/a", result={"ok": "yes"}))

    assert steps(compiled)[0]["args"] == {"url": "{{ inputs.input }}"}
    assert compiled.pipeline.input_schema["required"] == ["input"]


def test_values_stated_in_the_request_become_inputs_named_after_their_argument() -> None:
    compiled = compile_(export(
        tool(1, "http-fetch/fetch_json", {"url": "https://api.example/v1/users", "limit": 30},
             {"users": [{"name": "ann"}]}),
        tool(2, "files/write_file", {"path": "users.json", "content": "ann"}, {"path": "users.json"}),
        input={"prompt": "whatever"}, result=None),
        request="Fetch the first 30 of https://api.example/v1/users and save them to users.json")

    assert steps(compiled)[0]["args"] == {"url": "{{ inputs.url }}", "limit": "{{ inputs.limit }}"}
    assert steps(compiled)[1]["args"] == {"path": "{{ inputs.path }}",
                                          "content": "{{ steps.fetch_json.users[0].name }}"}
    assert compiled.pipeline.prompt_template == "Fetch the first {limit} of {url} and save them to {path}"
    assert compiled.pipeline.examples == [{"url": "https://api.example/v1/users", "limit": 30, "path": "users.json"}]
    assert "input 'url': from the request (url of http-fetch/fetch_json at seq 1)" in compiled.notes


def test_the_prompt_template_replaces_the_longest_value_first_and_keeps_literal_braces() -> None:
    assert prompt_template("copy {x} from EUR to EURUSD", [("base", "EUR"), ("pair", "EURUSD")]) == \
        "copy {{x}} from {base} to {pair}"
    assert prompt_template("report for EU and EUROPE", [("region", "EU")]) == "report for {region} and EUROPE"
    assert prompt_template("nothing here", [("base", "EUR"), ("n", 5), ("flag", True)]) is None


def test_no_prompt_template_when_no_input_appears_in_the_request() -> None:
    compiled = compile_(RATES_RUN, request="Do the usual")

    assert compiled.pipeline.prompt_template is None
    assert "no prompt template: no input's value appears in the request" in compiled.notes


# -- wires and constants


ITEMS = {"data": {"items": [{"id": "a-100", "name": "alpha"}, {"id": "b-200", "name": "beta"}],
                  "x-total": 42, "owner": {"team": {"email": "ops@example.com"}}}}


def test_a_value_from_an_earlier_result_is_wired_by_its_path() -> None:
    compiled = compile_(export(
        tool(1, "http-fetch/fetch_json", {"url": "https://api.example/items"}, ITEMS),
        tool(2, "mail/send", {"to": "ops@example.com", "item": "b-200", "count": 42, "first": {"id": "a-100",
                                                                                               "name": "alpha"}},
             {"sent": True}),
        result={"sent": True}))

    assert steps(compiled) == [
        {"id": "fetch_json", "tool": "http-fetch/fetch_json", "args": {"url": "https://api.example/items"}},
        # `items` would be the dict's method and `x-total` is no identifier: both are subscripts.
        {"id": "send", "tool": "mail/send", "args": {
            "to": "{{ steps.fetch_json.data.owner.team.email }}",
            "item": "{{ steps.fetch_json.data['items'][1].id }}",
            "count": "{{ steps.fetch_json.data['x-total'] }}",
            "first": "{{ steps.fetch_json.data['items'][0] }}"}},
    ]
    assert compiled.pipeline.output == "{{ steps.send }}"
    scope = {"steps": {"fetch_json": ITEMS}}
    assert render(compiled.pipeline.steps[1].args, scope) == {
        "to": "ops@example.com", "item": "b-200", "count": 42, "first": {"id": "a-100", "name": "alpha"}}


def test_the_most_recent_step_and_then_the_shortest_path_win() -> None:
    compiled = compile_(export(
        tool(1, "files/read_file", {"path": "token.txt"}, {"token": "tok-123"}),
        tool(2, "http-fetch/fetch_json", {"url": "https://b.example"},
             {"deep": {"er": {"token": "tok-123"}}, "token": "tok-123"}),
        tool(3, "mail/send", {"body": "tok-123"}, {"sent": "yes"}),
        result=None))

    assert steps(compiled)[-1]["args"] == {"body": "{{ steps.fetch_json.token }}"}
    assert [s["id"] for s in steps(compiled)] == ["fetch_json", "send"]  # the read fed nothing: dropped


def test_short_strings_booleans_null_zero_and_one_are_never_wired() -> None:
    compiled = compile_(export(
        tool(1, "http-fetch/fetch_json", {"url": "https://a.example"},
             {"code": "ok", "flag": True, "none": None, "zero": 0, "one": 1, "empty": "", "list": []}),
        tool(2, "mail/send", {"code": "ok", "flag": True, "none": None, "zero": 0, "one": 1, "empty": "", "list": []},
             {"sent": "yes"}),
        result=None))

    assert steps(compiled)[-1]["args"] == {"code": "ok", "flag": True, "none": None, "zero": 0, "one": 1,
                                          "empty": "", "list": []}
    assert len(steps(compiled)) == 1  # so the fetch fed nothing


def test_constant_text_that_looks_like_a_template_still_renders_as_itself() -> None:
    content = "Hello {{ name }} {% if x %}{# note #}"
    compiled = compile_(export(tool(1, "files/write_file", {"path": "t.j2", "content": content}, {"path": "t.j2"}),
                               input={"dir": "templates"}, result=None))

    args = compiled.pipeline.steps[0].args
    assert args["content"] != content
    assert render(args, {}) == {"path": "t.j2", "content": content}


def test_the_json_text_of_an_earlier_result_is_that_result_as_json() -> None:
    compiled = compile_(export(
        tool(1, "db-query/run_sql", {"sql": "SELECT 1"}, {"rows": [["a", 1], ["b", 2]]}),
        tool(2, "files/write_file", {"path": "rows.json", "content": json.dumps([["a", 1], ["b", 2]], indent=2)},
             {"path": "rows.json"}),
        result=None))

    assert steps(compiled)[1]["args"]["content"] == "{{ steps.run_sql.rows | tojson }}"


def test_text_quoting_a_results_json_reads_the_result_and_the_json_text_of_an_input_wins_over_its_parts() -> None:
    rows = {"role": "reviewer", "rows": [{"message": "check invoice 7", "role": "reviewer"}]}
    quoted = json.dumps(rows, sort_keys=True, separators=(",", ":"))
    compiled = compile_(export(
        tool(1, "db-query/run_sql", {"sql": "SELECT 1", "role": "reviewer"}, rows),
        tool(2, "files/write_file", {"path": "out.json", "content": quoted}, {"path": "out.json"}),
        input={"role": "reviewer"}, result={"answer": f"Role reviewer has: {quoted}."}))

    assert steps(compiled)[1]["args"]["content"] == "{{ steps.run_sql | tojson }}", "not a snapshot with inputs"
    assert compiled.pipeline.output == {"answer": "Role {{ inputs.role }} has: {{ steps.run_sql | tojson }}."}


# -- loops


def test_calls_over_an_input_list_of_scalars_become_one_for_each() -> None:
    compiled = compile_(export(
        *[tool(n, "http-fetch/fetch_json", {"url": f"https://api.example/users/{u}", "fields": "all"},
               {"user": u}) for n, u in enumerate(["ann", "bob", "cyd", "dee"], 1)],
        input={"users": ["ann", "bob", "cyd", "dee"]}, result=[{"user": u} for u in ["ann", "bob", "cyd", "dee"]]))

    assert steps(compiled) == [{
        "id": "each_fetch_json", "tool": "http-fetch/fetch_json", "for_each": "{{ inputs.users }}",
        "args": {"url": "https://api.example/users/{{ item }}", "fields": "all"}}]
    assert compiled.pipeline.output == "{{ steps.each_fetch_json }}"


def test_calls_over_a_list_of_objects_read_the_matching_field() -> None:
    entries = [{"name": "a.txt", "size": 10}, {"name": "b.txt", "size": 20}, {"name": "c.txt", "size": 30}]
    compiled = compile_(export(
        tool(1, "files/list_dir", {"path": "docs"}, {"entries": entries}),
        *[tool(n, "files/read_file", {"path": f"docs/{e['name']}", "name": e["name"]}, {"content": f"text {n}"})
          for n, e in enumerate(entries, 2)],
        tool(5, "mail/send", {"body": "text 3"}, {"sent": "yes"}),
        input={"dir": "docs"}, result=None))

    assert steps(compiled) == [
        {"id": "list_dir", "tool": "files/list_dir", "args": {"path": "{{ inputs.dir }}"}},
        {"id": "each_read_file", "tool": "files/read_file", "for_each": "{{ steps.list_dir.entries }}",
         "args": {"path": "{{ inputs.dir }}/{{ item.name }}", "name": "{{ item.name }}"}},
        {"id": "send", "tool": "mail/send", "args": {"body": "{{ steps.each_read_file[1].content }}"}},
    ]
    each = compiled.pipeline.steps[1]
    scope = {"inputs": {"dir": "docs"}, "steps": {"list_dir": {"entries": entries}}}
    assert [render(each.args, {**scope, "item": e}) for e in render(each.for_each, scope)] == [
        {"path": "docs/a.txt", "name": "a.txt"}, {"path": "docs/b.txt", "name": "b.txt"},
        {"path": "docs/c.txt", "name": "c.txt"}]


def test_two_calls_over_a_list_stay_two_steps() -> None:
    compiled = compile_(export(
        tool(1, "files/list_dir", {"path": "docs"}, {"entries": ["a.txt", "b.txt"]}),
        tool(2, "files/write_file", {"path": "copy/a.txt", "content": "x"}, {"path": "copy/a.txt"}),
        tool(3, "files/write_file", {"path": "copy/b.txt", "content": "x"}, {"path": "copy/b.txt"}),
        result=None))

    assert [s["id"] for s in steps(compiled)] == ["write_file", "write_file_2"]
    assert steps(compiled)[1]["args"] == {"path": "copy/b.txt", "content": "x"}


def test_calls_that_cover_only_part_of_a_list_are_not_a_loop() -> None:
    compiled = compile_(export(
        tool(1, "files/list_dir", {"path": "docs"}, {"entries": ["a.txt", "b.txt", "c.txt", "d.txt"]}),
        *[tool(n, "files/write_file", {"path": f"copy/{f}", "content": "x"}, {"path": f})
          for n, f in enumerate(["a.txt", "b.txt", "c.txt"], 2)],
        result=None))

    assert [s["id"] for s in steps(compiled)] == ["write_file", "write_file_2", "write_file_3"]


# -- what the journal holds besides completed calls


def test_a_call_that_failed_and_was_retried_appears_once() -> None:
    compiled = compile_(export(
        tool(1, "http-fetch/fetch_json", {"url": "https://a.example"}, None, status="failed",
             error={"code": "unavailable", "message": "timed out"}),
        tool(2, "http-fetch/fetch_json", {"url": "https://a.example"}, {"v": "value-1"}),
        result={"v": "value-1"}))

    assert steps(compiled) == [{"id": "fetch_json", "tool": "http-fetch/fetch_json",
                                "args": {"url": "https://a.example"}}]
    assert "dropped http-fetch/fetch_json at seq 1: failed, and the same call completed at seq 2" in compiled.notes


def test_a_call_that_failed_for_good_is_dropped_with_a_note() -> None:
    compiled = compile_(export(
        tool(1, "mail/send", {"to": "nobody@example.com"}, None, status="failed",
             error={"code": "invalid_input", "message": "no such mailbox\ntraceback..."}),
        tool(2, "mail/send", {"to": "ops@example.com"}, {"sent": "yes"}),
        tool(3, "files/write_file", {"path": "p.txt"}, None, status="retrying",
             error={"code": "unavailable", "message": "disk"}),
        result=None))

    assert steps(compiled) == [{"id": "send", "tool": "mail/send", "args": {"to": "ops@example.com"}}]
    assert compiled.notes[:2] == [
        "dropped mail/send at seq 1: it failed for good (invalid_input: no such mailbox)",
        "dropped files/write_file at seq 3: it had not finished (retrying)",
    ]


def test_an_approval_flow_compiles_to_one_step_without_the_approval() -> None:
    compiled = compile_(export(
        tool(1, "files/write_file", {"path": ".env", "content": "TOKEN=x1"}, None, status="failed",
             error={"code": "denied", "message": "path on the deny list", "rule": "deny_list"}),
        wait(2, "approver", "esc-1", {"approved": True}),
        tool(3, "files/write_file", {"path": ".env", "content": "TOKEN=x1", "approval_id": "esc-1"},
             {"path": ".env"}),
        result={"env": ".env"}))

    assert steps(compiled) == [{"id": "write_file", "tool": "files/write_file",
                                "args": {"path": ".env", "content": "TOKEN=x1"}}]
    assert compiled.notes[:2] == [
        "approval flow: files/write_file refused at seq 1 and approved at seq 3 is one step, without approval_id "
        "(the pipeline asks again when it runs)",
        "seq 2: the approval asked of 'approver' is not a step of its own (the pipeline asks again if its call "
        "is refused)",
    ]


def test_other_journal_entries_are_ignored_with_a_note() -> None:
    compiled = compile_(export(
        {"seq": 1, "kind": "step", "name": "pick", "status": "completed", "output": "x"},
        {"seq": 2, "kind": "sleep", "name": "sleep", "status": "completed"},
        tool(3, "mail/send", {"to": "ops@example.com"}, {"sent": "yes"}),
        result=None))

    assert len(compiled.pipeline.steps) == 1
    assert ("ignored 2 journal entries of other kinds (sleep: 1, step: 1): a pipeline holds tool calls and human "
            "steps only") in compiled.notes


def test_a_journal_with_nothing_to_compile_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no completed tool call"):
        compile_(export(tool(1, "mail/send", {"to": "x@example.com"}, None, status="failed",
                             error={"code": "internal", "message": "boom"})))


# -- dead ends and effects


def test_a_read_only_dead_end_is_dropped_and_an_unused_write_is_kept() -> None:
    compiled = compile_(export(
        tool(1, "db-query/run_sql", {"sql": "SELECT 'q-1' AS id"}, {"rows": [["q-1"]]}),
        tool(2, "http-fetch/fetch_json", {"url": "https://a.example/q-1"}, {"title": "the title"}),
        tool(3, "files/write_file", {"path": "w.txt", "content": "fixed"}, {"path": "w.txt"}),
        tool(4, "files/read_file", {"path": "size.txt"}, {"content": "1234 bytes"}),
        result={"size": "1234 bytes"}))

    # The fetch fed nothing, and the query only fed the fetch: both go. The write stays.
    assert steps(compiled) == [
        {"id": "write_file", "tool": "files/write_file", "args": {"path": "w.txt", "content": "fixed"}},
        {"id": "read_file", "tool": "files/read_file", "args": {"path": "size.txt"}},
    ]
    assert compiled.notes[:3] == [
        "dropped http-fetch/fetch_json at seq 2: read-only and nothing used its result",
        "dropped db-query/run_sql at seq 1: read-only and nothing used its result",
        "kept files/write_file at seq 3: nothing used its result, but it has effects",
    ]
    assert compiled.pipeline.output == {"size": "{{ steps.read_file.content }}"}


def test_a_read_only_call_that_feeds_the_result_is_kept() -> None:
    compiled = compile_(export(
        tool(1, "db-query/run_sql", {"sql": "SELECT 1"}, {"rows": [["report-7"]]}),
        result={"report": "report-7"}))

    assert compiled.pipeline.output == {"report": "{{ steps.run_sql.rows[0][0] }}"}
    assert len(compiled.pipeline.steps) == 1


def test_when_nothing_in_the_result_matches_the_output_is_the_last_step() -> None:
    compiled = compile_(export(
        tool(1, "http-fetch/fetch_json", {"url": "https://a.example"}, {"title": "the title"}),
        result="a summary an agent wrote"))

    assert compiled.pipeline.output == {"result": "{{ steps.fetch_json }}"}
    assert len(compiled.pipeline.steps) == 1  # the step the output names is no dead end


def test_steps_with_effects_keep_their_order_through_needs() -> None:
    compiled = compile_(export(
        tool(1, "files/write_file", {"path": "a.txt", "content": "one"}, {"path": "a.txt"}),
        tool(2, "files/read_file", {"path": "config.ini"}, {"content": "setting=42"}),
        tool(3, "files/write_file", {"path": "b.txt", "content": "two"}, {"path": "b.txt"}),
        tool(4, "mail/send", {"body": "setting=42"}, {"message_id": "m-77"}),
        tool(5, "mail/send", {"in_reply_to": "m-77"}, {"message_id": "m-78"}),
        tool(6, "files/read_file", {"path": "other.ini"}, {"content": "setting=43"}),
        result={"last": "setting=43"}))

    assert [(s["id"], s.get("needs", [])) for s in steps(compiled)] == [
        ("write_file", []),
        ("read_file", []),  # read-only: free to run at once
        ("write_file_2", ["write_file"]),
        ("send", ["write_file_2"]),  # it reads read_file, but must still follow the write before it
        ("send_2", []),  # it reads send, the effect before it, already
        ("read_file_2", []),
    ]


def test_a_read_only_step_waits_for_the_earlier_write_it_shares_an_argument_with() -> None:
    compiled = compile_(export(
        tool(1, "files/write_file", {"path": "out/a.txt", "content": "x"}, {"path": "out/a.txt", "bytes": 1}),
        tool(2, "files/write_file", {"path": "out/b.txt", "content": "y"}, {"path": "out/b.txt", "bytes": 1}),
        tool(3, "files/read_file", {"path": "out/a.txt", "length": 5}, {"content": "hello"}),
        tool(4, "http-fetch/fetch_json", {"url": "https://example.org/x"}, {"data": {"n": 22}}),
        input={"path": "out/a.txt"}, result={"a": "hello", "n": 22}))

    assert {s["id"]: s.get("needs", []) for s in steps(compiled)} == {
        "write_file": [], "write_file_2": ["write_file"], "read_file": ["write_file"], "fetch_json": []}


def test_an_unknown_tool_is_treated_as_having_effects() -> None:
    compiled = compile_(export(
        tool(1, "acme/lookup", {"q": "widgets"}, {"hits": 3}),
        tool(2, "mail/send", {"body": "hello"}, {"sent": "yes"}),
        result=None))

    assert [(s["id"], s.get("needs", [])) for s in steps(compiled)] == [("lookup", []), ("send", ["lookup"])]
    assert "unknown tool acme/lookup: treated as having effects, with no compile hints" in compiled.notes


# -- human steps


def test_a_human_step_keeps_its_place_and_later_steps_wire_from_its_decision() -> None:
    compiled = compile_(export(
        tool(1, "http-fetch/fetch_json", {"url": "https://rates.example/latest?base=EUR"}, RATES),
        wait(2, "reviewer", "esc-9", {"approved": True, "recipient": "treasury@example.com"}),
        tool(3, "mail/send", {"to": "treasury@example.com", "body": "rates for EUR", "rates": RATES["data"]["rates"]},
             {"sent": "yes"}),
        input={"base": "EUR"}, result={"sent": "yes", "to": "treasury@example.com"}),
        escalations={"esc-9": {"message": "Send today's EUR rates?", "data": {"rates": RATES["data"]["rates"]},
                               "form_schema": {"type": "object", "required": ["approved"]}}})

    assert steps(compiled) == [
        {"id": "fetch_json", "tool": "http-fetch/fetch_json",
         "args": {"url": "https://rates.example/latest?base={{ inputs.base }}"}},
        {"id": "review", "human": {"role": "reviewer", "message": "Send today's {{ inputs.base }} rates?",
                                   "data": {"rates": "{{ steps.fetch_json.data.rates }}"},
                                   "form_schema": {"type": "object", "required": ["approved"]}}},
        {"id": "send", "tool": "mail/send", "args": {"to": "{{ steps.review.recipient }}",
                                                     "body": "rates for {{ inputs.base }}",
                                                     "rates": "{{ steps.fetch_json.data.rates }}"}},
    ]
    assert compiled.pipeline.output == {"sent": "{{ steps.send.sent }}", "to": "{{ steps.review.recipient }}"}


def test_a_human_step_without_its_escalation_row_gets_a_generic_message() -> None:
    compiled = compile_(export(
        tool(1, "files/write_file", {"path": "a.txt", "content": "x"}, {"path": "a.txt"}),
        wait(2, "reviewer", "esc-3", {"ok": "fine"}),
        tool(3, "files/write_file", {"path": "b.txt", "content": "x"}, {"path": "b.txt"}),
        result=None))

    assert [(s["id"], s.get("needs", [])) for s in steps(compiled)] == [
        ("write_file", []), ("review", ["write_file"]), ("write_file_2", ["review"])]
    assert compiled.pipeline.steps[1].human is not None
    assert compiled.pipeline.steps[1].human.message == "Your decision is needed (reviewer)"
    assert ("human step at seq 2: its escalation's message is not known, so a generic one stands in"
            in compiled.notes)


# -- compile hints


def test_hint_inputs_makes_an_argument_an_input_named_after_it() -> None:
    compiled = compile_(export(
        tool(1, "files/write_file", {"path": "out/today.txt", "content": "x"}, {"path": "out/today.txt"}),
        tool(2, "mail/send", {"body": "saved out/today.txt"}, {"sent": "yes"}),
        input={}, result=None),
        facts={"files/write_file": ToolFacts(read_only=False, hints={"inputs": ["path"]})})

    assert steps(compiled)[0]["args"] == {"path": "{{ inputs.path }}", "content": "x"}
    assert steps(compiled)[1]["args"] == {"body": "saved {{ inputs.path }}"}
    assert compiled.pipeline.input_schema["properties"] == {"path": {"type": "string", "examples": ["out/today.txt"]}}
    assert "input 'path': compile hint inputs of files/write_file (seq 1)" in compiled.notes


def test_hint_constants_keeps_an_argument_literal() -> None:
    compiled = compile_(export(
        tool(1, "http-fetch/fetch_json", {"url": "https://a.example"}, {"version": "v2.1"}),
        tool(2, "mail/send", {"to": "ops@example.com", "tag": "v2.1"}, {"sent": "yes"}),
        input={"to": "ops@example.com"}, result=None),
        facts={"mail/send": ToolFacts(read_only=False, hints={"constants": ["to", "tag"]})})

    assert steps(compiled) == [{"id": "send", "tool": "mail/send", "args": {"to": "ops@example.com", "tag": "v2.1"}}]


def test_hint_ignore_args_leaves_an_argument_out_even_inside_a_loop() -> None:
    compiled = compile_(export(
        *[tool(n, "mail/send", {"to": to, "request_id": f"req-{n}"}, {"sent": "yes"})
          for n, to in enumerate(["a@example.com", "b@example.com", "c@example.com"], 1)],
        input={"people": ["a@example.com", "b@example.com", "c@example.com"]}, result=None),
        facts={"mail/send": ToolFacts(read_only=False, hints={"ignore_args": ["request_id"]})})

    assert steps(compiled) == [{"id": "each_send", "tool": "mail/send", "for_each": "{{ inputs.people }}",
                                "args": {"to": "{{ item }}"}}]
    assert "mail/send at seq 1: left out request_id (compile hint ignore_args)" in compiled.notes


def test_hint_drop_leaves_the_call_out() -> None:
    compiled = compile_(export(
        tool(1, "mail/send", {"to": "log@example.com", "body": "started"}, {"sent": "yes"}),
        tool(2, "files/write_file", {"path": "a.txt", "content": "x"}, {"path": "a.txt"}),
        result=None),
        facts={"mail/send": ToolFacts(read_only=False, hints={"drop": True, "input": "ignored"})})

    assert [s["id"] for s in steps(compiled)] == ["write_file"]
    assert compiled.notes[:2] == ["mail/send: ignored compile hints the compiler does not know (input)",
                                  "dropped mail/send at seq 1: compile hint drop"]


# -- names


def test_the_name_comes_from_the_workflow_type_or_the_caller_made_valid() -> None:
    run = export(tool(1, "mail/send", {"to": "x@example.com"}, {"sent": "yes"}), name="9 Daily-Report!", result=None)

    assert compile_(run).pipeline.name == "pipeline_9_daily_report_pipeline"
    assert compile_(run, name="My Pipeline", description="Mail the report").pipeline.model_dump(
        include={"name", "description", "tags"}) == {"name": "my_pipeline", "description": "Mail the report",
                                                     "tags": ["mail"]}


def test_a_step_id_or_key_that_names_a_dict_method_is_read_by_subscript() -> None:
    compiled = compile_(export(tool(1, "files/items", {"path": "docs"}, {"keys": ["k-1"], "names": ["n-1"]}),
                               tool(2, "files/copy", {"src": "k-1", "dst": "n-1"}, {"copied": "yes"}),
                               result=None))

    assert steps(compiled) == [
        {"id": "items", "tool": "files/items", "args": {"path": "docs"}},
        {"id": "copy", "tool": "files/copy",
         "args": {"src": "{{ steps['items']['keys'][0] }}", "dst": "{{ steps['items'].names[0] }}"}},
    ]


def test_an_argument_equal_to_its_default_is_left_out() -> None:
    listing = {"type": "object", "properties": {"pattern": {"type": "string"},
                                                "limit": {"type": "integer", "default": 100},
                                                "encoding": {"type": "string", "default": "utf-8"}}}
    compiled = compile_(export(
        tool(1, "files/list_dir", {"pattern": "docs/*", "limit": 100, "encoding": "latin-1"}, {"entries": []}),
        input={}, result=None),
        facts={"files/list_dir": ToolFacts(read_only=True, input_schema=listing)})

    assert steps(compiled)[0]["args"] == {"pattern": "docs/*", "encoding": "latin-1"}
    assert "files/list_dir at seq 1: left out limit (equal to the tool's defaults)" in compiled.notes

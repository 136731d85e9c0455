"""The pipeline format: parsing, every validation problem with its position, the DAG, dumping, and expressions."""

import copy
import textwrap
from typing import Any

import pytest

from longtail_mcp.errors import InvalidInput, error_from_json
from longtail_mcp.pipelines import expressions
from longtail_mcp.pipelines.document import MAX_STEPS, Problem
from longtail_mcp.pipelines.expressions import SyntaxProblem, check, references, render, truthy
from longtail_mcp.pipelines.loader import (
    PipelineInvalid,
    ToolInfo,
    ToolTable,
    dependencies,
    is_read_only,
    order,
    parse,
    to_yaml,
)
from longtail_mcp.pipelines.model import Pipeline
from system_servers import SERVERS

TOOLS = ToolTable({f"{server}/{spec.name}": ToolInfo(spec.read_only, spec.input_schema())
                   for server, module in SERVERS.items() for spec in module.TOOLS})

EXAMPLE = """\
name: save_exchange_rates          # also the MCP tool name
description: Fetch today's rates for a base currency and save them as JSON
tags: [http, files]
input_schema:  {type: object, required: [base, path], properties: {base: {type: string}, path: {type: string}}}
steps:
  - id: rates
    tool: http-fetch/fetch_json
    args: {url: "https://rates.example/latest?base={{ inputs.base }}"}
  - id: save
    tool: files/write_file
    args: {path: "{{ inputs.path }}", content: "{{ steps.rates.data | tojson }}"}
  - id: review                      # human step: suspends durably
    human: {role: reviewer, message: "Rates saved to {{ inputs.path }}"}
    when: "{{ steps.rates.data.rates | length > 100 }}"
  - id: each                        # loop
    for_each: "{{ steps.rates.data.currencies }}"
    tool: files/write_file
    args: {path: "{{ inputs.path }}.{{ item }}", content: "{{ item }}"}
output: {saved: "{{ steps.save.ref }}"}
"""


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def problems(text: str, tools: Any = TOOLS) -> list[Problem]:
    with pytest.raises(PipelineInvalid) as caught:
        parse(text, tools=tools)
    return caught.value.problems


def only(text: str, tools: Any = TOOLS) -> Problem:
    found = problems(text, tools)
    assert len(found) == 1, found
    return found[0]


def at(problem: Problem) -> tuple[int, int]:
    return problem.line, problem.column


def step_doc(step: str, extra: str = "") -> str:
    """A pipeline with one tool step (`step` is its YAML body, indented by 4) and more top-level YAML."""
    return "name: p\nsteps:\n  - id: a\n" + textwrap.indent(doc(step), "    ") + doc(extra)


# -- the example of design.md §7 ------------------------------------------------------------------------------

def test_design_example_parses_with_its_dependencies_and_order() -> None:
    pipeline = parse(EXAMPLE, tools=TOOLS)
    assert [s.id for s in pipeline.steps] == ["rates", "save", "review", "each"]
    assert pipeline.steps[2].human is not None and pipeline.steps[2].human.role == "reviewer"
    assert dependencies(pipeline) == {"rates": set(), "save": {"rates"}, "review": {"rates"}, "each": {"rates"}}
    assert order(pipeline) == ["rates", "save", "review", "each"]
    assert not is_read_only(pipeline, TOOLS)


def test_to_yaml_round_trips_and_reads_naturally() -> None:
    pipeline = parse(EXAMPLE, tools=TOOLS)
    text = to_yaml(pipeline)
    assert parse(text, tools=TOOLS) == pipeline
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith((" ", "-"))]
    assert keys == ["name", "description", "tags", "input_schema", "steps", "output"]
    assert "tags: [http, files]" in text
    each = text[text.index("- id: each"):]
    assert each.index("tool:") < each.index("args:") < each.index("for_each:")
    assert "retries" not in text and "concurrency" not in text  # defaults are left out


def test_to_yaml_writes_multi_line_text_as_a_block_and_keeps_odd_strings() -> None:
    pipeline = Pipeline.model_validate({
        "name": "p", "steps": [{"id": "a", "tool": "files/write_file", "args": {
            "path": "yes", "content": "line 1\n  {{ inputs.x }}\n", "1": "null", "<<": "\x85 \u2028 \r", "": ""}}],
        "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
    })
    text = to_yaml(pipeline)
    assert "content: |" in text
    loose = ToolTable({"files/write_file": ToolInfo(False, {"type": "object"})})
    assert parse(text, tools=loose) == pipeline


def test_order_breaks_ties_by_position_and_follows_needs() -> None:
    pipeline = parse(doc("""
        name: p
        steps:
          - {id: c, tool: http-fetch/fetch_json, args: {url: "{{ steps.b.data }}"}}
          - {id: a, tool: http-fetch/fetch_json, args: {url: "http://x"}}
          - {id: b, tool: http-fetch/fetch_json, args: {url: "http://y"}, needs: [d]}
          - {id: d, tool: http-fetch/fetch_json, args: {url: "http://z"}}
    """), tools=TOOLS)
    assert dependencies(pipeline) == {"c": {"b"}, "a": set(), "b": {"d"}, "d": set()}
    assert order(pipeline) == ["a", "d", "b", "c"]


def test_a_pipeline_of_read_only_tools_is_read_only() -> None:
    pipeline = parse(doc("""
        name: p
        steps:
          - {id: a, tool: http-fetch/fetch_json, args: {url: "http://x"}}
          - {id: b, tool: db-query/run_sql, args: {sql: "select {{ steps.a.data.n | int }}"}}
    """), tools=TOOLS)
    assert is_read_only(pipeline, TOOLS)
    assert not is_read_only(pipeline, lambda name: None)


def test_order_refuses_a_cycle_built_without_parse() -> None:
    pipeline = Pipeline.model_validate({"name": "p", "steps": [
        {"id": "a", "tool": "x/y", "needs": ["b"]}, {"id": "b", "tool": "x/y", "needs": ["a"]}]})
    with pytest.raises(InvalidInput, match="cycle"):
        order(pipeline)


# -- one test per problem kind -----------------------------------------------------------------------------

def test_yaml_syntax_error_is_reported_at_its_position() -> None:
    problem = only("name: p\nsteps:\n  - id: a\n    tool: [files/write_file\n")
    assert at(problem) == (5, 1)
    assert problem.message.startswith("invalid YAML: expected ',' or ']'")
    problem = only("name: p\n  steps: x\n")
    assert at(problem) == (2, 8)
    assert "mapping values are not allowed here" in problem.message


def test_unprintable_character_is_reported_at_its_position() -> None:
    assert at(only("name: p\nsteps: [\x07]\n")) == (2, 9)


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    problem = only("- id: a\n- id: b\n")
    assert at(problem) == (1, 1)
    assert "not a list" in problem.message
    assert "empty" in only("# nothing\n").message


def test_missing_key_is_reported_at_its_mapping() -> None:
    problem = only(doc("""
        name: p
        steps:
          - tool: http-fetch/fetch_json
            args: {url: "http://x"}
    """))
    assert (at(problem), problem.path, problem.message) == ((3, 5), "steps[0].id", "missing required key 'id'")


def test_unknown_key_is_reported_at_the_key_with_a_suggestion() -> None:
    problem = only(step_doc("""
        tool: http-fetch/fetch_json
        args: {url: "http://x"}
        foreach: "{{ [1] }}"
    """))
    assert (at(problem), problem.path) == ((6, 5), "steps[0].foreach")
    assert problem.message == "unknown key 'foreach' (did you mean 'for_each'?)"


def test_wrongly_typed_value_is_reported_at_the_value() -> None:
    problem = only(step_doc("""
        tool: http-fetch/fetch_json
        args: {url: "http://x"}
        retries: many
    """))
    assert (at(problem), problem.path) == ((6, 14), "steps[0].retries")
    assert "valid integer" in problem.message
    problem = only("name: Bad-Name\nsteps: [{id: a, tool: http-fetch/fetch_json, args: {url: u}}]\n")
    assert at(problem) == (1, 7) and "lowercase" in problem.message


def test_duplicate_step_ids_are_reported_at_the_second() -> None:
    problem = only(doc("""
        name: p
        steps:
          - {id: a, tool: http-fetch/fetch_json, args: {url: "http://x"}}
          - {id: a, tool: http-fetch/fetch_json, args: {url: "http://y"}}
    """))
    assert (at(problem), problem.path) == ((4, 10), "steps[1].id")
    assert problem.message == "duplicate step id 'a' (first used by steps[0], line 3)"


def test_a_step_with_both_tool_and_human_or_neither_is_refused() -> None:
    found = problems(doc("""
        name: p
        steps:
          - id: a
            tool: http-fetch/fetch_json
            human: {role: r, message: hi}
            args: {url: "http://x"}
          - id: b
            description: nothing to do
    """))
    assert [(at(p), p.message) for p in found] == [
        ((3, 5), "a step has either 'tool' or 'human', not both"),
        ((7, 5), "a step needs 'tool' (server/tool) or 'human'"),
    ]


def test_unknown_tool_is_reported_with_close_names() -> None:
    problem = only(step_doc("""
        tool: files/writ_file
        args: {path: p, content: c}
    """))
    assert (at(problem), problem.path) == ((4, 11), "steps[0].tool")
    assert problem.message.startswith("unknown tool 'files/writ_file' (did you mean 'files/write_file'")
    bare = only(step_doc("tool: files/writ_file\n"), tools=lambda name: None)
    assert bare.message == "unknown tool 'files/writ_file'"
    assert "a tool is named server/tool" in only(step_doc("tool: write_file\n")).message


def test_unknown_argument_is_reported_when_the_schema_forbids_extras() -> None:
    problem = only(step_doc("""
        tool: http-fetch/fetch_json
        args:
          url: "http://x"
          ur1: "http://y"
    """))
    assert (at(problem), problem.path) == ((7, 7), "steps[0].args.ur1")
    assert problem.message == "http-fetch/fetch_json has no argument 'ur1' (did you mean 'url'?)"
    open_schema = ToolTable({"http-fetch/fetch_json": ToolInfo(True, {"type": "object", "properties": {}})})
    parse(step_doc("tool: http-fetch/fetch_json\nargs: {anything: 1}\n"), tools=open_schema)


def test_missing_required_argument_is_reported() -> None:
    problem = only(step_doc("tool: files/write_file\nargs: {path: p}\n"))
    assert (at(problem), problem.message) == ((5, 11), "files/write_file needs the argument 'content'")


def test_reference_to_an_unknown_step_or_to_itself_is_reported_inside_the_string() -> None:
    found = problems(doc("""
        name: p
        steps:
          - id: fetch
            tool: http-fetch/fetch_json
            args: {url: "http://x/{{ steps.fetc.data }}"}
          - id: again
            tool: http-fetch/fetch_json
            args: {url: "{{ steps.again.data }}"}
    """))
    assert [(at(p), p.path, p.message) for p in found] == [
        ((5, 30), "steps[0].args.url", "no step 'fetc' (did you mean 'fetch'?)"),
        ((8, 21), "steps[1].args.url", "step 'again' cannot read its own result"),
    ]


def test_all_of_steps_or_a_computed_step_id_is_refused() -> None:
    problem = only(step_doc("tool: http-fetch/fetch_json\nargs: {url: \"{{ steps[inputs.k] }}\"}\n",
                            "input_schema: {type: object, properties: {k: {type: string}}}\n"))
    assert at(problem) == (5, 21) and problem.message.startswith("name the step: steps.<id>")


def test_needs_naming_an_unknown_step_or_itself_is_reported() -> None:
    found = problems(step_doc("tool: http-fetch/fetch_json\nargs: {url: u}\nneeds: [a, b]\n"))
    assert [(at(p), p.path, p.message) for p in found] == [
        ((6, 13), "steps[0].needs[0]", "step 'a' cannot wait for itself"),
        ((6, 16), "steps[0].needs[1]", "no step 'b'"),
    ]


def test_a_dependency_cycle_names_its_steps() -> None:
    problem = only(doc("""
        name: p
        steps:
          - {id: start, tool: http-fetch/fetch_json, args: {url: "http://x"}}
          - {id: a, tool: http-fetch/fetch_json, args: {url: "{{ steps.c.data }}"}}
          - {id: b, tool: http-fetch/fetch_json, args: {url: "{{ steps.a.data }}"}, needs: [start]}
          - {id: c, tool: http-fetch/fetch_json, args: {url: "{{ steps.b.data }}"}}
    """))
    assert (at(problem), problem.path) == ((4, 10), "steps[1].id")
    assert problem.message == "dependency cycle: a -> c -> b -> a"


def test_reference_to_an_undeclared_input_is_reported() -> None:
    problem = only(step_doc("tool: http-fetch/fetch_json\nargs: {url: \"{{ inputs.bse }}\"}\n",
                            "input_schema: {type: object, properties: {base: {type: string}}}\n"))
    assert (at(problem), problem.message) == ((5, 21), "unknown input 'bse' (input_schema declares: base)")
    # no input_schema: the pipeline takes no inputs
    assert "declares: none" in only(step_doc("tool: http-fetch/fetch_json\nargs: {url: \"{{ inputs.x }}\"}\n")).message
    # a schema that lists no properties is not checked
    parse(step_doc("tool: http-fetch/fetch_json\nargs: {url: \"{{ inputs.x }}\"}\n", "input_schema: {type: object}\n"),
          tools=TOOLS)


def test_item_and_index_outside_a_for_each_step_are_reported() -> None:
    found = problems(doc("""
        name: p
        steps:
          - id: a
            tool: files/write_file
            args: {path: "{{ item }}", content: "x"}
            when: "{{ index > 0 }}"
          - id: b
            for_each: "{{ [1, 2] }}"
            tool: files/write_file
            args: {path: "{{ item }}", content: "{{ index }}"}
        output: "{{ item }}"
    """))
    assert [(at(p), p.path) for p in found] == [
        ((5, 22), "steps[0].args.path"), ((6, 15), "steps[0].when"), ((11, 13), "output")]
    assert found[0].message == "'item' is used in step 'a', which has no for_each (it exists in the arguments " \
                               "of a for_each step only)"
    assert found[2].message.startswith("'item' is used in the output")


def test_unknown_names_in_expressions_are_reported() -> None:
    problem = only(step_doc("tool: http-fetch/fetch_json\nargs: {url: \"{{ input.base }}\"}\n"))
    assert (at(problem), problem.message) == (
        (5, 21), "unknown name 'input' (expressions see inputs, steps, item, index, run)")
    run = only(step_doc("tool: http-fetch/fetch_json\nargs: {url: \"{{ run.name }}\"}\n"))
    assert run.message == "run has only 'id' (not 'name')"


def test_a_bad_expression_is_reported_at_its_position_in_the_file() -> None:
    problem = only(step_doc('tool: http-fetch/fetch_json\nargs: {url: "http://x/{{ inputs.a | }}"}\n'))
    assert (at(problem), problem.path) == ((5, 41), "steps[0].args.url")
    assert problem.message == "invalid expression: expected token 'name', got 'end of print statement'"


def test_a_bad_expression_in_a_block_scalar_is_reported_on_its_line() -> None:
    problem = only(step_doc("""
        tool: files/write_file
        args:
          path: out.txt
          content: |
            Rates:
            {% for r in steps %}{{ r }}
    """))
    assert (at(problem), problem.path) == ((9, 36), "steps[0].args.content")  # after `{{ r }}`
    assert "endfor" in problem.message


def test_statements_expressions_do_not_need_are_refused() -> None:
    problem = only(step_doc('tool: http-fetch/fetch_json\nargs: {url: "{% macro m() %}{% endmacro %}"}\n'))
    assert at(problem) == (5, 18) and "'{% macro %}' is not allowed" in problem.message
    problem = only(step_doc('tool: http-fetch/fetch_json\nargs: {url: "{{ inputs | nope }}"}\n'))
    assert at(problem) == (5, 30) and problem.message == "invalid expression: no filter named 'nope'"


def test_when_and_for_each_must_be_expressions() -> None:
    problem = only(step_doc("tool: http-fetch/fetch_json\nargs: {url: u}\nwhen: steps.x.ok\n"))
    assert (at(problem), problem.path) == ((6, 11), "steps[0].when")
    assert problem.message.startswith("when is an expression")


def test_invalid_json_schemas_are_reported_where_the_error_is() -> None:
    found = problems(doc("""
        name: p
        input_schema: {type: object, properties: {n: {type: integr}}}
        output_schema: {type: object, required: yes}
        steps:
          - id: ask
            human:
              role: reviewer
              message: Approve?
              form_schema: {type: object, minProperties: -1}
    """))
    assert [(at(p), p.path) for p in found] == [
        ((2, 53), "input_schema.properties.n.type"), ((3, 41), "output_schema.required"),
        ((9, 50), "steps[0].human.form_schema.minProperties")]
    assert all(p.message.startswith("not a valid JSON Schema: ") for p in found)
    problem = only("name: p\ninput_schema: {type: string}\nsteps: [{id: a, human: {role: r, message: m}}]\n")
    assert at(problem) == (2, 22) and "must be object" in problem.message
    problem = only("name: p\ninput_schema: {$schema: 'http://nope'}\nsteps: [{id: a, human: {role: r, message: m}}]\n")
    assert at(problem) == (2, 25) and problem.message == "unknown $schema 'http://nope'"


def test_invalid_cron_is_reported_and_seconds_first_is_accepted() -> None:
    base = step_doc("tool: http-fetch/fetch_json\nargs: {url: u}\n")
    problem = only(base + "schedule: {cron: '61 * * * *'}\n")
    assert (at(problem), problem.path) == ((6, 18), "schedule.cron")
    assert problem.message.startswith("invalid cron expression '61 * * * *'")
    assert parse(base + "schedule: {cron: '*/10 * * * * *'}\n", tools=TOOLS).schedule is not None
    assert parse(base + "schedule: {cron: '0 6 * * mon-fri'}\n", tools=TOOLS).schedule is not None


def test_schedule_input_and_examples_must_match_the_input_schema() -> None:
    found = problems(step_doc("tool: http-fetch/fetch_json\nargs: {url: \"{{ inputs.base }}\"}\n", """
        input_schema: {type: object, required: [base], properties: {base: {type: string}}}
        schedule: {cron: '0 6 * * *', input: {base: 3}}
        examples: [{base: EUR}, {}]
    """))
    assert [(at(p), p.path, p.message) for p in found] == [
        ((7, 45), "schedule.input.base", "does not match input_schema: 3 is not of type 'string'"),
        ((8, 25), "examples[1]", "does not match input_schema: 'base' is a required property"),
    ]


def test_output_referencing_an_unknown_step_is_reported() -> None:
    problem = only(step_doc("tool: http-fetch/fetch_json\nargs: {url: u}\n",
                            "output:\n  saved: \"{{ steps.b.ref }}\"\n"))
    assert (at(problem), problem.path, problem.message) == ((7, 14), "output.saved", "no step 'b'")


def test_duplicate_yaml_keys_are_reported() -> None:
    problem = only(step_doc("tool: http-fetch/fetch_json\nargs: {url: u}\ntool: http-fetch/fetch_text\n"))
    assert (at(problem), problem.path) == ((6, 5), "steps[0].tool")
    assert problem.message == "duplicate key 'tool' (first at line 4)"


def test_yaml_that_is_not_json_is_reported() -> None:
    found = problems(step_doc("tool: http-fetch/fetch_json\nargs: {url: !!binary aGk=, max_bytes: .nan}\n"))
    assert [(at(p), p.message) for p in found] == [
        ((5, 17), "unsupported tag 'tag:yaml.org,2002:binary' (a pipeline holds JSON values)"),
        ((5, 43), "'.nan' is not a JSON number (no NaN or infinity)"),
    ]
    found = problems("name: p\nsteps:\n  - &b {id: a, tool: http-fetch/fetch_json, args: {url: u}}\n"
                     "  - {<<: *b, id: b}\n")
    assert [(at(p), p.message) for p in found] == [((4, 5), "a step needs 'tool' (server/tool) or 'human'"),
                                                    ((4, 6), "merge keys (<<) are not supported: write the keys out")]


def test_limits_stop_parsing_with_one_clear_problem() -> None:
    huge = "name: p\ndescription: " + "x" * (1 << 20) + "\nsteps: []\n"
    assert only(huge).message == "the document is larger than 1,048,576 bytes"
    many = "name: p\nsteps:\n" + "".join(f"  - {{id: s{i}, tool: nope/nope}}\n" for i in range(MAX_STEPS + 1))
    problem = only(many)
    assert at(problem) == (3, 3) and problem.message == "a pipeline has at most 500 steps (this one has 501)"
    deep = "name: p\nsteps: []\noutput: " + "[" * 70 + "]" * 70 + "\n"
    problem = only(deep)
    assert at(problem) == (3, 72) and problem.message == "the document nests deeper than 64 levels"
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(  # 10**5 values from 6 lines
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcd", "bcde", strict=True))
    assert "more than 100,000 values" in only(laughs).message


def test_every_problem_of_a_document_is_reported_together_in_document_order() -> None:
    text = doc("""
        name: p
        steps:
          - id: a
            tool: http-fetch/fetch_jsn
            args: {url: "{{ steps.nope.x }}"}
          - id: a
            tool: files/write_file
            args: {pth: x, content: "{{ item }}"}
            retries: many
        schedule: {cron: "* * *"}
        extra: 1
    """)
    found = problems(text)
    assert [(p.line, p.path) for p in found] == [
        (4, "steps[0].tool"), (5, "steps[0].args.url"), (6, "steps[1].id"), (8, "steps[1].args"),
        (8, "steps[1].args.pth"), (8, "steps[1].args.content"), (9, "steps[1].retries"), (10, "schedule.cron"),
        (11, "extra")]
    with pytest.raises(PipelineInvalid) as caught:
        parse(text, tools=TOOLS)
    message = caught.value.message.splitlines()
    assert message[0] == "invalid pipeline: 9 problems"
    assert message[1].startswith("line 4, column 11: steps[0].tool: unknown tool 'http-fetch/fetch_jsn'")
    assert isinstance(caught.value, InvalidInput)


def test_the_message_lists_the_first_fifty_and_the_error_survives_storage() -> None:
    text = "name: p\nsteps:\n" + "".join(f"  - {{id: s{i}, tool: nope/t{i}}}\n" for i in range(60))
    with pytest.raises(PipelineInvalid) as caught:
        parse(text, tools=TOOLS)
    error = caught.value
    assert len(error.problems) == 60
    lines = error.message.splitlines()
    assert len(lines) == 1 + 50 + 1 and lines[-1] == "... and 10 more"
    again = error_from_json(error.to_json())
    assert isinstance(again, PipelineInvalid) and again.problems == error.problems


# -- expressions: render ----------------------------------------------------------------------------------

CONTEXT: dict[str, Any] = {
    "inputs": {"base": "EUR", "code": "123", "path": "/tmp/rates"},
    "steps": {"rates": {"data": {"EUR": 1.0, "USD": 1.1, "items": [3, 1, 2], "keys": ["a"]}}, "skipped": None},
    "run": {"id": "run-1"},
}


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ steps.rates.data }}", CONTEXT["steps"]["rates"]["data"]),
    ("{{ steps.rates.data.items }}", [3, 1, 2]),  # the key, not dict.items
    ("{{ steps.rates.data['USD'] }}", 1.1),
    ("{{ inputs.code }}", "123"),  # a string stays a string
    ("{{ 1 }}", 1),
    ("{{ [1, 'a', none, true] }}", [1, "a", None, True]),
    ("{{ (1, 2) }}", [1, 2]),
    ("{{ steps.skipped }}", None),
    ("{{ steps.rates.data.items | sort }}", [1, 2, 3]),
    ("{{ steps.rates.data.items | map('string') }}", ["3", "1", "2"]),  # iterators become lists
    ("{{ run.id }}", "run-1"),
    ("{% if inputs.base == 'EUR' %}{{ steps.rates.data.EUR }}{% endif %}", 1.0),
    ("plain text", "plain text"),
    ("{# only a comment #}", ""),
])
def test_a_single_expression_renders_to_its_native_value(template: str, expected: Any) -> None:
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize(("template", "expected"), [
    ("https://rates.example/latest?base={{ inputs.base }}", "https://rates.example/latest?base=EUR"),
    ("[{{ inputs.code }}]", "[123]"),  # text around: no literal_eval into a list
    ("{{ inputs.code }}{{ inputs.code }}", "123123"),
    (" {{ 1 }}", " 1"),
    ("{{ inputs.path }}.{{ 'x' | upper }}", "/tmp/rates.X"),
    ("{% for x in steps.rates.data.items %}{{ loop.index }}:{{ x }} {% endfor %}", "1:3 2:1 3:2 "),
])
def test_text_around_expressions_renders_to_text(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected


def test_render_walks_dicts_and_lists_and_leaves_keys_and_other_values() -> None:
    value = {"{{ inputs.base }}": ["{{ inputs.base }}", 3, None, {"n": "{{ 2 * 3 }}"}], "flag": True}
    assert render(value, CONTEXT) == {"{{ inputs.base }}": ["EUR", 3, None, {"n": 6}], "flag": True}


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ steps.rates.data | tojson }}", '{"EUR":1.0,"USD":1.1,"items":[3,1,2],"keys":["a"]}'),
    ("{{ {'b': 1, 'a': [1, 2]} | tojson }}", '{"a":[1,2],"b":1}'),
    ("{{ '{\"a\": [1, 2]}' | fromjson }}", {"a": [1, 2]}),
    ("{{ steps.rates.data.items | join(',') }}", "3,1,2"),
    ("{{ steps.rates.data.items | sum }}", 6),
    ("{{ [[1], [2, 3]] | sum(start=[]) }}", [1, 2, 3]),
    ("{{ steps.rates.data.keys | first }}", "a"),
    ("{{ inputs.missing | default('none') }}", "none"),
    ("{{ steps.rates.data | dictsort | first }}", ["EUR", 1.0]),
    ("{{ inputs.base | lower | replace('e', 'E') }}", "Eur"),
    ("{{ '%05.1f' % steps.rates.data.USD }}", "001.1"),
    ("{{ '{} {}'.format(inputs.base, 2) }}", "EUR 2"),
    ("{{ steps.rates.data.items | length > 2 }}", True),
    ("{{ range(3) | list }}", [0, 1, 2]),
])
def test_filters_and_methods(template: str, expected: Any) -> None:
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize(("template", "message"), [
    ("{{ steps.rates.dta }}", "steps.rates has no attribute 'dta'"),
    ("{{ steps.rate.data }}", "steps has no attribute 'rate'"),
    ("{{ steps.skipped.data }}", "steps.skipped is None, so it has no attribute 'data'"),
    ("{{ item }}", "'item' is undefined"),
    ("x {{ inputs.nope | upper }}", "inputs has no attribute 'nope'"),
    ("{{ steps.rates.data.items[7] }}", "list object has no item 7"),
    ("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
    ("{{ 'a' | fromjson }}", "JSONDecodeError"),
])
def test_render_errors_name_the_expression_and_the_problem(template: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        render({"args": [template]}, CONTEXT)
    assert caught.value.message.startswith(f"expression {template!r}: ")
    assert message in caught.value.message


ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ range.__globals__ }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ dict.mro() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ ''|attr('__class__') }}",
    "{{ steps|attr('__class__') }}",
    "{{ steps.rates.data.items|map(attribute='__class__')|list }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ '%s' | format(''.__class__) }}",
    "{% for x in range(1) %}{{ loop.__class__ }}{% endfor %}",
    "{{ (steps.rates.data.items|map('string')).gi_frame }}",
    "{{ lipsum.__globals__ }}",
    "{{ namespace }}",
    "{{ steps.rates.data.clear() }}",
    "{{ steps.rates.data.items.append(4) }}",
    "{{ steps.rates.data.update({'x': 1}) }}",
    "{{ steps.rates.data.pop('EUR') }}",
    "{{ dict.fromkeys(range(3)) }}",
    "{{ (1).to_bytes(8, 'big') }}",
    "{{ 'x'.encode() }}",
    "{{ 'x'.translate({120: 'y'}) }}",
    "{% set steps.x = 1 %}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_are_refused_with_no_side_effect(template: str) -> None:
    context = copy.deepcopy(CONTEXT)
    with pytest.raises(InvalidInput) as caught:
        render(template, context)
    assert caught.value.message.startswith("expression ")
    explained = caught.value.message.split(": ", 1)[1]
    assert any(word in explained for word in ("unsafe", "not allowed", "undefined", "no attribute", "no item")), \
        explained
    assert context == CONTEXT


@pytest.mark.parametrize(("template", "message"), [
    ("{{ 'x' * 10**9 }}", "the result of '*' would be about 1,000,000,000 characters"),
    ("{{ ['x'] * 10**8 }}", "the result of '*'"),
    ("{{ 2 ** 1000000 }}", "more than 100,000 bits"),
    ("{{ (2 ** 60000) * (2 ** 60000) }}", "more than 100,000 bits"),
    ("{{ 'x' | center(10**9) }}", "center()"),
    ("{{ 'x' | indent(10**9) }}", "indent()"),
    ("{{ ('x' * 1000000).ljust(10**9) }}", "str.ljust()"),
    ("{{ ('x' * 1000000).replace('x', 'xx') }}", "str.replace()"),
    ("{{ ('x' * 100000) | replace('x', 'xxxxxxxxxxxxxxx') }}", "replace()"),
    ("{{ '%999999999d' % 1 }}", "a formatted field"),
    ("{{ '%*d' % (999999999, 1) }}", "'*' widths are not supported"),
    ("{{ '{:>999999999}'.format(1) }}", "a formatted field"),
    ("{{ ('{0}' * 1000).format('x' * 100000) }}", "the formatted text"),
    ("{% set a = 'x' * 600000 %}{{ a ~ a }}", "the result of '~'"),
    ("{% set a = 'x' * 600000 %}{{ a + a }}", "the result of '+'"),
    ("{% set a = 'x' * 100000 %}{{ [a, a, a, a, a, a, a, a, a, a, a] | join }}", "join()"),
    ("{% set a = 'x' * 100000 %}{{ [a, a, a, a, a, a, a, a, a, a, a] | string }}", "the text of a value"),
    ("{% set a = 'x' * 100000 %}{{ [a, a, a, a, a, a, a, a, a, a, a] }}", "the value would be"),
    ("{% set a = 'x' * 100000 %}{{ [a, a, a, a, a, a, a, a, a, a, a] | tojson }}", "the value would be"),
    ("{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxx' }}{% endfor %}", "the rendered text would be"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "more than 1,000,000 loop iterations"),
    ("{{ range(1000000) }}", "Range too big"),
    ("{{ [1] | batch(10**9, 0) | list }}", "batch() of more than 100,000 items"),
    ("{{ [1] | slice(10**9) | list }}", "slice() into more than 100,000 parts"),
    ("{{ ('&' * 500000) | forceescape | forceescape }}", "forceescape() would make a value"),
])
def test_size_bombs_are_refused_before_they_grow(template: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        render(template, CONTEXT)
    assert message in caught.value.message


def test_templates_longer_than_the_limit_are_refused() -> None:
    text = "{{ 1 }}" + " " * expressions.MAX_TEMPLATE
    with pytest.raises(InvalidInput, match="at most 20,000 characters"):
        render(text, CONTEXT)
    with pytest.raises(SyntaxProblem):
        check(text)


def test_rendering_stops_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expressions, "MAX_SECONDS", -1.0)
    with pytest.raises(InvalidInput, match="took longer than"):
        render("{{ 1 + 1 }}", CONTEXT)


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), (None, False), (0, False), (1, True), (0.0, False), ([], False), ([0], True),
    ({}, False), ("", False), ("0", False), ("false", False), ("False", False), (" FALSE\n", False),
    ("None", False), ("null", False), ("no", True), ("true", True), ("x", True), ("00", True),
])
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_truthy_of_rendered_when() -> None:
    assert truthy(render("{{ steps.rates.data.items | length > 2 }}", CONTEXT))
    assert not truthy(render("{{ steps.skipped }}", CONTEXT))
    assert not truthy(render("{{ steps.skipped }} ", CONTEXT))  # text "None "


# -- expressions: check and references --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "line_offset", "column"), [
    ("{{ a b }}", 0, 6),
    ("first line\n{{ a | }}", 1, 8),
    ("{% if %}", 0, 7),
    ("abc {{ x ) }}", 0, 10),
    ("{{ 'abc }}", 0, 4),
    ("{{ x | nope }}", 0, 8),
    ("x\n  {% include 'y' %}", 1, 3),
    ("{% for x in y recursive %}{% endfor %}", 0, 15),
])
def test_check_reports_the_position_inside_the_string(text: str, line_offset: int, column: int) -> None:
    with pytest.raises(SyntaxProblem) as caught:
        check(text)
    assert (caught.value.line_offset, caught.value.column) == (line_offset, column)


def test_check_accepts_plain_text_and_good_templates() -> None:
    for text in ["plain } text {", "{{ steps.a.data | tojson }}",
                 "{% set x = 1 %}{% with y = 2 %}{{ x + y }}{% endwith %}"]:
        check(text)


@pytest.mark.parametrize(("value", "expected"), [
    ("{{ steps.rates.data.EUR }}", {("steps", "rates", "data", "EUR")}),
    ("{{ inputs.base }}", {("inputs", "base")}),
    ("{% for x in steps.a.items %}{{ x.name }}{{ loop.index }}{% endfor %}", {("steps", "a", "items")}),
    ("{% for k, v in steps.a.data.items() if v.ok %}{{ k }}{% else %}{{ x }}{% endfor %}",
     {("steps", "a", "data", "items"), ("x",)}),
    ("{{ steps['b'].data[0].id }}", {("steps", "b", "data")}),
    ("{{ steps[inputs.which].data }}", {("steps",), ("inputs", "which")}),
    ("{{ steps.a.data | map(attribute='x') | join(inputs.sep) }}", {("steps", "a", "data"), ("inputs", "sep")}),
    ("{{ inputs.n is defined and steps.c.ok }}", {("inputs", "n"), ("steps", "c", "ok")}),
    ("{% set total = steps.a.n + 1 %}{{ total }}", {("steps", "a", "n")}),
    ("{% with y = steps.a.n %}{{ y.z }}{% endwith %}{{ y }}", {("steps", "a", "n"), ("y",)}),
    ("{{ 'steps.a.b' }} steps.c", set()),
    ("{{ item.url ~ index }}", {("item", "url"), ("index",)}),
    ("{{ (steps.a.data | first).name }}", {("steps", "a", "data")}),
    ("{{ range(3) | list }}", {("range",)}),
    ({"a": ["{{ steps.x.y }}", {"b": "{{ inputs.z }}"}], "c": 1}, {("steps", "x", "y"), ("inputs", "z")}),
])
def test_references_are_the_name_chains_an_expression_reads(value: Any, expected: set[tuple[str, ...]]) -> None:
    assert references(value) == expected


def test_references_of_a_bad_template_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="expected token"):
        references("{{ a b }}")

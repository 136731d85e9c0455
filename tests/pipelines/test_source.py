"""Compiling a workflow's Python source into a pipeline: each supported construct, and the refusal (with its
line) of everything else. The workflows are defined here and never run."""

import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

import pytest
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel

from longtail_mcp.errors import InvalidInput
from longtail_mcp.pipelines.compiler import Compiled, ToolFacts
from longtail_mcp.pipelines.model import Step
from longtail_mcp.pipelines.source import compile_source

FACTS = {
    "http-fetch/fetch_json": ToolFacts(read_only=True),
    "files/list_dir": ToolFacts(read_only=True),
    "files/read_file": ToolFacts(read_only=True),
    "files/write_file": ToolFacts(read_only=False),
    "mail/send": ToolFacts(read_only=False),
}
SOMEBODY = "ops@example.com"


def compile_(fn: Callable[..., Any], **options: Any) -> Compiled:
    return compile_source(fn, tools=FACTS.get, **options)


def steps(compiled: Compiled) -> list[dict[str, Any]]:
    return [s.model_dump(exclude_defaults=True) for s in compiled.pipeline.steps]


def line_of(fn: Callable[..., Any], marker: str = "# <- refused") -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(n for n, line in enumerate(lines) if marker in line)


# -- the supported subset


async def save_rates(ctx: Any, input: dict[str, Any]) -> dict[str, Any]:
    """Fetch today's rates for a base currency
    and save them as JSON.

    Not part of the description."""
    rates = await ctx.call_tool("http-fetch/fetch_json", {"url": f"https://rates.example/latest?base={input['base']}"})
    saved = await ctx.call_tool("files/write_file", {"path": input["path"], "content": json.dumps(rates["data"]),
                                                     "overwrite": True}, retries=5)
    return {"saved": saved["path"], "first": rates["data"]["currencies"][0], "kind": "rates"}


def test_assignments_become_steps_named_after_their_variables() -> None:
    compiled = compile_(save_rates)

    assert compiled.pipeline.model_dump(exclude_defaults=True) == {
        "name": "save_rates_pipeline",
        "description": "Fetch today's rates for a base currency and save them as JSON.",
        "tags": ["http-fetch", "files"],
        "input_schema": {"type": "object", "required": ["base", "path"], "properties": {"base": {}, "path": {}}},
        "steps": [
            {"id": "rates", "tool": "http-fetch/fetch_json",
             "args": {"url": "https://rates.example/latest?base={{ inputs.base }}"}},
            {"id": "saved", "tool": "files/write_file", "retries": 5,
             "args": {"path": "{{ inputs.path }}", "content": "{{ steps.rates.data | tojson }}", "overwrite": True}},
        ],
        "output": {"saved": "{{ steps.saved.path }}", "first": "{{ steps.rates.data.currencies[0] }}",
                   "kind": "rates"},
    }
    assert compile_(save_rates, name="Rates Saver").pipeline.name == "rates_saver"


async def parallel(ctx: Any, input: dict[str, Any]) -> None:
    a, b = await ctx.gather(ctx.call_tool("files/write_file", {"path": "a.txt", "content": "a"}),
                            ctx.call_tool("files/write_file", {"path": "b.txt", "content": "b"}))
    await ctx.call_tool("mail/send", {"body": f"wrote {a['path']} and {b['path']}"})
    await ctx.call_tool("mail/send", {"body": "done"})
    await ctx.call_tool("files/read_file", {"path": "c.txt"})


def test_a_gather_gives_parallel_steps_and_effects_after_it_keep_their_order() -> None:
    compiled = compile_(parallel)

    assert steps(compiled) == [
        {"id": "a", "tool": "files/write_file", "args": {"path": "a.txt", "content": "a"}},
        {"id": "b", "tool": "files/write_file", "args": {"path": "b.txt", "content": "b"}},
        {"id": "send", "tool": "mail/send", "args": {"body": "wrote {{ steps.a.path }} and {{ steps.b.path }}"}},
        {"id": "send_2", "tool": "mail/send", "args": {"body": "done"}, "needs": ["send"]},
        {"id": "read_file", "tool": "files/read_file", "args": {"path": "c.txt"}},
    ]
    assert compiled.pipeline.output is None
    assert compiled.pipeline.description == ("Compiled from the source of parallel: files/write_file → "
                                             "files/write_file → mail/send → mail/send → files/read_file")


async def loops(ctx: Any, input: dict[str, Any]) -> dict[str, Any]:
    listing = await ctx.call_tool("files/list_dir", {"path": input["dir"]})
    for entry in listing["entries"]:
        await ctx.call_tool("files/read_file", {"path": f"{input['dir']}/{entry['name']}", "tag": "x"})
    pages = [await ctx.call_tool("http-fetch/fetch_json", {"url": u}) for u in input["urls"]]
    return {"pages": pages, "count": len(pages)}


def test_a_for_loop_and_a_list_comprehension_become_for_each_steps() -> None:
    compiled = compile_(loops)

    assert steps(compiled) == [
        {"id": "listing", "tool": "files/list_dir", "args": {"path": "{{ inputs.dir }}"}},
        {"id": "each_read_file", "tool": "files/read_file", "for_each": "{{ steps.listing.entries }}",
         "args": {"path": "{{ inputs.dir }}/{{ item.name }}", "tag": "x"}},
        {"id": "pages", "tool": "http-fetch/fetch_json", "for_each": "{{ inputs.urls }}",
         "args": {"url": "{{ item }}"}},
    ]
    assert compiled.pipeline.output == {"pages": "{{ steps.pages }}", "count": "{{ steps.pages | length }}"}


async def review(ctx: Any, input: dict[str, Any]) -> Any:
    draft = await ctx.call_tool("files/read_file", {"path": "draft.md"})
    decision = await ctx.escalate("editor", f"Publish {input['title']}?", {"text": draft["content"]},
                                  form_schema={"type": "object"}, priority=2)
    if decision["approved"] and decision.get("channel") != "none":
        await ctx.call_tool("mail/send", {"to": decision["channel"], "body": draft["content"]})
    elif input.get("retry") is not None:
        await ctx.escalate("author", "Rework the draft")
    return decision


def test_an_escalation_becomes_a_human_step_and_an_if_a_when() -> None:
    compiled = compile_(review)

    assert steps(compiled) == [
        {"id": "draft", "tool": "files/read_file", "args": {"path": "draft.md"}},
        {"id": "decision", "human": {"role": "editor", "message": "Publish {{ inputs.title }}?",
                                     "data": {"text": "{{ steps.draft.content }}"},
                                     "form_schema": {"type": "object"}, "priority": 2}},
        {"id": "send", "tool": "mail/send",
         "when": "{{ steps.decision.approved and ((steps.decision.channel | default(none)) != 'none') }}",
         "args": {"to": "{{ steps.decision.channel }}", "body": "{{ steps.draft.content }}"}},
        {"id": "review", "human": {"role": "author", "message": "Rework the draft"},
         "when": "{{ (not (steps.decision.approved and ((steps.decision.channel | default(none)) != 'none'))) "
                 "and ((inputs.retry | default(none)) is not none) }}",
         "needs": ["send"]},
    ]
    assert compiled.pipeline.output == "{{ steps.decision }}"
    assert compiled.pipeline.input_schema == {"type": "object", "required": ["title"],
                                              "properties": {"title": {}, "retry": {}}}


class Order(TypedDict):
    base: str
    count: int


async def typed(ctx: Any, input: Order) -> None:
    await ctx.call_tool("files/write_file", {"path": input["base"], "content": input.get("note", "none"),
                                             "n": input.get("count"), "first": input.get("items", [])[-1]})


def test_input_keys_are_typed_by_a_typed_dict_or_their_default() -> None:
    compiled = compile_(typed)

    assert compiled.pipeline.input_schema == {"type": "object", "required": ["base"], "properties": {
        "base": {"type": "string"}, "note": {"default": "none", "type": "string"}, "count": {"type": "integer"},
        "items": {"default": [], "type": "array"}}}
    assert steps(compiled)[0]["args"] == {"path": "{{ inputs.base }}",
                                          "content": "{{ inputs.note | default('none') }}",
                                          "n": "{{ inputs.count | default(none) }}",
                                          "first": "{{ (inputs['items'] | default([]))[-1] }}"}


class Forecast(BaseModel):
    city: str
    days: int = 3


async def modelled(ctx: Any, req: Forecast) -> None:
    await ctx.call_tool("http-fetch/fetch_json", {"url": f"https://weather.example/{req.city}", "days": req.days})


def test_an_input_model_gives_the_schemas_of_the_fields_read() -> None:
    compiled = compile_(modelled)

    assert compiled.pipeline.input_schema == {"type": "object", "required": ["city"], "properties": {
        "city": {"title": "City", "type": "string"}, "days": {"default": 3, "title": "Days", "type": "integer"}}}
    assert steps(compiled)[0]["args"] == {"url": "https://weather.example/{{ inputs.city }}",
                                          "days": "{{ inputs.days }}"}


async def whole(ctx: Any, token: str) -> None:
    await ctx.call_tool("files/write_file", {"path": ".env", "content": f"TOKEN={token}", "note": "{{ raw }}"})


def test_an_input_used_whole_is_the_input_named_input() -> None:
    compiled = compile_(whole)

    assert compiled.pipeline.input_schema == {"type": "object", "required": ["input"],
                                              "properties": {"input": {"type": "string"}}}
    assert steps(compiled)[0]["args"] == {"path": ".env", "content": "TOKEN={{ inputs.input }}",
                                          "note": "{{ '{' }}{{ '{' }} raw }}"}


async def notes(ctx: Any, input: dict[str, Any]) -> None:
    items = await ctx.call_tool("acme/lookup", {"q": input["q"]})
    await ctx.call_tool("mail/send", {"body": items["hits"]})


def test_unknown_tools_are_noted_and_a_step_named_like_a_dict_method_is_subscripted() -> None:
    compiled = compile_(notes)
    line = inspect.getsourcelines(notes)[1]

    assert [s["id"] for s in steps(compiled)] == ["items", "send"]
    assert steps(compiled)[1] == {"id": "send", "tool": "mail/send", "args": {"body": "{{ steps['items'].hits }}"}}
    assert compiled.notes == [
        f"unknown tool acme/lookup (line {line + 1}): treated as having effects",
        f"step items: acme/lookup (line {line + 1})",
        f"step send: mail/send (line {line + 2})",
        f"input 'q': read at line {line + 1} (required)",
    ]


# -- everything else is refused, with its line


async def uses_while(ctx: Any, input: dict[str, Any]) -> None:
    while True:  # <- refused
        await ctx.call_tool("mail/send", {"body": "again"})


async def uses_try(ctx: Any, input: dict[str, Any]) -> None:
    await ctx.call_tool("mail/send", {"body": "first"})
    try:  # <- refused
        await ctx.call_tool("mail/send", {"body": "second"})
    except InvalidInput:
        await ctx.call_tool("mail/send", {"body": "third"})


async def uses_run(ctx: Any, input: dict[str, Any]) -> None:
    picked = await ctx.run(len, [1, 2])  # <- refused
    await ctx.call_tool("mail/send", {"body": picked})


async def helper(value: Any) -> Any:
    return value


async def uses_helper(ctx: Any, input: dict[str, Any]) -> None:
    value = await helper(input)  # <- refused
    await ctx.call_tool("mail/send", {"body": value})


async def uses_local(ctx: Any, input: dict[str, Any]) -> None:
    base = "EUR"  # <- refused
    await ctx.call_tool("mail/send", {"body": base})


async def uses_global(ctx: Any, input: dict[str, Any]) -> None:
    await ctx.call_tool("mail/send", {"to": SOMEBODY})  # <- refused


async def uses_long_loop(ctx: Any, input: dict[str, Any]) -> None:
    for name in input["names"]:  # <- refused
        await ctx.call_tool("mail/send", {"to": name})
        await ctx.call_tool("mail/send", {"to": name})


async def returns_early(ctx: Any, input: dict[str, Any]) -> Any:
    if input["skip"]:
        return None  # <- refused
    return await ctx.call_tool("mail/send", {"body": "x"})


async def names_tool_late(ctx: Any, input: dict[str, Any]) -> None:
    await ctx.call_tool(input["tool"], {"body": "x"})  # <- refused


async def sleeps(ctx: Any, input: dict[str, Any]) -> None:
    await ctx.sleep(5)  # <- refused


async def computes(ctx: Any, input: dict[str, Any]) -> None:
    await ctx.call_tool("mail/send", {"n": input["n"] + 1})  # <- refused


async def gathers_into_one(ctx: Any, input: dict[str, Any]) -> None:
    both = await ctx.gather(ctx.call_tool("mail/send", {}), ctx.call_tool("mail/send", {}))  # <- refused
    await ctx.call_tool("mail/send", {"body": both})


@pytest.mark.parametrize(("fn", "construct"), [
    (uses_while, "a while loop"),
    (uses_try, "a try statement"),
    (uses_run, "ctx.run (a Python step cannot be a pipeline step)"),
    (uses_helper, "awaiting a call of helper other than ctx.call_tool, ctx.gather or ctx.escalate"),
    (uses_local, "an assignment that is not an awaited tool call, gather or escalation"),
    (uses_global, "the name 'SOMEBODY' (only the input, earlier results and the loop's item can be read)"),
    (uses_long_loop, "a for loop whose body is not one `await ctx.call_tool(...)`"),
    (returns_early, "a return that is not the workflow's last statement"),
    (names_tool_late, "a tool name that is not a 'server/tool' string literal"),
    (sleeps, "ctx.sleep"),
    (computes, "the expression `input['n'] + 1`"),
    (gathers_into_one, "a gather assigned to one name (unpack it: `a, b = await ctx.gather(...)`)"),
])
def test_a_construct_outside_the_subset_is_refused_with_its_line(fn: Callable[..., Any], construct: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_(fn)

    line = line_of(fn)
    assert caught.value.message.startswith(f"line {line}: cannot compile {construct}; the supported subset is ")
    assert caught.value.data == {"file": __file__, "line": line}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_every_expression_written_is_valid_jinja() -> None:
    env = SandboxedEnvironment()
    for fn in (save_rates, parallel, loops, review, typed, modelled, whole, notes):
        for text in _strings(compile_(fn).pipeline.model_dump()):
            env.parse(text)


def test_a_when_means_what_the_python_condition_meant() -> None:
    send, rework = compile_(review).pipeline.steps[2:]
    env = SandboxedEnvironment()

    def when(step: Step, decision: dict[str, Any], **inputs: Any) -> Any:
        assert step.when is not None
        test = env.compile_expression(step.when.removeprefix("{{ ").removesuffix(" }}"))
        return test(steps={"decision": decision}, inputs={"title": "t", **inputs})

    assert when(send, {"approved": True, "channel": "ops"}) is True
    assert when(send, {"approved": True, "channel": "none"}) is False
    assert when(send, {"approved": True}) is True  # .get() gives None, and None != "none"
    assert when(rework, {"approved": False}, retry=1) is True
    assert when(rework, {"approved": False}) is False  # .get() gives None: a missing key is not "not None"


def plain(ctx: Any, input: dict[str, Any]) -> None:
    return None


def test_only_an_async_function_with_readable_source_compiles() -> None:
    with pytest.raises(InvalidInput, match="a workflow is an `async def wf"):
        compile_(plain)
    with pytest.raises(InvalidInput, match="cannot read the source"):
        compile_(len)

"""The pipeline designer: "describe what you need; if you've registered the tools, the designer builds the
workflow". A workflow (type `design`): the model drafts pipeline YAML from the description and the tools'
schemas; every problem the parser finds (with its line and column) goes back to it, at most `rounds` times;
a valid draft is saved as a draft pipeline, which — like any other — must pass `verify_pipeline` before it
is activated. When no tool can do a part of the job, the model says which capability is missing
(`missing_capability`) instead of inventing a tool; an unknown tool is a parser problem anyway.
"""

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, Field

from longtail_mcp.agents import toolbox
from longtail_mcp.agents.llm import LLMCall
from longtail_mcp.agents.loop import LLM_STEP, AgentServices, result_text
from longtail_mcp.errors import Conflict, Forbidden, InvalidInput
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.loader import PipelineInvalid, parse
from longtail_mcp.runtime.context import Context
from longtail_mcp.runtime.registry import RetryPolicy, StepSpec

WORKFLOW = "design"
MAX_TOOLS = 60  # the most tool definitions shown to the model (the best matches for the description)
SYSTEM_PROMPT = """You design longtail-mcp pipelines: deterministic YAML DAGs of MCP tool calls. Call \
submit_pipeline with the YAML, or missing_capability when no listed tool can do a part of the job (never \
invent a tool). The format:

name: snake_case_name            # ^[a-z][a-z0-9_]{0,62}$; also the MCP tool name
description: what it does
input_schema: {type: object, required: [a], properties: {a: {type: string}}}
steps:
  - id: first                    # ^[a-z][a-z0-9_]{0,62}$, unique
    tool: server/tool            # one of the listed tools, exactly
    args: {x: "{{ inputs.a }}"}  # Jinja2 expressions over inputs.<name> and steps.<id> (a step's result)
  - id: second
    tool: server/tool
    args: {y: "{{ steps.first.some_field }}", z: "{{ steps.first | tojson }}"}
    when: "{{ steps.first.count > 0 }}"          # optional condition
  - id: each
    for_each: "{{ steps.first.items }}"          # optional loop; `item` and `index` inside
    tool: server/tool
    args: {v: "{{ item.name }}"}
  - id: ask                                      # a person decides: the run waits durably
    human: {role: reviewer, message: "Approve {{ inputs.a }}?"}
output: {result: "{{ steps.second.field }}"}
examples: [{a: "a realistic value"}]             # inputs to verify it with

Arguments must match each tool's input schema; read a step's result by the fields of its output schema."""


class DesignInput(BaseModel):
    """The input of a `design` run."""

    description: str = Field(min_length=1, max_length=20_000, description="what the pipeline should do")
    name: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,62}$", description="the pipeline's name")
    tags: list[str] | None = Field(None, max_length=20, description="offer only tools of these servers or tags")
    rounds: int = Field(3, ge=1, le=5, description="most drafts the model may write")


class DesignResult(BaseModel):
    """A saved draft, the capability no tool has, or the problems of the last draft."""

    status: Literal["drafted", "missing", "failed"]
    pipeline: str | None = None
    version: int | None = None
    yaml: str | None = None
    missing: str | None = Field(None, description="the capability no registered tool offers, and why")
    problems: list[str] = Field(default_factory=list)
    rounds: int = 0
    llm_calls: int = 0
    next: str = ""


def workflow(services: Callable[[], AgentServices]) -> Callable[[Context, DesignInput], Awaitable[dict[str, Any]]]:
    """The `design` workflow, bound to the app."""

    async def design(ctx: Context, input: DesignInput) -> dict[str, Any]:
        return (await run_design(ctx, services(), input)).model_dump()

    return design


_SUBMIT = {"name": "submit_pipeline", "description": "Submit the pipeline's YAML (it is checked; problems come back).",
           "input_schema": {"type": "object", "required": ["yaml"], "properties": {"yaml": {"type": "string"}}}}
_MISSING = {"name": "missing_capability", "description": "Say which capability no listed tool offers.",
            "input_schema": {"type": "object", "required": ["capability"], "properties": {
                "capability": {"type": "string"}, "why": {"type": "string"}}}}


async def _tools(services: AgentServices, description: str, tags: list[str] | None) -> list[dict[str, Any]]:
    """The tools the model may use, with their schemas: the best matches for the description first."""
    matching = toolbox.matching(await services.tool_catalog(), tags, None)
    words = set(description.lower().split())
    ranked = sorted(matching, key=lambda t: (-toolbox.score(words, *t), t[0]))[:MAX_TOOLS]
    return [{"tool": q, "description": i.description, "read_only": i.read_only, "input_schema": i.input_schema,
             "output_schema": i.output_schema} for q, i in ranked]


async def _check(services: AgentServices, text: str) -> list[str]:
    try:
        parse(text, tools=await services.tool_catalog())
    except PipelineInvalid as exc:
        return [str(p) for p in exc.problems]
    return []


async def _save(services: AgentServices, actor: Principal, text: str) -> dict[str, Any]:
    try:
        info = await store.save(services.db, actor, text, tools=await services.tool_catalog())
    except (InvalidInput, Conflict, Forbidden) as exc:
        return {"error": str(exc)}
    return {"pipeline": info.name, "version": info.version, "status": info.status}


async def _ask(services: AgentServices, messages: list[dict[str, Any]]) -> dict[str, Any]:
    call = await services.llm().create(system=SYSTEM_PROMPT, messages=messages, tools=[_SUBMIT, _MISSING],
                                       tool_choice={"type": "any"}, max_tokens=8192)
    return call.model_dump()


async def run_design(ctx: Context, services: AgentServices, input: DesignInput) -> DesignResult:
    actor = ctx.principal if isinstance(ctx.principal, Principal) else SYSTEM
    tools = await ctx.run(StepSpec(fn=partial(_tools, services, input.description, input.tags), name="designer.tools"))
    ask = f"Design a pipeline that does this:\n{input.description}"
    if input.name:
        ask += f"\n\nName it {input.name}."
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"{ask}\n\nThe tools:\n{result_text(tools)}"}]
    problems: list[str] = []
    text: str | None = None
    for round_ in range(1, input.rounds + 1):
        turn = LLMCall.model_validate(await ctx.run(StepSpec(
            fn=partial(_ask, services, list(messages)), name=LLM_STEP,
            retry=RetryPolicy(retries=3, backoff=2.0, max_interval=30.0))))
        messages.append({"role": "assistant", "content": turn.content})
        use = next(iter(turn.tool_uses()), None)
        if use is None:
            problems = ["the model answered without calling submit_pipeline or missing_capability"]
            messages.append({"role": "user", "content": "Call submit_pipeline or missing_capability."})
            continue
        args = dict(use.get("input") or {})
        if use.get("name") == "missing_capability":
            missing = str(args.get("capability") or "") + (f": {args['why']}" if args.get("why") else "")
            return DesignResult(status="missing", missing=missing, rounds=round_, llm_calls=round_,
                                next="register an MCP server with a tool for it (register_mcp_server), then ask again")
        text = str(args.get("yaml") or "")
        problems = await ctx.run(StepSpec(fn=partial(_check, services, text), name="designer.check"))
        if not problems:
            saved = await ctx.run(StepSpec(fn=partial(_save, services, actor, text), name="designer.save"))
            if "error" not in saved:
                return DesignResult(status="drafted", pipeline=saved["pipeline"], version=saved["version"], yaml=text,
                                    rounds=round_, llm_calls=round_,
                                    next=f"verify_pipeline {saved['pipeline']}, then deploy and activate it")
            problems = [saved["error"]]
        messages.append({"role": "user", "content": [{
            "type": "tool_result", "tool_use_id": use.get("id"), "is_error": True,
            "content": "The pipeline is not valid:\n" + "\n".join(problems)}]})
    return DesignResult(status="failed", yaml=text, problems=problems, rounds=input.rounds, llm_calls=input.rounds,
                        next="describe the job differently, or write the YAML and use create_pipeline")

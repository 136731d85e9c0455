"""The durable agent loop: a workflow (type `agent`) in which every model turn and every tool call is a
checkpointed step, so a crash mid-loop resumes without asking the model again or repeating a call.

Each round: one model turn (a step named `llm`, whose recorded output is the `LLMCall`: content, model,
tokens, latency), then each tool it asked for, in order, through `ctx.call_tool` (the journaled tool step
every workflow uses: the same invoker, approvals and idempotency keys). The loop ends when the model
answers without a tool call (`completed`), after `max_rounds` or the same tool error twice
(`exhausted`, or `escalated` when `escalate_to` names a role: a person gets the transcript).
"""

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from longtail_mcp.agents import toolbox
from longtail_mcp.agents.llm import LLM, LLMCall
from longtail_mcp.config import Settings
from longtail_mcp.db.pool import Database
from longtail_mcp.errors import LongtailError
from longtail_mcp.runtime.context import Context
from longtail_mcp.runtime.registry import RetryPolicy, StepSpec
from longtail_mcp.tools.catalog import Catalog

WORKFLOW = "agent"
LLM_STEP = "llm"
RESULT_CHARS = 100_000  # the most of one tool result a model turn is shown
SYSTEM = """You are an agent of longtail-mcp. Do what the request asks by calling the tools you are given; \
each call is recorded and may be replayed, so call a tool only when you need its result. When the work is \
done, answer with a short plain-text summary of what you did and found, without calling a tool. If a \
person must decide or supply something, call human-queue__escalate_and_wait (the run waits for them). If no \
tool can do a part of the job, say which capability is missing instead of inventing one."""


class AgentServices(Protocol):
    """What the loop needs from the composition root."""

    settings: Settings

    @property
    def db(self) -> Database: ...

    async def tool_catalog(self) -> Catalog: ...

    def llm(self) -> LLM: ...


class AgentInput(BaseModel):
    """The input of an `agent` run."""

    request: str = Field(min_length=1, max_length=20_000, description="what to do, as a person would ask it")
    tags: list[str] | None = Field(None, description="offer only tools of servers or tools with one of these tags "
                                                     "(a server's name counts as its tag)")
    tools: list[str] | None = Field(None, description="offer exactly these tools (server/tool)")
    max_rounds: int = Field(15, ge=1, le=50, description="most model turns")
    instructions: str | None = Field(None, max_length=20_000, description="added to the system prompt")
    context: dict[str, Any] | None = Field(None, description="what is already known (a routed pipeline's "
                                                             "finished steps): shown to the model, never redone")
    escalate_to: str | None = Field(None, description="a role to hand the work to when the loop cannot finish")


class AgentResult(BaseModel):
    """What an agent run returns."""

    status: Literal["completed", "escalated", "exhausted"]
    answer: str
    reason: str
    rounds: int
    tool_calls: int
    llm_calls: int
    tokens_in: int
    tokens_out: int
    model_ms: float
    model: str | None = None
    escalation_id: str | None = None
    decision: dict[str, Any] | None = Field(None, description="the decision tool the loop ended with: {name, input}")


@dataclass(frozen=True)
class Decision:
    """A tool that ends the loop instead of calling anything (triage's resolve, re-route, leave): offered
    with `definition`; `check(input)` returns an error text the model is told (the loop goes on), or None."""

    definition: dict[str, Any]
    check: Callable[[dict[str, Any]], str | None] = lambda _input: None


def workflow(services: Callable[[], AgentServices]) -> Callable[[Context, AgentInput], Awaitable[dict[str, Any]]]:
    """The `agent` workflow, bound to the app that provides tools and the model."""

    async def agent(ctx: Context, input: AgentInput) -> dict[str, Any]:
        return (await run_loop(ctx, services(), input)).model_dump()

    return agent


def result_text(value: Any) -> str:
    """A tool result as the model sees it: the canonical JSON text (the compiler recognises it as
    `| tojson` when the model passes it on), cut to RESULT_CHARS."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"),
                                                           ensure_ascii=False, default=str)
    return text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + f"… [cut: {len(text):,} characters]"


async def run_loop(ctx: Context, services: AgentServices, input: AgentInput,
                   decisions: dict[str, Decision] | None = None) -> AgentResult:
    """The loop itself (the `agent` workflow's, and triage's with its `decisions`)."""
    decisions = decisions or {}
    offered = await ctx.run(StepSpec(fn=partial(toolbox.select, services, input.tags, input.tools),
                                     name="agent.tools"))
    names: dict[str, str] = dict(offered["names"])  # model-facing name -> server/tool
    shown: list[dict[str, Any]] = [*offered["tools"], *(d.definition for d in decisions.values())]
    decision: dict[str, Any] | None = None
    system = SYSTEM + (f"\n\n{input.instructions}" if input.instructions else "")
    heading = ("Already done (do not repeat these; use their results)" if "finished_steps" in (input.context or {})
               else "Context")
    opening = input.request if not input.context else f"{input.request}\n\n{heading}:\n{result_text(input.context)}"
    messages: list[dict[str, Any]] = [{"role": "user", "content": opening}]
    calls: list[LLMCall] = []
    errors: set[tuple[str, str]] = set()
    tool_calls, reason, answer = 0, "", ""
    status: Literal["completed", "escalated", "exhausted"] = "exhausted"
    for _ in range(input.max_rounds):
        turn = LLMCall.model_validate(await ctx.run(StepSpec(
            fn=partial(_turn, services, system, list(messages), list(shown)), name=LLM_STEP,
            retry=RetryPolicy(retries=3, backoff=2.0, max_interval=30.0))))
        calls.append(turn)
        messages.append({"role": "assistant", "content": turn.content})
        uses = turn.tool_uses()
        if not uses:
            status, answer, reason = "completed", turn.text(), "the model answered without calling a tool"
            break
        results, repeated = [], None
        for use in uses:
            name = str(use.get("name"))
            if name in decisions:
                problem = decisions[name].check(dict(use.get("input") or {}))
                if problem is None:
                    decision = {"name": name, "input": dict(use.get("input") or {})}
                    break
                results.append(_result(use, problem, True))
                continue
            if name == toolbox.FIND_TOOLS:
                found = await ctx.run(StepSpec(fn=partial(toolbox.find, services, dict(use.get("input") or {}),
                                                          input.tags, input.tools), name="agent.find_tools"))
                for tool in found["tools"]:
                    if tool["name"] not in names:
                        names[tool["name"]] = found["names"][tool["name"]]
                        shown.append(tool)
                results.append(_result(use, result_text(found["summary"]), False))
                continue
            qualified = names.get(name)
            if qualified is None:
                text = f"no tool named {name!r} is offered; use one of: {', '.join(sorted(names)) or 'none'}"
                ok = False
            else:
                tool_calls += 1
                try:
                    text, ok = result_text(await ctx.call_tool(qualified, dict(use.get("input") or {}))), True
                except LongtailError as exc:
                    text, ok = _error_text(exc), False
            if not ok:
                if (name, text) in errors:
                    repeated = f"{name} failed twice with the same error: {text}"
                errors.add((name, text))
            results.append(_result(use, text, not ok))
        if decision is not None:
            status, answer, reason = "completed", turn.text(), f"the model decided: {decision['name']}"
            break
        messages.append({"role": "user", "content": results})
        if repeated:
            reason = repeated
            break
    else:
        reason = f"no answer after {input.max_rounds} model turns"
    escalation_id = None
    if status != "completed" and input.escalate_to:
        escalation = await ctx.call_tool("human-queue/escalate_to_human", {
            "role": input.escalate_to, "type": "agent",
            "message": f"An agent could not finish ({reason}): {input.request}"[:2000],
            "data": {"request": input.request, "reason": reason, "workflow_id": ctx.workflow_id,
                     "last_answer": calls[-1].text() if calls else ""},
        })
        status, escalation_id = "escalated", str(escalation.get("escalation_id") or escalation.get("id"))
    return AgentResult(
        status=status, answer=answer, reason=reason, rounds=len(calls), tool_calls=tool_calls,
        llm_calls=len(calls), tokens_in=sum(c.tokens_in for c in calls), tokens_out=sum(c.tokens_out for c in calls),
        model_ms=round(sum(c.latency_ms for c in calls), 2), model=calls[-1].model if calls else None,
        escalation_id=escalation_id, decision=decision)


def usage(steps: Iterable[Any]) -> dict[str, Any] | None:
    """The model calls a run's journal records (its `llm` steps: an agent's turns, a router's judge and
    extraction): how many, tokens in and out, model latency and models. None when it made none."""
    turns = [s.output for s in steps if s.name == LLM_STEP and s.status == "completed" and isinstance(s.output, dict)]
    if not turns:
        return None
    return {"llm_calls": len(turns), "tokens_in": sum(int(t.get("tokens_in") or 0) for t in turns),
            "tokens_out": sum(int(t.get("tokens_out") or 0) for t in turns),
            "model_ms": round(sum(float(t.get("latency_ms") or 0) for t in turns), 2),
            "models": sorted({str(t.get("model")) for t in turns})}


async def _turn(services: AgentServices, system: str, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]]) -> dict[str, Any]:
    return (await services.llm().create(system=system, messages=messages, tools=tools)).model_dump()


def _result(use: dict[str, Any], text: str, is_error: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": use.get("id"), "content": text}
    if is_error:
        block["is_error"] = True
    return block


def _error_text(exc: LongtailError) -> str:
    """What the model is told of a failed call: the tool's own message, not our wrapping."""
    error = getattr(exc, "error", None)
    if isinstance(error, dict) and error.get("message"):
        return f"{error.get('code') or error.get('type') or 'error'}: {error['message']}"
    return f"{exc.code}: {exc}"

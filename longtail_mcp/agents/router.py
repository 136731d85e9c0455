"""mcpQuery: answer a request with an active pipeline when one fits, else with the agent loop — a durable
workflow (type `query`) whose every decision is a step.

1. **template** — the request reads like an active pipeline's prompt template: run it with the slots'
   text as inputs. No model call.
2. **search** — else full-text and tag search over active pipelines (top 5); a model judges which fits
   and how sure it is; at `CONFIDENCE` or more, a model extracts the inputs against the pipeline's input
   schema (inputs that fail the schema are never used: fail closed) and the pipeline runs.
3. **agent** — else the agent loop (a child `agent` run).

A routed pipeline that fails hands the rest of the goal to the agent, with the results of the steps
that finished in its context, so their effects are not repeated (**fallback**). A successful agent run is
compiled by the closed-loop policy (agents/closed_loop.py): nothing, a draft, or an active pipeline —
the next such request takes tier 1.
"""

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, Field

from longtail_mcp.agents import closed_loop
from longtail_mcp.agents.llm import LLMCall
from longtail_mcp.agents.loop import WORKFLOW as AGENT
from longtail_mcp.agents.loop import AgentInput, AgentServices, result_text
from longtail_mcp.agents.templates import TemplateIndex
from longtail_mcp.errors import InvalidInput, WorkflowFailed
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.runner import check
from longtail_mcp.runtime.context import Context
from longtail_mcp.runtime.registry import RetryPolicy, StepSpec
from longtail_mcp.runtime.service import export_run

WORKFLOW = "query"
CONFIDENCE = 0.7
CANDIDATES = 5
Policy = Literal["off", "draft", "activate"]
JUDGE = """You route requests to automated pipelines. Given a request and candidate pipelines (name, \
description, input schema), call choose_pipeline with the one that does exactly what the request asks \
(or "none") and your confidence from 0 to 1."""
EXTRACT = """Extract the inputs of the pipeline from the request. Call give_inputs with values stated in \
the request only; never invent a value."""


class QueryInput(BaseModel):
    """The input of a `query` run."""

    request: str = Field(min_length=1, max_length=20_000)
    tags: list[str] | None = Field(None, description="consider only pipelines and tools with one of these tags")
    escalate_to: str | None = Field(None, description="a role the agent hands the work to when it cannot finish")


class QueryResult(BaseModel):
    """Which path answered, why, and with what."""

    path: Literal["template", "search", "agent", "fallback"]
    why: str
    status: str
    output: Any = None
    pipeline: str | None = None
    version: int | None = None
    run_id: str | None = None
    agent_run_id: str | None = None
    llm_calls: int = 0
    compiled: dict[str, Any] | None = None


class Router:
    """The template index of this process, rebuilt when the active pipelines change."""

    def __init__(self) -> None:
        self._stamp: Any = object()
        self._index = TemplateIndex([])

    async def index(self, services: AgentServices) -> TemplateIndex:
        stamp = await store.active_stamp(services.db)
        if stamp != self._stamp:
            stamp, rows = await store.active_templates(services.db)
            self._index, self._stamp = TemplateIndex(rows, previous=self._index), stamp
        return self._index

    async def by_template(self, services: AgentServices, request: str, tags: list[str] | None) -> dict[str, Any] | None:
        """Tier 1 (a step): the matching pipeline and inputs, and how long deciding took."""
        started = time.perf_counter()
        found = (await self.index(services)).match(request, tags)
        if found is None:
            return None
        template, inputs = found
        return {"pipeline": template.name, "version": template.version, "hash": template.hash, "inputs": inputs,
                "why": f"the request reads like the prompt template {template.text!r} of pipeline {template.name!r}",
                "decided_ms": round((time.perf_counter() - started) * 1000, 3)}


def workflow(services: Callable[[], AgentServices],
             router: Router | None = None) -> Callable[[Context, QueryInput], Awaitable[dict[str, Any]]]:
    """The `query` workflow, bound to the app."""
    shared = router or Router()

    async def query(ctx: Context, input: QueryInput) -> dict[str, Any]:
        return (await route(ctx, services(), shared, input)).model_dump()

    return query


async def choose(ctx: Context, services: AgentServices, router: Router, request: str,
                 tags: list[str] | None) -> tuple[dict[str, Any] | None, Literal["template", "search"], str, int]:
    """Tiers 1 and 2 (steps): `(the pipeline and inputs or None, the tier that decided, why, model calls)`."""
    chosen = await ctx.run(StepSpec(fn=partial(router.by_template, services, request, tags), name="router.template"))
    if chosen is not None:
        return chosen, "template", chosen["why"], 0
    chosen, why, llm_calls = await _by_search(ctx, services, request, tags)
    return chosen, "search", chosen["why"] if chosen else why, llm_calls


async def run_chosen(ctx: Context, services: AgentServices,
                     chosen: dict[str, Any]) -> tuple[Any, str | None, list[dict[str, Any]]]:
    """Run the chosen pipeline as the child `<run>/pipeline`: `(output, None, [])`, or when it fails
    `(None, its error, the tool steps it finished with their results)` — what a fallback must not redo."""
    child_id = f"{ctx.workflow_id}/pipeline"
    try:
        output = await ctx.child(store.WORKFLOW, store.run_input(
            chosen["pipeline"], chosen["version"], chosen["hash"], chosen["inputs"]), workflow_id=child_id)
    except WorkflowFailed as exc:
        finished = await ctx.run(StepSpec(fn=partial(_finished_steps, services, child_id), name="router.finished"))
        return None, str((exc.error or {}).get("message") or exc), finished
    return output, None, []


async def route(ctx: Context, services: AgentServices, router: Router, input: QueryInput) -> QueryResult:
    chosen, path, why, llm_calls = await choose(ctx, services, router, input.request, input.tags)
    if chosen is not None:
        output, failure, finished = await run_chosen(ctx, services, chosen)
        if failure is not None:
            agent = await _agent(ctx, input, context={"pipeline": chosen["pipeline"], "failed": failure,
                                                     "finished_steps": finished})
            return await _after_agent(ctx, services, input, agent, "fallback", llm_calls, pipeline=chosen,
                                      why=fallback_why(chosen, failure, finished))
        return QueryResult(path=path, why=why, status="completed", output=output,
                           pipeline=chosen["pipeline"], version=chosen["version"], run_id=f"{ctx.workflow_id}/pipeline",
                           llm_calls=llm_calls)
    agent = await _agent(ctx, input)
    return await _after_agent(ctx, services, input, agent, "agent", llm_calls, why=why)


def fallback_why(chosen: dict[str, Any], failure: str, finished: list[dict[str, Any]]) -> str:
    return (f"pipeline {chosen['pipeline']!r} failed ({failure}); the agent went on from its {len(finished)} "
            "finished step(s)")


async def _by_search(ctx: Context, services: AgentServices, request: str,
                     tags: list[str] | None) -> tuple[dict[str, Any] | None, str, int]:
    """Tier 2: search, judge, extract. Returns (the choice or None, why, model calls made)."""
    candidates = await ctx.run(StepSpec(fn=partial(_candidates, services, request, tags), name="router.search"))
    if not candidates:
        return None, "no template matches and no active pipeline matches the request's words", 0
    judged = LLMCall.model_validate(await ctx.run(StepSpec(
        fn=partial(_judge, services, request, candidates), name="llm", retry=_LLM_RETRY)))
    verdict = next(iter(judged.tool_uses()), {}).get("input") or {}
    name, confidence = str(verdict.get("name", "none")), _number(verdict.get("confidence"))
    by_name = {c["name"]: c for c in candidates}
    if name not in by_name or confidence < CONFIDENCE:
        return None, (f"no template matches; the judge chose {name!r} with confidence {confidence:.2f} "
                      f"(below {CONFIDENCE}) among {sorted(by_name)}"), 1
    candidate = by_name[name]
    extracted = LLMCall.model_validate(await ctx.run(StepSpec(
        fn=partial(_extract, services, request, candidate), name="llm", retry=_LLM_RETRY)))
    inputs = next(iter(extracted.tool_uses()), {}).get("input")
    try:
        if not isinstance(inputs, dict):
            raise InvalidInput("the model gave no inputs")
        check(candidate["input_schema"], inputs, f"the inputs extracted for {name!r}")
    except InvalidInput as exc:
        return None, f"the judge chose {name!r} ({confidence:.2f}) but extracting its inputs failed: {exc}", 2
    return ({"pipeline": name, "version": candidate["version"], "hash": candidate["hash"], "inputs": inputs,
             "why": f"no template matches; the judge chose {name!r} with confidence {confidence:.2f}"},
            "", 2)


_LLM_RETRY = RetryPolicy(retries=3, backoff=2.0, max_interval=30.0)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


async def _candidates(services: AgentServices, request: str, tags: list[str] | None) -> list[dict[str, Any]]:
    found = await store.search(services.db, status="active", tags=tags, query=request, limit=CANDIDATES)
    _stamp, rows = await store.active_templates(services.db)
    served = {r["name"]: r for r in rows}
    return [{"name": p.name, "description": p.description, "version": served[p.name]["version"],
             "hash": served[p.name]["hash"], "input_schema": served[p.name]["input_schema"] or {}}
            for p in found if p.name in served]


async def _judge(services: AgentServices, request: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    names = [c["name"] for c in candidates]
    tool = {"name": "choose_pipeline", "description": "Choose the pipeline that answers the request.",
            "input_schema": {"type": "object", "required": ["name", "confidence"], "properties": {
                "name": {"type": "string", "enum": [*names, "none"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "why": {"type": "string"}}}}
    listing = result_text([{k: c[k] for k in ("name", "description", "input_schema")} for c in candidates])
    call = await services.llm().create(
        system=JUDGE, tools=[tool], tool_choice={"type": "tool", "name": "choose_pipeline"},
        messages=[{"role": "user", "content": f"Request: {request}\n\nCandidates: {listing}"}], max_tokens=512)
    return call.model_dump()


async def _extract(services: AgentServices, request: str, candidate: dict[str, Any]) -> dict[str, Any]:
    schema = candidate["input_schema"] or {"type": "object", "properties": {}}
    tool = {"name": "give_inputs", "description": f"The inputs of pipeline {candidate['name']}.",
            "input_schema": schema}
    call = await services.llm().create(
        system=EXTRACT, tools=[tool], tool_choice={"type": "tool", "name": "give_inputs"},
        messages=[{"role": "user", "content": f"Request: {request}"}], max_tokens=1024)
    return call.model_dump()


async def _finished_steps(services: AgentServices, child_id: str) -> list[dict[str, Any]]:
    """The tool steps a failed pipeline run completed, with their results: what the agent must not redo."""
    export = await export_run(services.db, child_id)
    return [{"step": s.key, "tool": s.name, "arguments": s.input, "result": s.output}
            for s in export.steps if s.kind == "tool" and s.status == "completed"]


async def _agent(ctx: Context, input: QueryInput, context: dict[str, Any] | None = None) -> dict[str, Any]:
    agent_input = AgentInput(request=input.request, tags=input.tags, context=context, escalate_to=input.escalate_to)
    result: dict[str, Any] = await ctx.child(AGENT, agent_input.model_dump(exclude_none=True),
                                             workflow_id=f"{ctx.workflow_id}/agent")
    return result


async def _after_agent(ctx: Context, services: AgentServices, input: QueryInput, agent: dict[str, Any],
                       path: Literal["agent", "fallback"], llm_calls: int, *, why: str,
                       pipeline: dict[str, Any] | None = None) -> QueryResult:
    agent_id = f"{ctx.workflow_id}/agent"
    compiled = None
    if agent["status"] == "completed":
        policy = await ctx.run(StepSpec(
            fn=partial(closed_loop.policy_for, services, "query", input.tags), name="router.policy"))
        if policy != "off":
            compiled = await ctx.run(StepSpec(fn=partial(
                closed_loop.compile_agent_run, services, ctx.principal, agent_id, input.request, policy,
                output={"answer": agent.get("answer")},
                replaces=pipeline["pipeline"] if pipeline else None, before=f"{ctx.workflow_id}/pipeline"
                if pipeline else None), name="router.compile", retry=RetryPolicy(retries=1)))
    return QueryResult(path=path, why=why, status=agent["status"], output=agent.get("answer"),
                       pipeline=pipeline["pipeline"] if pipeline else None,
                       version=pipeline["version"] if pipeline else None, agent_run_id=agent_id,
                       run_id=f"{ctx.workflow_id}/pipeline" if pipeline else None,
                       llm_calls=llm_calls + int(agent.get("llm_calls") or 0), compiled=compiled)

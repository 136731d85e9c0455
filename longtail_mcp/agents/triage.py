"""mcpTriage: the router's three tiers over an escalation — a workflow (type `triage`) that answers an
escalation with an active pipeline when its message reads like one's prompt template (no model call),
else one a model judges fit, else a triage agent that may call tools and then decides: resolve it with a
payload (checked against the escalation's form), re-route it to another role, or leave it for a person
with its findings attached. A pipeline's output resolves the escalation (or, when the form refuses it, is
attached as findings). A successful triage is compiled by the closed-loop policy of router `triage`.

Escalation strategies: per role, `default` (wait for a person), `triage` (this workflow), or the name of a
workflow type — a custom handler written in Python (`@app.workflow("refunds")`) — started with
`{"escalation_id": ...}`. A periodic task of every worker starts the strategy's run for each new pending
escalation (once per escalation and role: the run's id says which), and the escalation's history records
it. Approvals are never handed to a strategy: people decide them.
"""

import re
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, Field

from longtail_mcp.agents import closed_loop
from longtail_mcp.agents.loop import AgentInput, AgentResult, AgentServices, Decision, run_loop
from longtail_mcp.agents.router import Router, choose, fallback_why, run_chosen
from longtail_mcp.db.pool import Conn, Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Conflict, Forbidden, InvalidInput, NotFound
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import runs
from longtail_mcp.humans.identity import SYSTEM, Principal, audit, require_admin
from longtail_mcp.runtime.context import Context
from longtail_mcp.runtime.registry import RetryPolicy, StepSpec

WORKFLOW = "triage"
BUILT_IN = ("default", "triage")
DISPATCH_BATCH = 50
MAX_ROUNDS = 10  # a triage agent's model turns (design.md §8; the query agent's default is 15)
Q = load("agents")
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")
INSTRUCTIONS = """You triage an escalation: a request that was waiting for a person. Investigate with the tools, \
do what it asks if the tools can, then decide with exactly one of: `resolve` (the payload must satisfy the \
escalation's form), `reroute` (another role should decide), or `leave_for_person` (your findings help whoever \
takes it). Never resolve what you could not check. If no tool can do a part of the job, leave it for a person \
and name the missing capability."""


class TriageInput(BaseModel):
    """The input of a `triage` run."""

    escalation_id: str = Field(min_length=1, max_length=200)
    instructions: str | None = Field(None, max_length=20_000, description="added to the triage agent's prompt")


class TriageResult(BaseModel):
    """What triage did with the escalation, by which path, and why."""

    path: Literal["template", "search", "agent", "fallback", "none"]
    decision: Literal["resolved", "rerouted", "left", "skipped"]
    why: str
    escalation_id: str
    resolution: dict[str, Any] | None = None
    role: str | None = Field(None, description="the role it was re-routed to")
    findings: str | None = None
    pipeline: str | None = None
    version: int | None = None
    run_id: str | None = None
    llm_calls: int = 0
    compiled: dict[str, Any] | None = None


def workflow(services: Callable[[], AgentServices],
             router: Router | None = None) -> Callable[[Context, TriageInput], Awaitable[dict[str, Any]]]:
    """The `triage` workflow, bound to the app."""
    shared = router or Router()

    async def triage(ctx: Context, input: TriageInput) -> dict[str, Any]:
        return (await run_triage(ctx, services(), shared, input)).model_dump()

    return triage


def _actor(principal: Any) -> Principal:
    return principal if isinstance(principal, Principal) else SYSTEM


async def _read(services: AgentServices, actor: Principal, escalation_id: str) -> dict[str, Any]:
    row = await esc.get_escalation(services.db, actor, escalation_id)
    return {"id": row.id, "role": row.role, "type": row.type, "status": row.status, "message": row.message,
            "data": row.data, "form_schema": row.form_schema}


async def run_triage(ctx: Context, services: AgentServices, router: Router, input: TriageInput) -> TriageResult:
    actor = _actor(ctx.principal)
    item = await ctx.run(StepSpec(fn=partial(_read, services, actor, input.escalation_id), name="triage.escalation"))
    base = {"escalation_id": item["id"]}
    if item["status"] != "pending":
        return TriageResult(path="none", decision="skipped", why=f"the escalation is {item['status']}", **base)
    if item["type"] == "approval":
        return TriageResult(path="none", decision="skipped", why="approvals are decided by people", **base)

    chosen, tier, why, llm_calls = await choose(ctx, services, router, item["message"], None)
    path: Literal["template", "search", "agent", "fallback"] = tier
    context: dict[str, Any] = {"escalation": {k: item[k] for k in ("id", "role", "type", "data", "form_schema")}}
    if chosen is not None:
        output, failure, finished = await run_chosen(ctx, services, chosen)
        routed = {"pipeline": chosen["pipeline"], "version": chosen["version"], "run_id": f"{ctx.workflow_id}/pipeline"}
        if failure is None:
            resolution = output if isinstance(output, dict) else {"result": output}
            applied = await _apply(ctx, services, actor, item, {"name": "resolve", "input": {"resolution": resolution}},
                                   f"pipeline {chosen['pipeline']!r} v{chosen['version']}")
            return TriageResult(path=path, why=why, llm_calls=llm_calls, **routed, **applied, **base)
        context.update(pipeline=chosen["pipeline"], failed=failure, finished_steps=finished)
        path, why = "fallback", fallback_why(chosen, failure, finished)
    else:
        routed, path = {}, "agent"
    agent = await run_loop(ctx, services, AgentInput(
        request=item["message"], context=context, max_rounds=MAX_ROUNDS, instructions=INSTRUCTIONS + (
            f"\n\n{input.instructions}" if input.instructions else "")), decisions=_decisions(item))
    decision = agent.decision or {"name": "leave_for_person", "input": {"findings": agent.answer or agent.reason}}
    applied = await _apply(ctx, services, actor, item, decision, f"the triage agent ({agent.reason})")
    compiled = None
    if agent.status == "completed" and applied["decision"] == "resolved":
        compiled = await _compile(ctx, services, item, agent, applied["resolution"],
                                  replaces=routed.get("pipeline"))
    return TriageResult(path=path, why=why, llm_calls=llm_calls + agent.llm_calls, compiled=compiled,
                        **routed, **applied, **base)


def _decisions(item: dict[str, Any]) -> dict[str, Decision]:
    def resolvable(args: dict[str, Any]) -> str | None:
        try:
            esc.validate_resolution(item["form_schema"], args.get("resolution"))
        except InvalidInput as exc:
            return f"not resolved: {exc}"
        return None

    def elsewhere(args: dict[str, Any]) -> str | None:
        role = args.get("role")
        if not isinstance(role, str) or not role:
            return "reroute needs the role to send it to"
        return f"it is already with role {role!r}" if role == item["role"] else None

    return {
        "resolve": Decision({"name": "resolve", "description": "Resolve the escalation with this payload (it must "
                             "satisfy the form) and stop.",
                             "input_schema": {"type": "object", "required": ["resolution"], "properties": {
                                 "resolution": item["form_schema"] or {"type": "object"},
                                 "summary": {"type": "string", "description": "what you did and found"}}}},
                            resolvable),
        "reroute": Decision({"name": "reroute", "description": "Send the escalation to another role and stop.",
                             "input_schema": {"type": "object", "required": ["role", "reason"], "properties": {
                                 "role": {"type": "string"}, "reason": {"type": "string"}}}}, elsewhere),
        "leave_for_person": Decision({"name": "leave_for_person", "description": "Leave the escalation for a person "
                                      "with your findings attached, and stop.",
                                      "input_schema": {"type": "object", "required": ["findings"], "properties": {
                                          "findings": {"type": "string"}}}}),
    }


async def _apply(ctx: Context, services: AgentServices, actor: Principal, item: dict[str, Any],
                 decision: dict[str, Any], by: str) -> dict[str, Any]:
    applied: dict[str, Any] = await ctx.run(StepSpec(
        fn=partial(_decide, services, actor, item, decision, f"triaged by run {ctx.workflow_id}: {by}"),
        name="triage.apply", retry=RetryPolicy(retries=2)))
    return applied


async def _decide(services: AgentServices, actor: Principal, item: dict[str, Any], decision: dict[str, Any],
                  reason: str) -> dict[str, Any]:
    """Carry out the decision; when it cannot be (the form refuses, the role is unknown, someone resolved it
    meanwhile), say why and leave the findings for a person."""
    args, db, eid = decision["input"], services.db, item["id"]
    try:
        if decision["name"] == "resolve":
            await esc.resolve(db, actor, eid, args["resolution"], reason=reason[:2000])
            return {"decision": "resolved", "resolution": args["resolution"], "findings": args.get("summary")}
        if decision["name"] == "reroute":
            await esc.reroute(db, actor, eid, args["role"], reason=f"{args.get('reason', '')} ({reason})"[:2000])
            return {"decision": "rerouted", "role": args["role"], "findings": args.get("reason")}
        findings = str(args.get("findings") or "")
    except (InvalidInput, NotFound, Forbidden) as exc:
        findings = f"triage could not {decision['name']} it ({exc}); {args}"
    except Conflict as exc:
        return {"decision": "skipped", "findings": str(exc)}
    try:
        await esc.annotate(db, actor, eid, {"triage": {"findings": findings[:20_000], "by": reason}}, reason=reason)
    except Conflict as exc:
        return {"decision": "skipped", "findings": f"{findings} ({exc})"}
    return {"decision": "left", "findings": findings}


async def _compile(ctx: Context, services: AgentServices, item: dict[str, Any], agent: AgentResult,
                   resolution: Any, *, replaces: str | None) -> dict[str, Any] | None:
    policy = await ctx.run(StepSpec(fn=partial(closed_loop.policy_for, services, "triage", None),
                                    name="router.policy"))
    if policy == "off":
        return None
    compiled: dict[str, Any] = await ctx.run(StepSpec(fn=partial(
        closed_loop.compile_agent_run, services, ctx.principal, ctx.workflow_id, item["message"], policy,
        output=resolution, replaces=replaces, before=f"{ctx.workflow_id}/pipeline" if replaces else None),
        name="router.compile", retry=RetryPolicy(retries=1)))
    return compiled


# -- strategies -----------------------------------------------------------------------------------------------


async def set_strategy(db: Database, actor: Principal, role: str, strategy: str, *,
                       known: Iterable[str] = ()) -> dict[str, Any]:
    """Set what a role's new escalations go to: `default`, `triage`, or a workflow type in `known` (the
    types live workers run). Admins of the role, audited.

    Raises:
        InvalidInput: an unknown strategy.  NotFound: no such role.  Forbidden: not an admin of it.
    """
    require_admin(actor, role, "set its escalation strategy")
    if not _NAME.match(strategy):
        raise InvalidInput(f"strategy {strategy!r} is not a name (lowercase letters, digits, _ . -)")
    if strategy not in BUILT_IN and strategy not in set(known):
        raise InvalidInput(f"unknown strategy {strategy!r}: use default, triage, or a workflow type a running "
                           "worker serves (a handler registered with @app.workflow, taking {escalation_id})")
    async with db.transaction() as conn:
        try:
            row = await (await conn.execute(Q["set_strategy"], {"role": role, "strategy": strategy,
                                                                "by": actor.id})).fetchone()
        except Exception as exc:
            if "escalation_strategy_role_fkey" in str(exc):
                raise NotFound(f"no role {role!r}") from None
            raise
        await audit(conn, actor, "role.strategy", "role", role, after=strategy)
    return dict(row or {})


async def list_strategies(db: Database) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return [dict(r) for r in await (await conn.execute(Q["list_strategies"])).fetchall()]


def strategy_run_id(role: str, escalation_id: str) -> str:
    return f"strategy/{role}/{escalation_id}"  # a form no caller may choose (service.check_caller_id)


async def dispatch(db: Database) -> int:
    """Start the strategy run of each pending escalation that has none yet at its role; returns how many
    started. Every worker runs this each poll; the run's id makes it once per escalation and role."""
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["undispatched"], {"limit": DISPATCH_BATCH})).fetchall()
    started = 0
    for row in rows:
        wid = strategy_run_id(row["role"], row["id"])
        name = WORKFLOW if row["strategy"] == "triage" else row["strategy"]
        # the history line is written with the run, so no crash leaves a strategy run without it
        _, created = await runs.start_run(db, SYSTEM, name, {"escalation_id": row["id"]}, workflow_id=wid,
                                          then=partial(_strategy_line, escalation=row, run=wid))
        started += created
    return started


async def _strategy_line(conn: Conn, *, escalation: Any, run: str) -> None:
    await audit(conn, SYSTEM, "escalation.strategy", "escalation", escalation["id"], before="pending",
                after="pending", data={"strategy": escalation["strategy"], "run": run})


def dispatch_task(db: Database) -> Callable[[], Awaitable[int]]:
    return partial(dispatch, db)

"""The human-queue server: escalate to people, and work the queue as a person or bot."""

import uuid
from datetime import datetime
from typing import Any

import anyio
from mcp.server import Server
from pydantic import BaseModel, Field

from longtail_mcp.agents import triage
from longtail_mcp.agents.triage import TriageResult
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import inbox
from longtail_mcp.humans.models import Escalation, EscalationSort, EscalationStatus
from longtail_mcp.mcp_glue.server import PrincipalSource, build_server
from longtail_mcp.runtime import service
from longtail_mcp.tools.progress import reporting
from longtail_mcp.tools.spec import Args, NoArgs, Services, ToolCall, ToolSpec
from system_servers.human_queue.content import PROMPTS, RESOURCES
from system_servers.runnables import Started, start_for

NAME = "human-queue"
TAGS = ("humans", "escalations", "approvals")
TERMINAL = ("resolved", "cancelled", "expired")


class Ref(Args):
    escalation_id: str = Field(min_length=1, max_length=300)




class EscalateIn(Args):
    role: str = Field(min_length=1, max_length=100, description="Role whose members should decide")
    message: str = Field(min_length=1, max_length=10_000, description="What the person is asked")
    data: dict[str, Any] = Field(default_factory=dict, description="Context shown with the request (at most "
                                                                   "64 KiB as JSON)")
    priority: int = Field(3, ge=1, le=5, description="1 most urgent .. 5")
    type: str = Field("review", min_length=1, max_length=100)
    form_schema: dict[str, Any] | None = Field(None, description="JSON Schema the resolution must match "
                                                                 "(default: the role's current form)")
    timeout_seconds: float | None = Field(None, gt=0, description="First-stage deadline (else the role's chain)")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Searchable labels")
    escalation_id: str | None = Field(None, min_length=1, max_length=300,
                                      description="Idempotency key: asking again with the same id and request "
                                                  "returns your first escalation (an id someone else used is a "
                                                  "conflict)")


class EscalateAndWaitIn(EscalateIn):
    wait_seconds: float = Field(45, gt=0, le=50, description="How long to wait for a decision (at most 50 s)")


class Outcome(BaseModel):
    escalation_id: str
    status: EscalationStatus
    resolution: dict[str, Any] | None = None
    resolved_by: str | None = None


class CheckIn(Ref):
    wait_seconds: float = Field(0, ge=0, le=50, description="Wait up to this long for a decision (0: just look)")


class WorkIn(Args):
    role: str | None = Field(None, max_length=100, description="Only this role (default: all of mine)")
    type: str | None = Field(None, max_length=100, description="Only this type (e.g. approval)")
    sort: EscalationSort = Field("priority", description="priority: most urgent first, then oldest; or oldest or "
                                                         "newest first")
    limit: int = Field(20, ge=1, le=200)
    offset: int = Field(0, ge=0, description="Skip this many (pass the previous page's next_offset)")


class WorkOut(BaseModel):
    escalations: list[Escalation]
    next_offset: int | None = Field(None, description="Offset of the next page; null when this is the last")


class ClaimIn(Ref):
    minutes: float = Field(30, gt=0, le=24 * 60, description="How long the claim lasts (claim again to extend)")


class ResolveIn(Ref):
    resolution: dict[str, Any] = Field(description="The decision; must match the escalation's form")
    reason: str | None = Field(None, max_length=2000)


class RerouteIn(Ref):
    role: str = Field(min_length=1, max_length=100, description="Role to send it to")
    reason: str | None = Field(None, max_length=2000)


class CancelIn(Ref):
    reason: str | None = Field(None, max_length=2000)


class TriageIn(Ref):
    instructions: str | None = Field(None, max_length=20_000, description="Added to the triage agent's prompt")


TriageOut = Started[TriageResult]


class HistoryEntry(BaseModel):
    at: datetime
    actor: str | None
    action: str = Field(description="escalation.create, .claim, .strategy, .annotate, .reroute, .resolve, ...")
    before_status: str | None = None
    after_status: str | None = None
    reason: str | None = None
    data: Any = None


class HistoryOut(BaseModel):
    escalation_id: str
    history: list[HistoryEntry]


class StrategyIn(Args):
    role: str = Field(min_length=1, max_length=100)
    strategy: str = Field(min_length=1, max_length=100, description="default (wait for a person), triage (the "
                          "triage router), or a workflow type a running worker serves (a custom handler)")


class Strategy(BaseModel):
    role: str
    strategy: str
    updated_by: str | None = None


class StrategiesOut(BaseModel):
    strategies: list[Strategy]


def _outcome(row: Escalation) -> Outcome:
    return Outcome(escalation_id=row.id, status=row.status, resolution=row.resolution, resolved_by=row.resolved_by)


async def _open(call: ToolCall, args: EscalateIn) -> Escalation:
    return await esc.create_escalation(
        call.client.db, call.principal, role=args.role, message=args.message, data=args.data,
        priority=args.priority, type=args.type, form_schema=args.form_schema, timeout=args.timeout_seconds,
        metadata=args.metadata, escalation_id=args.escalation_id or f"esc-{uuid.uuid4().hex}",
    )


async def _await_decision(call: ToolCall, escalation_id: str, seconds: float) -> Escalation:
    """The escalation once decided, or as it is when `seconds` run out (events, with a polling backstop),
    telling the caller who it waits for meanwhile. A cancelled call only stops waiting: the escalation
    stays open for its role (cancel_escalation withdraws it)."""
    row = await esc.get_escalation(call.client.db, call.principal, escalation_id)
    if row.status in TERMINAL or seconds <= 0:
        return row

    async def decided() -> None:
        async with call.client.events.subscribe(["escalation.*"]) as feed:
            current = await esc.get_escalation(call.client.db, call.principal, escalation_id)
            while current.status not in TERMINAL:
                with anyio.move_on_after(1.0):
                    async for event in feed:
                        if event.id == escalation_id:
                            break
                current = await esc.get_escalation(call.client.db, call.principal, escalation_id)

    async def status() -> str:
        now = await esc.get_escalation(call.client.db, call.principal, escalation_id)
        held = f", claimed by {now.assigned_to}" if now.assigned_to and now.status == "pending" else ""
        return f"waiting for a person: escalation {escalation_id} (role {now.role}{held})"

    with anyio.move_on_after(seconds):
        await reporting(call.progress, decided(), total=seconds, status=status)
    return await esc.get_escalation(call.client.db, call.principal, escalation_id)


async def escalate_to_human(call: ToolCall, args: EscalateIn) -> Escalation:
    return await _open(call, args)


async def escalate_and_wait(call: ToolCall, args: EscalateAndWaitIn) -> Outcome:
    row = await _open(call, args)
    return _outcome(await _await_decision(call, row.id, args.wait_seconds))


async def check_resolution(call: ToolCall, args: CheckIn) -> Outcome:
    return _outcome(await _await_decision(call, args.escalation_id, args.wait_seconds))


def _work(rows: list[Escalation], args: WorkIn) -> WorkOut:
    shown, next_offset = inbox.page(rows, limit=args.limit, offset=args.offset)
    return WorkOut(escalations=shown, next_offset=next_offset)


async def get_available_work(call: ToolCall, args: WorkIn) -> WorkOut:
    return _work(await inbox.available_work(call.client.db, call.principal, role=args.role, type=args.type,
                                            sort=args.sort, limit=args.limit + 1, offset=args.offset), args)


async def list_my_work(call: ToolCall, args: WorkIn) -> WorkOut:
    return _work(await inbox.my_work(call.client.db, call.principal, role=args.role, type=args.type, sort=args.sort,
                                     limit=args.limit + 1, offset=args.offset), args)


async def claim_escalation(call: ToolCall, args: ClaimIn) -> Escalation:
    return await esc.claim(call.client.db, call.principal, args.escalation_id, seconds=args.minutes * 60)


async def release_escalation(call: ToolCall, args: Ref) -> Escalation:
    return await esc.release(call.client.db, call.principal, args.escalation_id)


async def resolve_escalation(call: ToolCall, args: ResolveIn) -> Escalation:
    return await esc.resolve(call.client.db, call.principal, args.escalation_id, args.resolution,
                             reason=args.reason, allow_self_approval=call.client.settings.allow_self_approval)


async def reroute_escalation(call: ToolCall, args: RerouteIn) -> Escalation:
    return await esc.reroute(call.client.db, call.principal, args.escalation_id, args.role, reason=args.reason)


async def cancel_escalation(call: ToolCall, args: CancelIn) -> Escalation:
    return await esc.cancel(call.client.db, call.principal, args.escalation_id, reason=args.reason)


async def triage_escalation(call: ToolCall, args: TriageIn) -> TriageOut:
    return await start_for(call, triage.WORKFLOW, args, TriageResult)


async def escalation_history(call: ToolCall, args: Ref) -> HistoryOut:
    rows = await esc.history(call.client.db, call.principal, args.escalation_id)
    return HistoryOut(escalation_id=args.escalation_id, history=[HistoryEntry.model_validate(r) for r in rows])


async def set_escalation_strategy(call: ToolCall, args: StrategyIn) -> Strategy:
    known = [t.name for t in await service.list_workflow_types(call.client.db)]
    row = await triage.set_strategy(call.client.db, call.principal, args.role, args.strategy, known=known)
    return Strategy.model_validate(row)


async def list_escalation_strategies(call: ToolCall, args: NoArgs) -> StrategiesOut:
    return StrategiesOut(strategies=[Strategy.model_validate(r) for r in await triage.list_strategies(call.client.db)])


TOOLS = [
    ToolSpec("escalate_to_human", "Ask a role's members for a decision; returns the pending escalation at once "
             "(use check_resolution to see the decision).", EscalateIn, Escalation, escalate_to_human,
             idempotent=True, tags=TAGS),
    ToolSpec("escalate_and_wait", "Ask a role for a decision and wait for it (at most 50 s). Returns the resolution, "
             "or status 'pending' with the escalation_id when the wait runs out: then call check_resolution. "
             "Cancelling the call stops the wait; the escalation stays open (cancel_escalation withdraws it).",
             EscalateAndWaitIn, Outcome, escalate_and_wait, idempotent=True, tags=TAGS),
    ToolSpec("check_resolution", "Look at an escalation's outcome, optionally waiting (at most 50 s) for a decision. "
             "An expired escalation is never an approval.", CheckIn, Outcome, check_resolution,
             read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("get_available_work", "Escalations I may claim (my roles), most urgent first, then oldest (or by age).",
             WorkIn, WorkOut, get_available_work, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("list_my_work", "Escalations I hold a live claim on.", WorkIn, WorkOut, list_my_work,
             read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("claim_escalation", "Claim an escalation (default 30 min; claim again to extend). Fails with a "
             "conflict naming the holder if someone else has it.", ClaimIn, Escalation, claim_escalation,
             idempotent=True, tags=TAGS),
    ToolSpec("release_escalation", "Give back my claim so someone else can take it.", Ref, Escalation,
             release_escalation, idempotent=False, tags=TAGS),
    ToolSpec("resolve_escalation", "Resolve with a decision matching the escalation's form; wakes the waiting run. "
             "A rejected decision changes nothing.", ResolveIn, Escalation, resolve_escalation, tags=TAGS),
    ToolSpec("claim_and_resolve", "Claim and resolve in one transaction (fails if someone else holds a live claim).",
             ResolveIn, Escalation, resolve_escalation, tags=TAGS),
    ToolSpec("reroute_escalation", "Send an escalation to another role (its claim is cleared).", RerouteIn,
             Escalation, reroute_escalation, tags=TAGS),
    ToolSpec("cancel_escalation", "Withdraw an escalation; a run waiting on it gets 'cancelled', never a decision.",
             CancelIn, Escalation, cancel_escalation, destructive=True, tags=TAGS),
    ToolSpec("escalation_history", "What happened to an escalation, oldest first: created, claimed, handed to a "
             "strategy, annotated with findings, re-routed, resolved — who, when and why.",
             Ref, HistoryOut, escalation_history, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("triage_escalation", "Triage an escalation now: an active pipeline whose request template fits its "
             "message resolves it with no model call; else an agent investigates with the tools, then resolves it, "
             "re-routes it, or leaves it for a person with its findings. Approvals are left to people.",
             TriageIn, TriageOut, triage_escalation, tags=TAGS),
    ToolSpec("set_escalation_strategy", "Choose what a role's new escalations go to first: default (a person), "
             "triage (the triage router), or a custom handler (a workflow type). Admins of the role.",
             StrategyIn, Strategy, set_escalation_strategy, idempotent=True, tags=TAGS),
    ToolSpec("list_escalation_strategies", "Every role's escalation strategy.", NoArgs, StrategiesOut,
             list_escalation_strategies, read_only=True, idempotent=True, tags=TAGS),
]


def build(services: Services, principal_of: PrincipalSource) -> Server[Any]:
    return build_server(NAME, TOOLS, services, principal_of, resources=RESOURCES, prompts=PROMPTS,
                        instructions="The human queue: escalate to people and work their queue.")

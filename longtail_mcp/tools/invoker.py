"""`ctx.call_tool` inside a run: the kernel's `ToolInvoker`, plugged in by the composition root.

A call of one of the family's own tools runs in process, exactly as over MCP (`tools.invoke`), as the
run's principal; a registered server's tool is called through the registry. Either way the call is
a journaled step of kind `tool`. A family tool refused by a safety policy does not fail the run: it
opens an approval escalation (a durable external wait) and, once approved, makes the call once.
`human-queue/escalate_and_wait` inside a run is a durable wait for a person, not a bounded poll.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import anyio
import anyio.to_thread

from longtail_mcp.errors import Conflict, Forbidden, InvalidInput, NotFound, PolicyDenied, StepFailed
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.runtime.context import Context
from longtail_mcp.runtime.registry import RetryPolicy, StepSpec
from longtail_mcp.tools import approvals, registry
from longtail_mcp.tools.invoke import invoke
from longtail_mcp.tools.spec import Approvable, Services, ToolSpec, parse_args

Family = Mapping[str, Sequence[ToolSpec]]  # server name -> its tools
ESCALATE_FIELDS = frozenset({"role", "message", "data", "priority", "type", "form_schema", "timeout_seconds",
                             "metadata", "wait_seconds", "escalation_id"})


class FamilyInvoker:
    """Calls the family's own tools (loaded on first use by `family()`) and registered servers' tools."""

    def __init__(self, services: Services, family: Callable[[], Family]) -> None:
        self.services = services
        self._load = family
        self._family: Family | None = None

    def find(self, server: str, tool: str) -> ToolSpec | None:
        """The definition of `server/tool` if it is one of the family's own tools."""
        if self._family is None:
            self._family = self._load()
        return next((spec for spec in self._family.get(server, ()) if spec.name == tool), None)

    def names(self) -> list[str]:
        """Every family tool as `server/tool`."""
        if self._family is None:
            self._family = self._load()
        return [f"{server}/{spec.name}" for server, specs in self._family.items() for spec in specs]

    async def call(self, ctx: Context, seq: int, qualified: str, args: dict[str, Any], retry: RetryPolicy) -> Any:
        server, _, tool = qualified.partition("/")
        if self._family is None:  # importing the servers takes about a second: not on the event loop, where
            self._family = await anyio.to_thread.run_sync(self._load)  # it stalled lease renewals past 1 s
        if qualified == "human-queue/escalate_and_wait":
            return await self._escalate(ctx, seq, args)
        spec = self.find(server, tool)
        if spec is None:  # a registered server's: its own errors are answers, an unreachable server is retried
            remote = StepSpec(fn=partial(registry.call_tool, self.services.db, server, tool, principal=ctx.principal,
                                         sessions=self.services.remote_sessions),
                              name=qualified, retry=replace(retry, non_retryable=(Forbidden, NotFound)))
            return await ctx.run_step(seq, remote, (args,), {}, kind="tool")
        return await self._family_call(ctx, seq, qualified, spec, args, retry)

    async def _family_call(self, ctx: Context, seq: int, qualified: str, spec: ToolSpec, args: dict[str, Any],
                           retry: RetryPolicy) -> Any:
        server = qualified.partition("/")[0]
        model = parse_args(spec, args)  # bad arguments fail here, before any step is journaled
        step = StepSpec(fn=partial(invoke, spec, server, self.services, ctx.principal or SYSTEM, explain=False),
                        name=qualified, retry=replace(retry, non_retryable=(Forbidden, NotFound, Conflict)))
        if not isinstance(model, Approvable) or model.approval_id is not None:
            return await ctx.run_step(seq, step, (args,), {}, kind="tool")
        call_args = approvals.canonical(model)
        try:
            return await ctx.run_step(seq, step, (call_args,), {}, kind="tool")
        except StepFailed as exc:
            if exc.error.get("code") != PolicyDenied.code:
                raise
            refusal = exc.error
        who = (ctx.principal or SYSTEM).id
        reason, rule = str(refusal.get("message", "")), str(refusal.get("rule", ""))
        request: dict[str, Any] = {
            "role": self.services.settings.approver_role, "message": approvals.message(qualified, who, reason),
            "data": approvals.details(qualified, call_args, who=who, reason=reason, rule=rule),
            "form_schema": approvals.APPROVAL_FORM, "type": "approval", "priority": 2, "timeout": None,
            "assigned_to": None, "action": (qualified, call_args),
            "metadata": {"tool": qualified, "rule": rule, "workflow_id": ctx.workflow_id},
        }
        approval_id, decision = await ctx.wait_external(ctx.followup_seq(seq, "approval"), "escalation",
                                                        request["role"], request)
        if decision.get("approved") is not True:
            why = f": {decision['reason']}" if decision.get("reason") else ""
            raise PolicyDenied(f"{qualified} was refused by policy ({reason}) and the approver declined{why}",
                               rule=rule or "approval")
        return await ctx.run_step(ctx.followup_seq(seq, "approved"), step, ({**call_args, "approval_id": approval_id},),
                                  {}, kind="tool")

    async def _escalate(self, ctx: Context, seq: int, args: dict[str, Any]) -> dict[str, Any]:
        """`human-queue/escalate_and_wait` from a run: the run suspends until a person decides (no 50 s
        bound); the result has the tool's shape. An expiry raises WaitTimeout as ctx.escalate does."""
        unknown = set(args) - ESCALATE_FIELDS
        if unknown or "role" not in args or "message" not in args:
            raise InvalidInput(f"escalate_and_wait needs role and message (unknown: {sorted(unknown)})")
        request = {"role": args["role"], "message": args["message"], "data": args.get("data"),
                   "priority": args.get("priority", 3), "type": args.get("type", "review"),
                   "form_schema": args.get("form_schema"), "timeout": args.get("timeout_seconds"),
                   "metadata": args.get("metadata"), "assigned_to": None, "action": None}
        escalation_id, resolution = await ctx.wait_external(seq, "escalation", args["role"], request)
        return {"escalation_id": escalation_id, "status": "resolved", "resolution": resolution}

"""Certified workflows: the interceptor that keeps a task per run and turns failures into escalations.

A certified run never fails on an error: an uncaught exception, or a returned `Escalation(...)`,
opens an escalation (to the workflow's role) and waits; the resolution re-runs the workflow body
with `ctx.resolver` holding the resolver's payload. Only an escalation that expires or is
cancelled ends the run as failed. The re-run is part of the same journal, so replay stays exact.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from longtail_mcp.db.pool import Conn, Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import EscalationClosed, InvalidInput, NonDeterminism, NotFound, WaitTimeout, error_to_json
from longtail_mcp.humans.identity import Principal, audit, require_superadmin
from longtail_mcp.records import iso
from longtail_mcp.runtime.codec import dumps_or_none
from longtail_mcp.runtime.context import Context
from longtail_mcp.runtime.registry import WorkflowSpec

H = load("humans")


@dataclass
class Escalation:
    """Return this from a certified workflow to hand the case to a person instead of finishing."""

    role: str | None = None
    message: str = "needs a decision"
    data: dict[str, Any] = field(default_factory=dict)
    priority: int = 3
    form_schema: dict[str, Any] | None = None
    timeout: float | None = None
    type: str = "review"


async def _task(ctx: Context, status: str, *, attempts: int, escalation_id: str | None = None,
                error: dict[str, Any] | None = None, conn: Conn | None = None) -> None:
    """Idempotent task update (a replay re-applies the same sequence of statuses), on `conn`'s
    transaction when given (the one that opens the escalation), else on a side transaction of its own."""

    async def write(on: Conn, _wake_seq: int = 0) -> None:
        await on.execute(H["set_task"], {
            "id": ctx.workflow_id, "name": ctx.name, "status": status, "escalation_id": escalation_id,
            "attempts": attempts, "error": dumps_or_none(error),
        })

    if conn is not None:
        await write(conn)
    else:
        await ctx.side_transaction(write)


async def intercept(ctx: Context, body: Callable[[], Awaitable[Any]], input: Any, role: str) -> Any:
    """Run `body` under the certified contract (see module docstring)."""
    ctx.resolver = None
    attempt = 0
    while True:
        attempt += 1
        await _task(ctx, "in_progress", attempts=attempt)
        error: dict[str, Any] | None = None
        try:
            result = await body()
        except NonDeterminism:
            raise  # a code/journal mismatch is for developers, not for a reviewer's queue
        except Exception as exc:
            error = error_to_json(exc)
            result = Escalation(role=role, message=f"{ctx.name} failed: {error['message']}", type="error",
                                data={"error": error, "input": input, "attempt": attempt})
        if not isinstance(result, Escalation):
            await _task(ctx, "completed", attempts=attempt)
            return result

        async def point_task_at(conn: Conn, escalation_id: str, attempt: int = attempt,
                                error: dict[str, Any] | None = error) -> None:
            # In the transaction that opens the escalation: the task never names one not yet written.
            await _task(ctx, "needs_intervention", attempts=attempt, escalation_id=escalation_id, error=error,
                        conn=conn)

        request: dict[str, Any] = {"role": result.role or role, "message": result.message, "data": result.data,
                   "form_schema": result.form_schema, "priority": result.priority, "timeout": result.timeout,
                   "assigned_to": None, "type": result.type, "metadata": None, "action": None}
        try:
            _, ctx.resolver = await ctx.wait_external(ctx.next_seq(), "escalation", request["role"], request,
                                                      also=point_task_at)
        except (WaitTimeout, EscalationClosed, InvalidInput, NotFound) as exc:
            await _task(ctx, "failed", attempts=attempt, error=error_to_json(exc))
            raise


class CertifiedInterceptor:
    """The interceptor of certified workflow types: in code (`certified=True`, `role=`) or by a
    configuration row (`certify`), refreshed by `refresh` every worker poll."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.configured: dict[str, str] = {}

    def role(self, spec: WorkflowSpec) -> str | None:
        if spec.options.get("certified"):
            return str(spec.options.get("role") or "admin")
        return self.configured.get(spec.name)

    def applies(self, spec: WorkflowSpec) -> bool:
        return self.role(spec) is not None

    async def run(self, ctx: Context, spec: WorkflowSpec, body: Callable[[], Awaitable[Any]]) -> Any:
        return await intercept(ctx, body, ctx.input, self.role(spec) or "admin")

    async def refresh(self) -> None:
        """Which types are certified by configuration (a periodic task)."""
        self.configured = await certified_types(self.db)


async def get_task(db: Database, workflow_id: str) -> dict[str, Any] | None:
    async with db.connection() as conn:
        row = await (await conn.execute(H["get_task"], {"id": workflow_id})).fetchone()
    return iso(row) if row else None


async def certify(db: Database, actor: Principal, name: str, *, role: str = "admin", certified: bool = True) -> None:
    """Certify a workflow type by configuration (no code change); workers pick it up within a poll."""
    require_superadmin(actor, "certify workflow types")
    async with db.transaction() as conn:
        if await (await conn.execute(H["role_exists"], {"role": role})).fetchone() is None:
            raise NotFound(f"no role {role!r} to escalate {name!r} errors to")
        await conn.execute(H["set_config"], {"name": name, "certified": certified, "role": role})
        await audit(conn, actor, "workflow.certify" if certified else "workflow.decertify", "workflow_type", name,
                    data={"role": role})


async def certified_types(db: Database) -> dict[str, str]:
    """{workflow type: role} of the types certified by configuration."""
    async with db.connection() as conn:
        rows = await (await conn.execute(H["list_configs"])).fetchall()
    return {r["name"]: r["role"] for r in rows if r["certified"]}

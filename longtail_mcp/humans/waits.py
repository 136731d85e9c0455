"""The human queue's plug-ins to the runtime kernel: escalations as durable external waits, closing
a cancelled run's escalations, and moving escalations past their deadlines.

`ctx.escalate(...)` is the kernel's `wait_external("escalation", ...)`; this module opens the row in
the transaction that records the wait, bound to that run and step, and reads back its outcome.
"""

import uuid
from typing import Any

from longtail_mcp.db.pool import Conn, Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import EscalationClosed, InvalidInput, WaitTimeout
from longtail_mcp.humans import escalations
from longtail_mcp.humans.deadlines import cancel_for_runs, process_deadlines
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.runtime.ports import CancelListener, PeriodicTask, WaitOutcome

Q = load("escalations")


class EscalationWait:
    """The `escalation` kind of external wait (see runtime/ports.py)."""

    kind = "escalation"
    key_name = "escalation_id"

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self, conn: Conn, *, workflow_id: str, seq: int, label: str, principal: Any,
                   request: dict[str, Any]) -> str:
        """Insert the run's escalation `<workflow id>:<label>` (its seq, or a pipeline step's key), bound to
        that run and step. If someone else made that id first, the run's escalation gets a fresh id: the
        other row is never read."""
        actor = principal if isinstance(principal, Principal) else SYSTEM
        wanted = f"{workflow_id}:{label}"
        for candidate in (wanted, f"{wanted}:{uuid.uuid4().hex[:12]}"):
            row = await escalations.insert_escalation(conn, self.db, actor, escalation_id=candidate,
                                                      workflow_id=workflow_id, seq=seq, **request)
            if row is not None:
                return candidate
        raise InvalidInput(f"could not open an escalation for run {workflow_id!r} at step {seq}")

    async def outcome(self, conn: Conn, *, workflow_id: str, seq: int, key: str) -> WaitOutcome:
        row = await (await conn.execute(Q["escalation_outcome"], {"id": key, "workflow_id": workflow_id,
                                                                  "seq": seq})).fetchone()
        if row is None:
            return WaitOutcome("failed", error=InvalidInput(f"escalation {key} of run {workflow_id!r} disappeared"))
        if row["status"] == "resolved":
            return WaitOutcome("resolved", value=row["resolution"])
        if row["status"] == "expired":
            return WaitOutcome("failed", error=WaitTimeout(f"escalation {key} to {row['role']!r} expired without "
                                                           "a decision"))
        if row["status"] == "cancelled":
            return WaitOutcome("failed", error=EscalationClosed(f"escalation {key} was cancelled"))
        return WaitOutcome("pending")


def cancel_listener(db: Database) -> CancelListener:
    """Closes the escalations of runs being cancelled, in the cancelling transaction."""

    async def close(conn: Conn, ids: list[str], reason: str) -> None:
        await cancel_for_runs(conn, db, SYSTEM, ids, reason)

    return close


def deadline_task(db: Database) -> PeriodicTask:
    """Every poll: move overdue escalations up their chains (or expire them), free lapsed claims."""

    async def tick() -> None:
        await process_deadlines(db)

    return tick

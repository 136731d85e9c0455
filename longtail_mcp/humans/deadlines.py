"""Deadlines and endings: escalations that move up their chains or expire, and those whose run was cancelled."""

from longtail_mcp.db.pool import Conn, Database, expect_row
from longtail_mcp.db.queries import load
from longtail_mcp.events import emit
from longtail_mcp.humans.escalations import event_of, wake_run
from longtail_mcp.humans.identity import SYSTEM, Principal, audit

Q = load("escalations")
H = load("humans")


async def cancel_for_runs(conn: Conn, db: Database, actor: Principal, ids: list[str], reason: str) -> None:
    """On the cancelling transaction: close the escalations those runs were waiting on."""
    rows = await (await conn.execute(Q["cancel_for_runs"], {"ids": ids, "who": actor.id, "reason": reason})).fetchall()
    for row in rows:
        await audit(conn, actor, "escalation.cancel", "escalation", row["id"], before="pending", after="cancelled",
                    reason=reason)
    await emit(conn, db, [event_of("cancelled", r) for r in rows])
    await conn.execute(H["fail_tasks"], {"ids": ids})


async def process_deadlines(db: Database) -> int:
    """Move every overdue escalation one stage up its chain, or expire it past the last stage."""
    moved = 0
    async with db.transaction() as conn:
        due = await (await conn.execute(Q["due_escalations"])).fetchall()
        for row in due:
            if row["next_role"]:
                # Each due row is locked by this transaction (FOR UPDATE), so the UPDATE finds it.
                new = expect_row(await (await conn.execute(Q["escalate_up"], {
                    "id": row["id"], "role": row["next_role"], "deadline_seconds": row["next_stage_seconds"],
                })).fetchone(), "escalate_up")
                await audit(conn, SYSTEM, "escalation.escalate", "escalation", row["id"], before="pending",
                            after="pending", reason="deadline", data={"from": row["role"], "to": row["next_role"]})
                await emit(conn, db, [event_of("escalated", new)])
            else:
                new = expect_row(await (await conn.execute(Q["expire_escalation"], {"id": row["id"]})).fetchone(),
                                 "expire_escalation")
                await audit(conn, SYSTEM, "escalation.expire", "escalation", row["id"], before="pending",
                            after="expired", reason="deadline")
                await emit(conn, db, [event_of("expired", new)])
                await wake_run(conn, db, new)
            moved += 1
        for freed in await (await conn.execute(Q["release_expired_claims"])).fetchall():
            await audit(conn, SYSTEM, "escalation.claim.expire", "escalation", freed["id"], before="pending",
                        after="pending", reason="claim TTL passed")
    return moved



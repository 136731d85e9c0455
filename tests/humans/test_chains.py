"""Deadlines walk an escalation up its chain (reviewer -> lead -> director), then it expires:
events and audit record each move, the waiting run gets WaitTimeout, and nothing approves late."""

import anyio
import pytest

from longtail_mcp import Conflict, InvalidInput, LongTail, NotFound, WaitTimeout
from longtail_mcp.humans import deadlines, inbox
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.humans.helpers import audit_of, make_roles, person, sql_exec
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio


async def three_stage_chain(app: LongTail, stage: float) -> None:
    await make_roles(app.db, "reviewer", "lead", "director")
    await ident.set_chain(app.db, SYSTEM, "reviewer", stage, "lead")
    await ident.set_chain(app.db, SYSTEM, "lead", stage, "director")
    await ident.set_chain(app.db, SYSTEM, "director", stage)


async def test_a_deadline_walks_the_chain_then_expires_and_the_run_gets_a_timeout(app: LongTail) -> None:
    @app.workflow()
    async def gate(ctx):
        try:
            decision = await ctx.escalate("reviewer", "ship it?")
        except WaitTimeout as exc:
            return {"approved": False, "timeout": str(exc)}
        return {"approved": decision.get("approved"), "timeout": None}

    async with running(app):
        await three_stage_chain(app, 0.5)
        dora = await person(app.db, "dora", {"director": "member"})
        async with app.events.subscribe(["escalation.*"]) as feed:
            handle = await app.start("gate", workflow_id="g1")
            seen = []
            with anyio.fail_after(15):
                async for event in feed:
                    seen.append((event.type, event.name, event.status, event.id))
                    if event.type == "escalation.expired":
                        break
        eid = "g1:1"
        assert seen == [
            ("escalation.created", "reviewer", "pending", eid),
            ("escalation.escalated", "lead", "pending", eid),
            ("escalation.escalated", "director", "pending", eid),
            ("escalation.expired", "director", "expired", eid),
        ]
        result = await handle.result(timeout=10)
        assert result["approved"] is False and "expired" in result["timeout"]

        with pytest.raises(Conflict, match="already expired"):
            await esc.resolve(app.db, dora, eid, {"approved": True})
        row = await esc.get_escalation(app.db, SYSTEM, eid)
        assert (row["status"], row["role"], row["stage"], row["resolution"]) == ("expired", "director", 2, None)
        assert await handle.result(timeout=1) == result

        assert await audit_of(app.db, eid) == [
            ("system", "escalation.create", None, "pending", None),
            ("system", "escalation.escalate", "pending", "pending", "deadline"),
            ("system", "escalation.escalate", "pending", "pending", "deadline"),
            ("system", "escalation.expire", "pending", "expired", "deadline"),
        ]
        moves = [r["data"] for r in await ident.export_audit(app.db, SYSTEM) if r["action"] == "escalation.escalate"]
        assert moves == [{"from": "reviewer", "to": "lead"}, {"from": "lead", "to": "director"}]


async def test_an_uncaught_expiry_fails_the_run_with_a_timeout(app: LongTail) -> None:
    @app.workflow()
    async def strict(ctx):
        await ctx.escalate("director", "sign?")
        return "signed"

    async with running(app):
        await three_stage_chain(app, 0.3)
        handle = await app.start("strict")
        info = await wait_status(handle, "failed", within=15)
        assert info["error"]["type"] == "WaitTimeout"


async def test_moving_up_the_chain_clears_the_claim_and_sets_the_next_stage_deadline(app: LongTail) -> None:
    async with app:
        await three_stage_chain(app, 60)
        rita = await person(app.db, "rita", {"reviewer": "member"})
        e = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m")
        await esc.claim(app.db, rita, e["id"])
        assert await deadlines.process_deadlines(app.db) == 0
        overdue = "UPDATE escalation SET deadline_at = now() - interval '1 second' WHERE id = %s"
        await sql_exec(app.db, overdue, [e["id"]])
        assert await deadlines.process_deadlines(app.db) == 1
        row = await esc.get_escalation(app.db, SYSTEM, e["id"])
        assert (row["role"], row["stage"], row["assigned_to"], row["assigned_until"]) == ("lead", 1, None, None)
        assert row["status"] == "pending" and row["deadline_at"] > e["deadline_at"]
        assert await inbox.my_work(app.db, rita) == []


async def test_set_chain_refuses_a_cycle_so_every_chain_ends_in_expiry(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer", "lead", "director")
        with pytest.raises(InvalidInput):
            await ident.set_chain(app.db, SYSTEM, "reviewer", 1, "reviewer")
        await ident.set_chain(app.db, SYSTEM, "reviewer", 1, "lead")
        await ident.set_chain(app.db, SYSTEM, "lead", 1, "director")
        with pytest.raises(InvalidInput, match="cycle"):
            await ident.set_chain(app.db, SYSTEM, "director", 1, "reviewer")
        assert {r["name"]: r["next_role"] for r in await ident.list_roles(app.db)} == {
            "reviewer": "lead", "lead": "director", "director": None, "approver": None,  # approver: migration 0005
        }


async def test_set_chain_validates_its_arguments(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        with pytest.raises(InvalidInput, match="positive"):
            await ident.set_chain(app.db, SYSTEM, "reviewer", 0)
        with pytest.raises(NotFound):
            await ident.set_chain(app.db, SYSTEM, "reviewer", 1, "ghost")
        with pytest.raises(NotFound):
            await ident.set_chain(app.db, SYSTEM, "ghost", 1)

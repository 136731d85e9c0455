"""Release, re-route, cancel, notification-only escalations, and who a run acts for."""

import anyio
import pytest

from longtail_mcp import Conflict, EscalationClosed, InvalidInput, LongTail, NotFound
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.humans.helpers import audit_of, make_roles, person
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio


async def test_release_gives_back_ones_own_claim_and_an_admin_may_release_anyones(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        sam = await person(app.db, "sam", {"reviewer": "member"})
        adm = await person(app.db, "adm", {"reviewer": "admin"})
        e = (await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m"))["id"]
        with pytest.raises(Conflict, match="not claimed by rita"):
            await esc.release(app.db, rita, e)
        await esc.claim(app.db, rita, e)
        with pytest.raises(Conflict, match="not claimed by sam"):
            await esc.release(app.db, sam, e)
        with pytest.raises(Conflict, match="claimed by rita"):
            await esc.claim(app.db, sam, e)
        released = await esc.release(app.db, rita, e)
        assert (released["assigned_to"], released["assigned_until"]) == (None, None)
        assert [r["id"] for r in await inbox.available_work(app.db, sam)] == [e]
        await esc.claim(app.db, sam, e)
        assert (await esc.release(app.db, adm, e))["assigned_to"] is None
        assert [a[0] for a in await audit_of(app.db, e) if a[1] == "escalation.release"] == ["rita", "adm"]


async def test_a_claimant_may_extend_the_claim_and_another_member_may_not_resolve_it(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        sam = await person(app.db, "sam", {"reviewer": "member"})
        e = (await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m"))["id"]
        first = await esc.claim(app.db, rita, e, seconds=60)
        again = await esc.claim(app.db, rita, e, seconds=600)
        assert again["assigned_until"] > first["assigned_until"]
        with pytest.raises(Conflict, match="claimed by rita"):
            await esc.resolve(app.db, sam, e, {"approved": True})
        with pytest.raises(InvalidInput):
            await esc.claim(app.db, rita, e, seconds=0)
        assert (await esc.resolve(app.db, rita, e, {"approved": True}))["resolved_by"] == "rita"


async def test_reroute_moves_to_another_role_clears_the_claim_and_only_the_source_roles_members_may(
    app: LongTail,
) -> None:
    async with app:
        await make_roles(app.db, "reviewer", "legal", "plain")
        await ident.set_chain(app.db, SYSTEM, "legal", 3600)
        rita = await person(app.db, "rita", {"reviewer": "member"})
        lara = await person(app.db, "lara", {"legal": "member"})
        e = (await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m"))["id"]
        await esc.claim(app.db, rita, e)
        with pytest.raises(NotFound):
            await esc.reroute(app.db, lara, e, "legal")
        with pytest.raises(InvalidInput, match="already with role"):
            await esc.reroute(app.db, rita, e, "reviewer")
        with pytest.raises(NotFound, match="no role 'ghost'"):
            await esc.reroute(app.db, rita, e, "ghost")

        moved = await esc.reroute(app.db, rita, e, "legal", reason="contract question")
        assert (moved["role"], moved["assigned_to"], moved["assigned_until"]) == ("legal", None, None)
        assert moved["deadline_at"] is not None and moved["reason"] == "contract question"
        with pytest.raises(NotFound):
            await esc.get_escalation(app.db, rita, e)
        assert await inbox.my_work(app.db, rita) == []
        assert [r["id"] for r in await inbox.available_work(app.db, lara)] == [e]
        again = await esc.reroute(app.db, lara, e, "plain")
        assert again["role"] == "plain" and again["deadline_at"] is None
        assert [a[1] for a in await audit_of(app.db, e)][-2:] == ["escalation.reroute", "escalation.reroute"]


async def test_cancelling_wakes_the_waiting_run_with_escalation_closed(app: LongTail) -> None:
    @app.workflow()
    async def ask(ctx):
        try:
            await ctx.escalate("reviewer", "go?")
        except EscalationClosed as exc:
            return {"closed": str(exc)}
        return {"closed": None}

    async with running(app):
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        handle = await app.start("ask", workflow_id="w1")
        await wait_status(handle, "waiting")
        row = await esc.cancel(app.db, rita, "w1:1", reason="not needed")
        assert (row["status"], row["reason"], row["resolved_by"]) == ("cancelled", "not needed", "rita")
        result = await handle.result(timeout=10)
        assert "w1:1" in result["closed"] and "cancelled" in result["closed"]
        with pytest.raises(Conflict, match="already cancelled"):
            await esc.cancel(app.db, rita, "w1:1")
        with pytest.raises(Conflict, match="already cancelled"):
            await esc.resolve(app.db, rita, "w1:1", {"approved": True})


async def test_a_notification_only_escalation_is_resolved_without_any_run(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        first = await esc.create_escalation(app.db, rita, role="reviewer", message="disk 90% full",
                                            escalation_id="n1", data={"disk": "/var"}, priority=2)
        assert (first["workflow_id"], first["created_by"], first["status"]) == (None, "rita", "pending")
        again = await esc.create_escalation(app.db, rita, role="reviewer", message="disk 90% full",
                                            escalation_id="n1", data={"disk": "/var"}, priority=2)
        assert again["id"] == "n1" and again["created_at"] == first["created_at"]  # an idempotency key
        for who, message in ((SYSTEM, "disk 90% full"), (rita, "other")):  # someone else's id, another request
            with pytest.raises(Conflict, match="already taken") as refused:
                await esc.create_escalation(app.db, who, role="reviewer", message=message, escalation_id="n1",
                                            data={"disk": "/var"})
            assert refused.value.data is None and "disk" not in refused.value.message
        assert [a[1] for a in await audit_of(app.db, "n1")] == ["escalation.create"]
        done = await esc.resolve(app.db, rita, "n1", {"ack": True})
        assert (done["status"], done["resolution"], done["resolved_by"]) == ("resolved", {"ack": True}, "rita")
        for bad in ({"priority": 0}, {"priority": 6}, {"timeout": 0}, {"data": [1]}, {"message": ""}):
            with pytest.raises(InvalidInput):
                await esc.create_escalation(app.db, SYSTEM, role="reviewer", **{"message": "m", **bad})
        with pytest.raises(NotFound):
            await esc.create_escalation(app.db, SYSTEM, role="ghost", message="m")


async def test_the_starting_principal_is_ctx_principal_and_the_escalations_creator(app: LongTail) -> None:
    @app.workflow()
    async def on_behalf(ctx):
        who = ctx.principal.to_json() if ctx.principal else None
        decision = await ctx.escalate("reviewer", "ok?")
        return {"who": who, "decision": decision}

    async with running(app):
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "admin"})
        handle = await app.start("on_behalf", workflow_id="p1", principal=rita)
        anonymous = await app.start("on_behalf", workflow_id="p2")
        await wait_status(handle, "waiting")
        await wait_status(anonymous, "waiting")
        assert (await esc.get_escalation(app.db, SYSTEM, "p1:1"))["created_by"] == "rita"
        assert (await esc.get_escalation(app.db, SYSTEM, "p2:1"))["created_by"] == "system"
        await esc.resolve(app.db, rita, "p1:1", {"approved": True})
        await esc.resolve(app.db, rita, "p2:1", {"approved": False})
        assert await handle.result(timeout=10) == {"who": rita.to_json(), "decision": {"approved": True}}
        assert await anonymous.result(timeout=10) == {"who": None, "decision": {"approved": False}}
        assert rita.to_json() == {"id": "rita", "name": "rita", "kind": "human", "roles": {"reviewer": "admin"},
                                  "scope": "full"}


async def test_each_escalation_change_publishes_its_event(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer", "legal")
        rita = await person(app.db, "rita", {"reviewer": "member", "legal": "member"})
        async with app.events.subscribe(["escalation.*"]) as feed:
            await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m", escalation_id="v1")
            await esc.claim(app.db, rita, "v1")
            await esc.reroute(app.db, rita, "v1", "legal")
            await esc.resolve(app.db, rita, "v1", {})
            await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m", escalation_id="v2")
            await esc.cancel(app.db, rita, "v2")
            seen = []
            with anyio.fail_after(10):
                async for event in feed:
                    seen.append((event.type, event.id, event.name, event.status))
                    if event.type == "escalation.cancelled":
                        break
        assert seen == [
            ("escalation.created", "v1", "reviewer", "pending"),
            ("escalation.claimed", "v1", "reviewer", "pending"),
            ("escalation.escalated", "v1", "legal", "pending"),
            ("escalation.resolved", "v1", "legal", "resolved"),
            ("escalation.created", "v2", "reviewer", "pending"),
            ("escalation.cancelled", "v2", "reviewer", "cancelled"),
        ]

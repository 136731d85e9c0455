"""Guards added after review: claims respected, cancelled runs close their escalations, strict approvals."""

from datetime import timedelta

import pytest

from longtail_mcp import Conflict, InvalidInput, LongTail
from longtail_mcp.humans import deadlines, inbox
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.certified import get_task
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.humans.helpers import audit_of, make_roles, person, sql_exec
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio


async def test_cancelling_a_run_closes_the_escalation_it_waits_on_and_fails_its_task(app: LongTail) -> None:
    @app.workflow(certified=True, role="reviewer")
    async def needs_help(ctx):
        raise RuntimeError("stuck")

    async with running(app):
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        handle = await app.start("needs_help")
        await wait_status(handle, "waiting")
        (item,) = await inbox.available_work(app.db, rita)
        await handle.cancel("customer withdrew")
        closed = await esc.get_escalation(app.db, rita, item["id"])
        assert closed["status"] == "cancelled" and "customer withdrew" in closed["reason"]
        assert await inbox.available_work(app.db, rita) == []
        assert (await get_task(app.db, handle.workflow_id))["status"] == "failed"
        with pytest.raises(Conflict, match="already cancelled"):
            await esc.resolve(app.db, rita, item["id"], {})


async def test_cancel_and_reroute_respect_someone_elses_live_claim(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer", "lead")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        sam = await person(app.db, "sam", {"reviewer": "member"})
        boss = await person(app.db, "boss", {"reviewer": "admin"})
        item = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m")
        await esc.claim(app.db, rita, item["id"])
        with pytest.raises(Conflict, match="claimed by rita"):
            await esc.cancel(app.db, sam, item["id"])
        with pytest.raises(Conflict, match="claimed by rita"):
            await esc.reroute(app.db, sam, item["id"], "lead")
        moved = await esc.reroute(app.db, boss, item["id"], "lead", reason="needs a lead")  # an admin may
        assert moved["role"] == "lead" and moved["assigned_to"] is None


async def test_an_escalation_can_only_be_pre_assigned_to_a_member_of_its_role(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        await person(app.db, "rita", {"reviewer": "member"})
        await person(app.db, "outsider")
        with pytest.raises(InvalidInput, match="not a member"):
            await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m", assigned_to="outsider")
        ok = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m", assigned_to="rita")
        assert ok["assigned_to"] == "rita" and ok["assigned_until"] is not None


async def test_an_approval_needs_the_boolean_true_not_a_string(app: LongTail) -> None:
    action = ("files/delete_file", {"path": "a.txt"})
    async with app:
        # the approver role comes with migration 0005
        ann = await person(app.db, "ann", {"approver": "member"})
        item = await esc.create_escalation(app.db, SYSTEM, role="approver", message="delete?", action=action)
        await esc.resolve(app.db, ann, item["id"], {"approved": "true"})
        with pytest.raises(Exception, match="does not approve"):
            await esc.use_approval(app.db, item["id"], *action)


async def test_keys_refuse_a_non_positive_lifetime_and_the_admin_key_must_match(app: LongTail) -> None:
    async with app:
        await person(app.db, "rita")
        with pytest.raises(InvalidInput, match="positive"):
            await ident.create_key(app.db, SYSTEM, "rita", expires_in=timedelta(0))
        token = "ltk_adm001_" + "a" * 30
        assert (await ident.ensure_admin(app.db, token))["key"] == token
        assert await ident.ensure_admin(app.db, token) is None
        with pytest.raises(Conflict, match="different key"):
            await ident.ensure_admin(app.db, "ltk_adm001_" + "b" * 30)


async def test_release_of_expired_claims_returns_them_to_the_queue(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        item = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m")
        await esc.claim(app.db, rita, item["id"])
        await sql_exec(app.db, "UPDATE escalation SET assigned_until = now() - interval '1 second' WHERE id = %s",
                       [item["id"]])
        await deadlines.process_deadlines(app.db)
        freed = await esc.get_escalation(app.db, rita, item["id"])
        history = await audit_of(app.db, item["id"])
    assert freed["assigned_to"] is None and freed["status"] == "pending"
    assert history[-1] == ("system", "escalation.claim.expire", "pending", "pending", "claim TTL passed")

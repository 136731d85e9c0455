"""An approval bound to an exact action (tool + arguments) is spent once, on that action only."""

import pytest

from longtail_mcp import Forbidden, LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans.escalations import action_hash
from longtail_mcp.humans.identity import SYSTEM
from tests.humans.helpers import audit_of, make_roles, person

pytestmark = pytest.mark.anyio
DELETE = ("files/delete_file", {"path": "a.txt"})


async def bound_approval(app: LongTail, decision: dict) -> str:
    await make_roles(app.db, "reviewer")
    rita = await person(app.db, "rita", {"reviewer": "member"})
    e = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="delete a.txt?", action=DELETE)
    assert e["action_hash"] == action_hash(*DELETE)
    await esc.resolve(app.db, rita, e["id"], decision)
    return e["id"]


async def test_an_approval_works_once_for_exactly_its_tool_and_arguments(app: LongTail) -> None:
    async with app:
        eid = await bound_approval(app, {"approved": True})
        for tool, args in [
            ("files/delete_file", {"path": "b.txt"}),
            ("files/delete_file", {"path": "a.txt", "recursive": True}),
            ("files/delete_file", {}),
            ("files/write_file", {"path": "a.txt"}),
        ]:
            with pytest.raises(Forbidden, match="does not approve this exact call"):
                await esc.use_approval(app.db, eid, tool, args)
        await esc.use_approval(app.db, eid, "files/delete_file", {"path": "a.txt"})
        with pytest.raises(Forbidden):
            await esc.use_approval(app.db, eid, "files/delete_file", {"path": "a.txt"})
        uses = [a for a in await audit_of(app.db, eid) if a[1] == "escalation.approval.use"]
        assert len(uses) == 1


@pytest.mark.parametrize("decision", [{"approved": False}, {"comment": "no field"}, {"approved": None}])
async def test_a_resolution_that_does_not_approve_cannot_be_used(app: LongTail, decision: dict) -> None:
    async with app:
        eid = await bound_approval(app, decision)
        with pytest.raises(Forbidden):
            await esc.use_approval(app.db, eid, *DELETE)


async def test_a_pending_or_unbound_escalation_approves_nothing(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        pending = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m", action=DELETE)
        with pytest.raises(Forbidden):
            await esc.use_approval(app.db, pending["id"], *DELETE)
        unbound = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m")
        await esc.resolve(app.db, rita, unbound["id"], {"approved": True})
        with pytest.raises(Forbidden):
            await esc.use_approval(app.db, unbound["id"], *DELETE)
        with pytest.raises(Forbidden):
            await esc.use_approval(app.db, "no-such-escalation", *DELETE)


async def test_the_action_hash_ignores_dict_key_order(app: LongTail) -> None:
    a = {"path": "a.txt", "opts": {"force": True, "depth": 2}}
    b = {"opts": {"depth": 2, "force": True}, "path": "a.txt"}
    assert action_hash("files/delete_file", a) == action_hash("files/delete_file", b)
    assert action_hash("files/delete_file", a) != action_hash("files/delete_file", {**a, "path": "b.txt"})
    assert action_hash("files/delete_file", a) != action_hash("files/delete_files", a)
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        e = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m", action=("files/delete_file", a))
        await esc.resolve(app.db, rita, e["id"], {"approved": True})
        await esc.use_approval(app.db, e["id"], "files/delete_file", b)

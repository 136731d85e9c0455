"""Work queues and search: available work, my work, find_escalations and stats, limited to the caller's roles."""

from typing import Any

import pytest

from longtail_mcp import Forbidden, InvalidInput, LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM
from tests.humans.helpers import lapse_claim, make_roles, person, sql_exec

pytestmark = pytest.mark.anyio


async def outcome_of(call: Any) -> Any:
    try:
        return await call
    except Exception as exc:
        return exc


async def new(app: LongTail, eid: str, role: str = "reviewer", **options) -> str:
    return (await esc.create_escalation(app.db, SYSTEM, role=role, message=eid, escalation_id=eid, **options))["id"]


def ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


async def test_available_work_is_by_priority_then_age_and_skips_live_claims_but_not_lapsed_ones(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer", "legal")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        sam = await person(app.db, "sam", {"reviewer": "member"})
        boss = await person(app.db, "boss", {"legal": "superadmin"})
        loner = await person(app.db, "loner")
        for eid, priority in [("a", 3), ("b", 1), ("c", 3), ("d", 2), ("x", 1), ("y", 2)]:
            await new(app, eid, priority=priority)
        await new(app, "z", "legal", priority=1)
        await esc.claim(app.db, sam, "x")
        await esc.claim(app.db, sam, "y", seconds=60)

        assert ids(await inbox.available_work(app.db, rita)) == ["b", "d", "a", "c"]
        assert ids(await inbox.my_work(app.db, sam)) == ["x", "y"]
        assert await inbox.my_work(app.db, rita) == []

        await lapse_claim(app.db, "y")
        assert ids(await inbox.available_work(app.db, rita)) == ["b", "d", "y", "a", "c"]
        assert ids(await inbox.my_work(app.db, sam)) == ["x"]
        assert (await esc.claim(app.db, rita, "y"))["assigned_to"] == "rita"
        assert ids(await inbox.my_work(app.db, rita)) == ["y"]

        assert ids(await inbox.available_work(app.db, rita, role="reviewer", limit=2)) == ["b", "d"]
        assert ids(await inbox.available_work(app.db, boss)) == ["b", "z", "d", "a", "c"]
        assert ids(await inbox.available_work(app.db, boss, role="legal")) == ["z"]
        assert await inbox.available_work(app.db, loner) == []
        with pytest.raises(Forbidden):
            await inbox.available_work(app.db, rita, role="legal")


async def test_work_queues_filter_by_type_and_role_and_sort_in_the_database_past_any_page(app: LongTail) -> None:
    """The filters and the order apply to the whole queue, not to its first page: the one match of a type
    behind 30 more urgent escalations is found, and 'oldest first' starts at the oldest of them all."""
    async with app:
        await make_roles(app.db, "reviewer", "legal")
        rita = await person(app.db, "rita", {"reviewer": "member", "legal": "member"})
        for i in range(30):
            await new(app, f"u{i:02}", priority=1)
        await new(app, "approve-me", priority=5, type="approval")
        await new(app, "legal-approval", "legal", priority=5, type="approval")
        await sql_exec(app.db, "UPDATE escalation SET created_at = now() - interval '1 day' WHERE id = 'approve-me'")
        page = {"limit": 10}
        assert ids(await inbox.available_work(app.db, rita, type="approval", **page)) == ["approve-me",
                                                                                         "legal-approval"]
        assert ids(await inbox.available_work(app.db, rita, type="approval", role="legal", **page)) == [
            "legal-approval"]
        assert ids(await inbox.available_work(app.db, rita, **page))[:3] == ["u00", "u01", "u02"]
        assert ids(await inbox.available_work(app.db, rita, sort="oldest", **page))[0] == "approve-me"
        newest = ids(await inbox.available_work(app.db, rita, sort="newest", limit=2))
        assert newest == ["legal-approval", "u29"]

        for eid in ("u05", "approve-me", "legal-approval"):
            await esc.claim(app.db, rita, eid)
        assert ids(await inbox.my_work(app.db, rita)) == ["u05", "approve-me", "legal-approval"]
        assert ids(await inbox.my_work(app.db, rita, type="approval", sort="newest")) == ["legal-approval",
                                                                                          "approve-me"]
        assert ids(await inbox.my_work(app.db, rita, role="reviewer", type="approval")) == ["approve-me"]
        found = await inbox.find_escalations(app.db, rita, status="pending", sort="oldest", limit=1)
        assert ids(found) == ["approve-me"]
        with pytest.raises(InvalidInput, match="unknown sort 'urgent'; one of priority, oldest, newest"):
            await inbox.available_work(app.db, rita, sort="urgent")


async def test_a_claim_can_be_taken_over_once_its_ttl_has_passed(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        sam = await person(app.db, "sam", {"reviewer": "member"})
        await new(app, "e")
        await esc.claim(app.db, rita, "e", seconds=60)
        assert "claimed by rita" in str(await outcome_of(esc.claim(app.db, sam, "e")))
        await lapse_claim(app.db, "e")  # the TTL passes
        assert (await esc.claim(app.db, sam, "e"))["assigned_to"] == "sam"
        assert await inbox.my_work(app.db, rita) == []


async def test_find_escalations_filters_by_status_role_type_priority_and_metadata_within_the_callers_roles(
    app: LongTail,
) -> None:
    async with app:
        await make_roles(app.db, "reviewer", "legal")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        boss = await person(app.db, "boss", {"legal": "superadmin"})
        await new(app, "r1", metadata={"customer": "acme", "region": "eu"})
        await new(app, "r2", type="error", priority=1, metadata={"customer": "acme"})
        await new(app, "r3", priority=1, metadata={"customer": "globex"})
        await new(app, "l1", "legal", metadata={"customer": "acme"})
        await esc.resolve(app.db, rita, "r3", {"ok": True})

        async def find(who=rita, **filters) -> list[str]:
            return ids(await inbox.find_escalations(app.db, who, **filters))

        assert await find() == ["r3", "r2", "r1"]
        assert await find(status="pending") == ["r2", "r1"]
        assert await find(status="resolved") == ["r3"]
        assert await find(status="expired") == []
        assert await find(type="error") == ["r2"]
        assert await find(priority=1) == ["r3", "r2"]
        assert await find(type="review", priority=1) == ["r3"]
        assert await find(metadata={"customer": "acme"}) == ["r2", "r1"]
        assert await find(metadata={"customer": "acme", "region": "eu"}) == ["r1"]
        assert await find(metadata={"customer": "initech"}) == []
        assert await find(role="reviewer", status="pending", metadata={"customer": "acme"}) == ["r2", "r1"]
        assert await find(limit=1) == ["r3"]
        assert await find(boss, metadata={"customer": "acme"}) == ["l1", "r2", "r1"]
        assert await find(boss, role="legal") == ["l1"]
        with pytest.raises(Forbidden):
            await find(role="legal")
        with pytest.raises(InvalidInput, match="unknown status"):
            await find(status="done")
        with pytest.raises(InvalidInput, match="limit"):
            await find(limit=0)


async def test_stats_count_by_status_and_role_and_recent_throughput_for_the_callers_roles(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer", "legal")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        boss = await person(app.db, "boss", {"legal": "superadmin"})
        loner = await person(app.db, "loner")
        for eid in ("r1", "r2", "r3", "r4", "r5"):
            await new(app, eid)
        await new(app, "l1", "legal")
        await esc.resolve(app.db, rita, "r3", {})
        await esc.resolve(app.db, rita, "r4", {})
        await esc.cancel(app.db, rita, "r5")
        await sql_exec(app.db, "UPDATE escalation SET created_at = now() - interval '2 hours' WHERE id = 'r1'")
        await sql_exec(app.db, "UPDATE escalation SET created_at = now() - interval '2 days', "
                               "resolved_at = now() - interval '3 hours' WHERE id = 'r3'")

        mine = await inbox.escalation_stats(app.db, rita)
        assert mine == {
            "by_status": {"pending": 2, "resolved": 2, "cancelled": 1},
            "by_role": {"reviewer": {"pending": 2, "resolved": 2, "cancelled": 1}},
            "created_1h": 3, "created_1d": 4, "resolved_1h": 1, "resolved_1d": 2,
        }
        everything = await inbox.escalation_stats(app.db, boss)
        assert everything["by_status"] == {"pending": 3, "resolved": 2, "cancelled": 1}
        assert everything["by_role"]["legal"] == {"pending": 1}
        assert (everything["created_1h"], everything["created_1d"]) == (4, 5)
        assert await inbox.escalation_stats(app.db, loner) == {
            "by_status": {}, "by_role": {}, "created_1h": 0, "created_1d": 0, "resolved_1h": 0, "resolved_1d": 0,
        }

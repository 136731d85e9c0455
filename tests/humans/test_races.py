"""Fifty people race for one escalation: exactly one claim and exactly one resolution win."""

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from longtail_mcp import Conflict, LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans.identity import SYSTEM, Principal
from tests.humans.helpers import audit_of, make_roles, person

pytestmark = pytest.mark.anyio
N = 50


async def crowd(app: LongTail) -> list[Principal]:
    await make_roles(app.db, "reviewer")
    return [await person(app.db, f"m{i:02d}", {"reviewer": "member"}) for i in range(N)]


async def race(people: list[Principal], act: Any) -> tuple[list[str], list[tuple[str, Conflict]]]:
    """Run `act(p)` for everyone at once; returns (winners, [(loser, its Conflict)])."""
    winners: list[str] = []
    losers: list[tuple[str, Conflict]] = []
    go = anyio.Event()

    async def one(p: Principal) -> None:
        await go.wait()
        try:
            await act(p)
        except Conflict as exc:
            losers.append((p.id, exc))
        else:
            winners.append(p.id)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for p in people:
                tg.start_soon(one, p)
            await anyio.lowlevel.checkpoint()
            go.set()
    return winners, losers


async def test_fifty_concurrent_claimers_yield_exactly_one_holder(app: LongTail) -> None:
    async with app:
        people = await crowd(app)
        e = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="one of you")
        winners, losers = await race(people, lambda p: esc.claim(app.db, p, e["id"]))
        assert len(winners) == 1 and len(losers) == N - 1
        (winner,) = winners
        for _, exc in losers:
            assert f"claimed by {winner}" in exc.message
        row = await esc.get_escalation(app.db, SYSTEM, e["id"])
        assert row["assigned_to"] == winner and row["status"] == "pending"
        claims = [a for a in await audit_of(app.db, e["id"]) if a[1] == "escalation.claim"]
        assert claims == [(winner, "escalation.claim", "pending", "pending", None)]


async def test_fifty_concurrent_resolvers_yield_exactly_one_resolution(app: LongTail) -> None:
    async with app:
        people = await crowd(app)
        e = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="decide")
        winners, losers = await race(people, lambda p: esc.resolve(app.db, p, e["id"], {"by": p.id}))
        assert len(winners) == 1 and len(losers) == N - 1
        (winner,) = winners
        assert all("already resolved" in exc.message for _, exc in losers)
        row = await esc.get_escalation(app.db, SYSTEM, e["id"])
        assert row["status"] == "resolved" and row["resolved_by"] == winner and row["resolution"] == {"by": winner}
        resolves = [a for a in await audit_of(app.db, e["id"]) if a[1] == "escalation.resolve"]
        assert resolves == [(winner, "escalation.resolve", "pending", "resolved", None)]

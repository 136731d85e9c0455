"""RBAC through the service functions: membership type x scope x (own role, other role).

Members read and act on their roles' escalations, admins also manage their roles, superadmins do
everything; bots act with their own memberships; a read-scope key reads but never writes. Another
role's escalation looks absent (NotFound), never Forbidden, to someone outside that role.
"""

import dataclasses
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from longtail_mcp import Forbidden, LongTail, NotFound
from longtail_mcp.errors import Unauthenticated
from longtail_mcp.events import Event
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.humans.runs import EventAudience
from tests.humans.helpers import make_roles, person, read_only, sql_exec

pytestmark = pytest.mark.anyio

FORM = {"type": "object", "properties": {"approved": {"type": "boolean"}}}
ACTORS = {  # who -> (account kind, membership type in "reviewer")
    "member": ("human", "member"),
    "admin": ("human", "admin"),
    "superadmin": ("human", "superadmin"),
    "bot": ("bot", "member"),
}


async def actor_for(db: Any, who: str, scope: str) -> Principal:
    kind, type = ACTORS[who]
    p = await person(db, who, {"reviewer": type}, kind=kind)
    assert p.kind == kind
    return await read_only(db, p) if scope == "read" else p


async def outcome(call: Awaitable[Any]) -> str:
    try:
        await call
    except (NotFound, Forbidden) as exc:
        return type(exc).__name__
    return "ok"


def expected(who: str, scope: str, target: str) -> dict[str, str]:
    """The matrix, written out: what each operation does for this actor on this role's rows."""
    full = scope == "full"
    sees = target == "own" or who == "superadmin"
    manages = (who in ("admin", "superadmin") and target == "own") or who == "superadmin"
    read = "ok" if sees else "NotFound"
    listed = "listed" if sees else "absent"
    act = ("ok" if full else "Forbidden") if sees else "NotFound"
    manage = "ok" if manages and full else "Forbidden"
    grant = "ok" if who == "superadmin" and full else "Forbidden"
    return {
        "get": read, "available_work": listed, "find": listed, "stats": listed,
        "claim": act, "resolve": act, "cancel": act, "reroute": act,
        "set_membership": manage, "add_form": manage, "set_chain": manage, "grant_superadmin": grant,
    }


@pytest.mark.parametrize("target", ["own", "other"])
@pytest.mark.parametrize("scope", ["full", "read"])
@pytest.mark.parametrize("who", list(ACTORS))
async def test_each_membership_type_reads_acts_and_manages_as_the_matrix_says(
    app: LongTail, who: str, scope: str, target: str
) -> None:
    async with app:
        db = app.db
        await make_roles(db, "reviewer", "legal", "archive")
        await ident.create_account(db, SYSTEM, "newbie")
        actor = await actor_for(db, who, scope)
        assert actor.scope == scope
        role = "reviewer" if target == "own" else "legal"
        ids = {}
        for op in ("read", "claim", "resolve", "cancel", "reroute"):
            ids[op] = (await esc.create_escalation(db, SYSTEM, role=role, message=f"{op} me"))["id"]

        async def listed(rows: list[dict[str, Any]]) -> str:
            return "listed" if ids["read"] in {r["id"] for r in rows} else "absent"

        async def stats_listed() -> str:
            return "listed" if role in (await inbox.escalation_stats(db, actor))["by_role"] else "absent"

        got = {
            "get": await outcome(esc.get_escalation(db, actor, ids["read"])),
            "available_work": await listed(await inbox.available_work(db, actor)),
            "find": await listed(await inbox.find_escalations(db, actor)),
            "stats": await stats_listed(),
            "claim": await outcome(esc.claim(db, actor, ids["claim"])),
            "resolve": await outcome(esc.resolve(db, actor, ids["resolve"], {"approved": True})),
            "cancel": await outcome(esc.cancel(db, actor, ids["cancel"])),
            "reroute": await outcome(esc.reroute(db, actor, ids["reroute"], "archive")),
            "set_membership": await outcome(ident.set_membership(db, actor, role, "newbie", "member")),
            "add_form": await outcome(ident.add_form(db, actor, role, FORM)),
            "set_chain": await outcome(ident.set_chain(db, actor, role, 60)),
            "grant_superadmin": await outcome(ident.set_membership(db, actor, role, "newbie", "superadmin")),
        }
        assert got == expected(who, scope, target)

        # What was refused changed nothing; what was allowed took effect.
        after = {op: (await esc.get_escalation(db, SYSTEM, i)) for op, i in ids.items()}
        done = got["claim"] == "ok"
        assert (after["claim"]["assigned_to"] == actor.id) is done
        assert after["resolve"]["status"] == ("resolved" if done else "pending")
        assert after["cancel"]["status"] == ("cancelled" if done else "pending")
        assert after["reroute"]["role"] == ("archive" if done else role)
        newbie = await ident.get_principal(db, "newbie")
        granted = {"ok": "superadmin"}.get(got["grant_superadmin"]) or {"ok": "member"}.get(got["set_membership"])
        assert newbie.roles.get(role) == granted


@pytest.mark.parametrize("scope", ["full", "read"])
@pytest.mark.parametrize("who", list(ACTORS))
async def test_only_a_full_scope_superadmin_creates_roles_and_accounts(app: LongTail, who: str, scope: str) -> None:
    async with app:
        db = app.db
        await make_roles(db, "reviewer")
        actor = await actor_for(db, who, scope)
        allowed = who == "superadmin" and scope == "full"
        want = "ok" if allowed else "Forbidden"
        assert await outcome(ident.create_role(db, actor, "newrole")) == want
        assert await outcome(ident.create_account(db, actor, "newacct")) == want
        assert ("newrole" in {r["name"] for r in await ident.list_roles(db)}) is allowed
        assert await outcome(ident.get_principal(db, "newacct")) == ("ok" if allowed else "NotFound")


async def test_a_read_scope_principal_reads_everything_it_may_but_every_write_is_forbidden(app: LongTail) -> None:
    async with app:
        db = app.db
        await make_roles(db, "reviewer", "legal")
        boss = await person(db, "boss", {"reviewer": "superadmin"})
        viewer = dataclasses.replace(boss, scope="read")
        e = await esc.create_escalation(db, SYSTEM, role="legal", message="look only")
        assert (await esc.get_escalation(db, viewer, e["id"]))["message"] == "look only"
        assert [r["id"] for r in await inbox.available_work(db, viewer)] == [e["id"]]
        writes: list[Callable[[], Awaitable[Any]]] = [
            lambda: esc.create_escalation(db, viewer, role="legal", message="new"),
            lambda: esc.claim(db, viewer, e["id"]),
            lambda: esc.resolve(db, viewer, e["id"], {}),
            lambda: esc.cancel(db, viewer, e["id"]),
            lambda: esc.reroute(db, viewer, e["id"], "reviewer"),
            lambda: ident.create_role(db, viewer, "r2"),
            lambda: ident.create_account(db, viewer, "a2"),
            lambda: ident.set_membership(db, viewer, "legal", "boss"),
            lambda: ident.remove_membership(db, viewer, "reviewer", "boss"),
            lambda: ident.add_form(db, viewer, "legal", FORM),
            lambda: ident.set_chain(db, viewer, "legal", 60),
            lambda: ident.create_key(db, viewer, "boss"),
        ]
        for write in writes:
            with pytest.raises(Forbidden, match="read-only"):
                await write()
        assert (await esc.get_escalation(db, SYSTEM, e["id"]))["status"] == "pending"


async def test_an_admin_cannot_demote_a_superadmin_of_their_role(app: LongTail) -> None:
    async with app:
        db = app.db
        await make_roles(db, "reviewer")
        adm = await person(db, "adm", {"reviewer": "admin"})
        await person(db, "boss", {"reviewer": "superadmin"})
        with pytest.raises(Forbidden):
            await ident.remove_membership(db, adm, "reviewer", "boss")
        with pytest.raises(Forbidden):
            await ident.set_membership(db, adm, "reviewer", "boss", "member")
        assert (await ident.get_principal(db, "boss")).roles == {"reviewer": "superadmin"}


async def test_another_roles_escalation_is_indistinguishable_from_a_missing_one(app: LongTail) -> None:
    async with app:
        db = app.db
        await make_roles(db, "reviewer", "legal")
        rita = await person(db, "rita", {"reviewer": "admin"})
        await esc.create_escalation(db, SYSTEM, role="legal", message="secret", escalation_id="e-legal")
        for call in (esc.get_escalation, esc.claim, esc.cancel):
            with pytest.raises(NotFound) as hidden:
                await call(db, rita, "e-legal")
            with pytest.raises(NotFound) as missing:
                await call(db, rita, "e-nothing")
            assert hidden.value.message.replace("e-legal", "X") == missing.value.message.replace("e-nothing", "X")


async def test_a_long_lived_event_audience_follows_role_changes_and_ends_with_its_account(app: LongTail) -> None:
    """What an /events or /live stream sends is decided with who its subscriber is now (looked up at most
    every `every` seconds), not who it was when it connected."""
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        now = [0.0]
        audience = EventAudience(app.db, rita, recheck=partial(ident.get_principal, app.db, "rita"), every=10,
                                 clock=lambda: now[0])
        asked = Event("escalation.created", workflow_id="w1", name="reviewer", id="w1:1")
        assert await audience.sees(asked)
        await ident.remove_membership(app.db, SYSTEM, "reviewer", "rita")
        assert await audience.sees(asked), "within `every` of the last look, the remembered roles hold"
        now[0] += 10
        assert not await audience.sees(asked), "she left the role: its escalations are no longer hers to hear"
        assert not await audience.sees(Event("run.completed", workflow_id="w1")), \
            "and the run its escalation made visible to her is decided again"
        await sql_exec(app.db, "UPDATE account SET disabled_at = now() WHERE id = 'rita'")
        now[0] += 10
        with pytest.raises(Unauthenticated, match="disabled"):
            await audience.sees(Event("file.written", id="a.txt"))

"""Shared setup for the human-queue tests: roles, people (and their principals), audit reads."""

from typing import Any

import anyio

from longtail_mcp.db.pool import Database
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM, Principal


async def make_roles(db: Database, *names: str) -> None:
    for name in names:
        await ident.create_role(db, SYSTEM, name)


async def teams(db: Database, *more: tuple[str, str]) -> None:
    """The cast of the authorization tests: the superadmin `serve` creates, roles a-team and b-team, alice
    in a-team, bob and carl in b-team, and `more` (account, existing role) members."""
    await ident.ensure_admin(db)
    await make_roles(db, "a-team", "b-team")
    for who, role in (("alice", "a-team"), ("bob", "b-team"), ("carl", "b-team"), *more):
        await ident.create_account(db, SYSTEM, who)
        await ident.set_membership(db, SYSTEM, role, who)


async def person(db: Database, account_id: str, memberships: dict[str, str] | None = None, *,
                 kind: str = "human") -> Principal:
    """Create an account with `{role: membership type}` and return its (full-scope) principal."""
    await ident.create_account(db, SYSTEM, account_id, kind=kind)
    for role, type in (memberships or {}).items():
        await ident.set_membership(db, SYSTEM, role, account_id, type)
    return await ident.get_principal(db, account_id)


async def read_only(db: Database, who: Principal) -> Principal:
    """The principal of a read-scope API key of `who`, obtained the way a client gets it."""
    key = await ident.create_key(db, SYSTEM, who.id, name="viewer", scope="read")
    return await ident.authenticate(db, key["key"])


async def audit_of(db: Database, object_id: str) -> list[tuple[Any, ...]]:
    """(actor, action, before, after, reason) of every audit record about `object_id`, in order."""
    rows = await ident.export_audit(db, SYSTEM)
    return [(r["actor"], r["action"], r["before_status"], r["after_status"], r["reason"])
            for r in rows if r["object_id"] == object_id]


async def sql_one(db: Database, query: str, params: Any = None) -> Any:
    async with db.connection() as conn:
        return await (await conn.execute(query, params)).fetchone()


async def sql_exec(db: Database, query: str, params: Any = None) -> None:
    async with db.connection() as conn:
        await conn.execute(query, params)


async def eventually(check: Any, within: float = 10) -> Any:
    """Poll the async `check()` until it returns something truthy; fail after `within` seconds."""
    with anyio.fail_after(within):
        while True:
            value = await check()
            if value:
                return value
            await anyio.sleep(0.02)


async def lapse_claim(db: Database, escalation_id: str) -> None:
    """Move the database's view of time past this escalation's claim TTL (its `assigned_until`), so a
    test checks what happens after the TTL without waiting it out."""
    await sql_exec(db, "UPDATE escalation SET assigned_until = now() - interval '1 second' WHERE id = %s",
                   [escalation_id])

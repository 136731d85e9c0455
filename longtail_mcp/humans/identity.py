"""Accounts, roles, memberships, API keys and the Principal that carries them through every call."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for
from psycopg.errors import ForeignKeyViolation, UniqueViolation

from longtail_mcp.db.pool import Conn, Database, expect_row
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from longtail_mcp.records import iso
from longtail_mcp.runtime.codec import dumps, dumps_or_none

Q = load("humans")
KEY_PREFIX = "ltk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MEMBERSHIPS = ("member", "admin", "superadmin")


@dataclass(frozen=True)
class Principal:
    """Who is acting: an account, its role memberships ({role: type}) and the key's scope."""

    id: str
    name: str = ""
    kind: str = "human"
    roles: dict[str, str] = field(default_factory=dict)
    scope: str = "full"

    @property
    def superadmin(self) -> bool:
        return "superadmin" in self.roles.values()

    def member_of(self, role: str) -> bool:
        return self.superadmin or role in self.roles

    def admin_of(self, role: str) -> bool:
        return self.superadmin or self.roles.get(role) in ("admin", "superadmin")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "roles": self.roles, "scope": self.scope}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Principal | None":
        if not data:
            return None
        return cls(data["id"], data.get("name", ""), data.get("kind", "human"), dict(data.get("roles") or {}),
                   data.get("scope", "full"))


# The runtime itself (cron ticks, deadlines, local CLI): acts on everything, recorded as "system".
SYSTEM = Principal("system", "system", "bot", {"*": "superadmin"})


def require_write(actor: Principal) -> None:
    if actor.scope != "full":
        raise Forbidden(f"{actor.id} holds a read-only key; this action changes data")


def may_use(principal: Principal, roles: list[str], read_only: bool) -> bool:
    """Whether `principal` may call a pipeline or a workflow type published as a tool: superadmins and,
    when `roles` is set, their members (else every account); read-scope keys only what only reads."""
    if roles and not (principal.superadmin or any(principal.member_of(r) for r in roles)):
        return False
    return principal.scope == "full" or read_only


def require_use(principal: Principal, roles: list[str], read_only: bool, what: str) -> None:
    """Raises Forbidden unless `may_use`."""
    if not may_use(principal, roles, read_only):
        raise Forbidden(f"{principal.id} may not {what}" + (" with a read-scope key" if principal.scope != "full"
                                                              and not roles else ""))


def require_superadmin(actor: Principal, what: str) -> None:
    require_write(actor)
    if not actor.superadmin:
        raise Forbidden(f"only a superadmin may {what}")


def require_admin(actor: Principal, role: str, what: str) -> None:
    require_write(actor)
    if not actor.admin_of(role):
        raise Forbidden(f"only an admin of role {role!r} (or a superadmin) may {what}")


def check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(f"{what} must be 1-100 characters of letters, digits, _ . @ - (got {value!r})")


async def audit(conn: Conn, actor: Principal, action: str, object_type: str, object_id: str, *,
                before: str | None = None, after: str | None = None, reason: str | None = None,
                data: Any = None) -> None:
    """Append one audit record on the caller's open transaction."""
    await conn.execute(Q["append_audit"], {
        "actor": actor.id, "action": action, "object_type": object_type, "object_id": object_id,
        "before": before, "after": after, "reason": reason, "data": dumps_or_none(data),
    })


# -- accounts, roles, memberships -------------------------------------------------------------------

async def create_account(db: Database, actor: Principal, account_id: str, name: str | None = None, *,
                         kind: str = "human", email: str | None = None) -> dict[str, Any]:
    require_superadmin(actor, "create accounts")
    check_name(account_id, "account id")
    if kind not in ("human", "bot"):
        raise InvalidInput("kind must be human or bot")
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["create_account"], {
            "id": account_id, "name": name or account_id, "kind": kind, "email": email,
        })).fetchone()
        if row is None:
            raise Conflict(f"account {account_id!r} already exists")
        await audit(conn, actor, "account.create", "account", account_id, after="active", data={"kind": kind})
    return iso(row)  # type: ignore[no-any-return]


async def create_role(db: Database, actor: Principal, name: str, description: str = "") -> dict[str, Any]:
    require_superadmin(actor, "create roles")
    check_name(name, "role name")
    async with db.transaction() as conn:
        if await (await conn.execute(Q["create_role"], {"name": name, "description": description})).fetchone() is None:
            raise Conflict(f"role {name!r} already exists")
        await audit(conn, actor, "role.create", "role", name)
    return {"name": name, "description": description}


async def set_membership(db: Database, actor: Principal, role: str, account_id: str, type: str = "member") -> None:
    """Add `account_id` to `role` as member | admin | superadmin (superadmin grants everything)."""
    if type not in MEMBERSHIPS:
        raise InvalidInput(f"membership type must be one of {', '.join(MEMBERSHIPS)}")
    if type == "superadmin":
        require_superadmin(actor, "grant superadmin")
    else:
        require_admin(actor, role, "manage its members")
    async with db.transaction() as conn:
        current = await (await conn.execute(Q["lock_membership"], {"role": role, "account": account_id})).fetchone()
        if current is not None and current["type"] == "superadmin" and not actor.superadmin:
            raise Forbidden("only a superadmin may change a superadmin's membership")
        try:
            await conn.execute(Q["set_membership"], {"role": role, "account": account_id, "type": type})
        except ForeignKeyViolation as exc:
            raise NotFound(f"no role {role!r} or no account {account_id!r}") from exc
        await audit(conn, actor, "role.member.set", "role", role, after=type, data={"account": account_id})


async def remove_membership(db: Database, actor: Principal, role: str, account_id: str) -> None:
    require_admin(actor, role, "manage its members")
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["remove_membership"], {"role": role, "account": account_id})).fetchone()
        if row is None:
            raise NotFound(f"{account_id!r} is not in role {role!r}")
        if row["type"] == "superadmin" and not actor.superadmin:
            raise Forbidden("only a superadmin may remove a superadmin")
        await audit(conn, actor, "role.member.remove", "role", role, before=row["type"], data={"account": account_id})


async def get_principal(db: Database, account_id: str, *, scope: str = "full") -> Principal:
    """The principal for an account (with its current memberships).

    Raises:
        NotFound: no such account.  Unauthenticated: it is disabled.
    """
    async with db.connection() as conn:
        row = await (await conn.execute(Q["get_account"], {"id": account_id})).fetchone()
    if row is None:
        raise NotFound(f"no account {account_id!r}")
    if row["disabled_at"] is not None:
        raise Unauthenticated(f"account {account_id!r} is disabled")
    return Principal(row["id"], row["name"], row["kind"], dict(row["roles"]), scope)


async def list_accounts(db: Database, actor: Principal) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["list_accounts"])).fetchall()
    if actor.superadmin:
        return [iso(r) for r in rows]
    mine = set(actor.roles)
    return [iso(r) for r in rows if r["id"] == actor.id or mine & set(r["roles"])]


async def list_roles(db: Database) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return [iso(r) for r in await (await conn.execute(Q["list_roles"])).fetchall()]


# -- API keys ---------------------------------------------------------------------------------------

def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split_key(token: str) -> tuple[str, str]:
    """`ltk_<id>_<secret>` -> (id, secret).

    Raises:
        Unauthenticated: not one of our keys.
    """
    if not token.startswith(KEY_PREFIX) or token.count("_") < 2:
        raise Unauthenticated("not a longtail-mcp API key (they start with ltk_)")
    key_id, _, secret = token[len(KEY_PREFIX):].partition("_")
    if not key_id or not secret:
        raise Unauthenticated("malformed API key")
    return key_id, secret


async def create_key(db: Database, actor: Principal, account_id: str, *, name: str = "", scope: str = "full",
                     expires_in: timedelta | None = None, token: str | None = None) -> dict[str, Any]:
    """A new key for `account_id`. The returned `key` is shown once; only its hash is stored."""
    if scope not in ("read", "full"):
        raise InvalidInput("scope must be read or full")
    require_write(actor)
    if actor.id != account_id and not actor.superadmin:
        raise Forbidden("only a superadmin may create keys for another account")
    if token is None:
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
        token = f"{KEY_PREFIX}{key_id}_{secret}"
    else:
        key_id, secret = split_key(token)
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInput("expires_in must be positive (omit it for a key that does not expire)")
    expires = datetime.now(UTC) + expires_in if expires_in is not None else None
    async with db.transaction() as conn:
        try:
            await conn.execute(Q["create_key"], {
                "id": key_id, "account": account_id, "name": name, "hash": _hash(secret), "scope": scope,
                "expires_at": expires,
            })
        except (ForeignKeyViolation, UniqueViolation) as exc:
            raise Conflict(f"could not create the key (unknown account {account_id!r}, or key id taken)") from exc
        await audit(conn, actor, "key.create", "api_key", key_id, after="active",
                    data={"account": account_id, "scope": scope})
    return {"id": key_id, "key": token, "account_id": account_id, "scope": scope,
            "expires_at": expires.isoformat() if expires else None}


async def authenticate(db: Database, token: str) -> Principal:
    """The principal a bearer key stands for.

    Raises:
        Unauthenticated: unknown, wrong, expired or revoked key, or a disabled account.
    """
    key_id, secret = split_key(token)
    async with db.connection() as conn:
        row = await (await conn.execute(Q["find_key"], {"id": key_id})).fetchone()
        if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), _hash(secret)):
            raise Unauthenticated("unknown API key")
        if row["revoked_at"] is not None:
            raise Unauthenticated("this API key was revoked")
        if row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC):
            raise Unauthenticated("this API key has expired")
        await conn.execute(Q["touch_key"], {"id": key_id})
    return await get_principal(db, row["account_id"], scope=row["scope"])


async def list_keys(db: Database, actor: Principal, account_id: str | None = None) -> list[dict[str, Any]]:
    if not actor.superadmin:
        if account_id not in (None, actor.id):
            raise Forbidden("only a superadmin may list another account's keys")
        account_id = actor.id
    async with db.connection() as conn:
        return [iso(r) for r in await (await conn.execute(Q["list_keys"], {"account": account_id})).fetchall()]


async def revoke_key(db: Database, actor: Principal, key_id: str) -> None:
    require_write(actor)
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["revoke_key"], {"id": key_id})).fetchone()
        if row is None:
            raise NotFound(f"no active key {key_id!r}")
        if row["account_id"] != actor.id and not actor.superadmin:
            raise Forbidden("only a superadmin may revoke another account's key")
        await audit(conn, actor, "key.revoke", "api_key", key_id, before="active", after="revoked")


async def ensure_admin(db: Database, token: str | None = None) -> dict[str, Any] | None:
    """On first start: an `admin` superadmin account and a full key (given, or new and returned once).

    Safe when several processes start at once on a fresh database (one of them creates it).
    """
    async with db.transaction() as conn:
        await conn.execute(Q["lock_named"], {"name": "longtail:ensure_admin"})
        exists = await (await conn.execute(Q["account_exists"], {"id": "admin"})).fetchone()
        if exists is None:
            await conn.execute(Q["create_account"],
                               {"id": "admin", "name": "Administrator", "kind": "human", "email": None})
            await audit(conn, SYSTEM, "account.create", "account", "admin", after="active")
            created = await conn.execute(Q["create_role"], {"name": "admin", "description": "administrators"})
            if await created.fetchone():
                await audit(conn, SYSTEM, "role.create", "role", "admin")
            await conn.execute(Q["set_membership"], {"role": "admin", "account": "admin", "type": "superadmin"})
            await audit(conn, SYSTEM, "role.member.set", "role", "admin", after="superadmin", data={"account": "admin"})
    if token is not None:
        key_id, secret = split_key(token)
        async with db.connection() as conn:
            found = await (await conn.execute(Q["find_key"], {"id": key_id})).fetchone()
        if found is not None:
            if not hmac.compare_digest(bytes(found["secret_hash"]), _hash(secret)):
                raise Conflict(f"LONGTAIL_ADMIN_KEY: a different key with id {key_id!r} is already registered")
            return None
        return await create_key(db, SYSTEM, "admin", name="LONGTAIL_ADMIN_KEY", token=token)
    if exists is None:
        return await create_key(db, SYSTEM, "admin", name="first admin key")
    return None


# -- forms and chains -------------------------------------------------------------------------------

def check_schema(schema: Any) -> None:
    """Raises InvalidInput unless `schema` is a valid JSON Schema object."""
    if not isinstance(schema, dict):
        raise InvalidInput("a form schema must be a JSON Schema object")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput(f"not a valid JSON Schema: {exc.message}") from None


async def add_form(db: Database, actor: Principal, role: str, schema: dict[str, Any]) -> int:
    """A new version of `role`'s resolution form; returns the version."""
    require_admin(actor, role, "change its form")
    check_schema(schema)
    async with db.transaction() as conn:
        await conn.execute(Q["lock_named"], {"name": f"longtail:form:{role}"})  # versions in order
        try:
            added = await conn.execute(Q["add_form"], {"role": role, "schema": dumps(schema), "actor": actor.id})
        except ForeignKeyViolation as exc:
            raise NotFound(f"no role {role!r}") from exc
        row = expect_row(await added.fetchone(), "add_form")  # INSERT ... SELECT max(): always one row
        await audit(conn, actor, "role.form", "role", role, data={"version": row["version"]})
    return int(row["version"])


async def set_chain(db: Database, actor: Principal, role: str, stage_seconds: float,
                    next_role: str | None = None) -> None:
    """An escalation waits `stage_seconds` at `role`, then moves to `next_role` (or expires without one)."""
    require_admin(actor, role, "change its escalation chain")
    if stage_seconds <= 0:
        raise InvalidInput("stage_seconds must be positive")
    if next_role == role:
        raise InvalidInput("a chain cannot point a role at itself")
    async with db.transaction() as conn:
        await conn.execute(Q["lock_chains"])  # the cycle check against concurrent edits
        seen, cursor = {role}, next_role
        while cursor is not None:
            if cursor in seen:
                raise InvalidInput(f"{role} -> {next_role} would make a cycle (the chain loops back to {cursor!r}); "
                                   "every chain must end in expiry")
            seen.add(cursor)
            step = await (await conn.execute(Q["get_chain"], {"role": cursor})).fetchone()
            cursor = step["next_role"] if step else None
        try:
            await conn.execute(Q["set_chain"], {"role": role, "next_role": next_role, "stage_seconds": stage_seconds})
        except ForeignKeyViolation as exc:
            raise NotFound(f"no role {role!r} or {next_role!r}") from exc
        await audit(conn, actor, "role.chain", "role", role,
                    data={"next_role": next_role, "stage_seconds": stage_seconds})


async def export_audit(db: Database, actor: Principal, *, after: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
    """The audit log in order (superadmins only: it names every account and change)."""
    if not actor.superadmin:
        raise Forbidden("only a superadmin may export the audit log")
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["export_audit"], {"after": after, "limit": limit})).fetchall()
        return [iso(r) for r in rows]

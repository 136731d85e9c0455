"""Escalations: a run (or anyone) asks a role for a decision; people claim, resolve, cancel, re-route.

Every change is one guarded statement (first writer wins; the loser gets `Conflict`), appends an
audit record and publishes an event in the same transaction, and a resolution wakes the waiting
run in that transaction too. RBAC is checked here, for every caller (MCP, CLI, web, Python).
"""

import hashlib
import json
import uuid
from typing import Any

from longtail_mcp import schemas
from longtail_mcp.db.pool import Conn, Database, expect_row
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Conflict, Forbidden, InvalidInput, NotFound
from longtail_mcp.events import Event, emit
from longtail_mcp.humans.identity import SYSTEM, Principal, audit, check_schema, require_write
from longtail_mcp.humans.inbox import visible_roles
from longtail_mcp.humans.models import Escalation
from longtail_mcp.runtime.codec import dumps, dumps_or_none

Q = load("escalations")
H = load("humans")
R = load("runtime")
CLAIM_SECONDS = 30 * 60
# Size limits (docs/humans.md): an escalation is read by people and listed to agents whose MCP
# clients cap one message (the SDK's at 1 MiB), so no single field may crowd out a page of work.
MAX_ID_CHARS = 300
MAX_MESSAGE_CHARS = 10_000
MAX_DATA_BYTES = 64 * 1024  # data, resolution and form schema, each as compact JSON
MAX_METADATA_BYTES = 8 * 1024


def check_escalation_id(escalation_id: str) -> None:
    """Raises InvalidInput unless the id is 1-300 printable characters (no control or bidi characters,
    which would let an id print as another in a terminal or a web page)."""
    if not escalation_id or len(escalation_id) > MAX_ID_CHARS or not escalation_id.isprintable():
        raise InvalidInput(f"escalation_id must be 1-{MAX_ID_CHARS} printable characters "
                           "(no control or bidirectional-override characters)")


def _check_size(value: Any, what: str, limit: int) -> str:
    encoded = dumps(value, what=what)
    if len(encoded.encode()) > limit:
        raise InvalidInput(f"{what} is {len(encoded.encode()):,} bytes as JSON; the limit is {limit:,} "
                           "(put large content in a file or a run's state and refer to it)")
    return encoded


def action_hash(tool: str, args: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of an exact action (tool + arguments)."""
    canonical = json.dumps({"tool": tool, "args": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def can_read(actor: Principal, row: dict[str, Any]) -> bool:
    """Members of its role, whoever holds its claim, and whoever asked (to follow the decision)."""
    return actor.member_of(row["role"]) or row.get("assigned_to") == actor.id or row.get("created_by") == actor.id


def _require_act(actor: Principal, row: dict[str, Any], what: str) -> None:
    require_write(actor)
    if not actor.member_of(row["role"]):
        raise Forbidden(f"{actor.id} is not a member of role {row['role']!r} and may not {what} its escalations")


async def _visible(conn: Conn, actor: Principal, escalation_id: str) -> dict[str, Any]:
    row = await (await conn.execute(Q["get_escalation"], {"id": escalation_id})).fetchone()
    if row is None or not can_read(actor, row):
        raise NotFound(f"no escalation {escalation_id!r}")  # invisible and absent look the same
    return row


async def wake_run(conn: Conn, db: Database, row: dict[str, Any]) -> None:
    """Wake the run waiting on this escalation (in the transaction that changed it)."""
    if row.get("workflow_id"):
        await conn.execute(R["wake_workflows"], {"ids": [row["workflow_id"]]})
        await db.wake(conn)


def event_of(kind: str, row: dict[str, Any]) -> Event:
    return Event(f"escalation.{kind}", workflow_id=row.get("workflow_id"), id=row["id"], status=row["status"],
                 name=row["role"])


async def _conflict(conn: Conn, escalation_id: str, what: str, role: str | None = None) -> Conflict:
    # This transaction read the escalation a moment ago, and escalations are never deleted.
    row = expect_row(await (await conn.execute(Q["get_escalation"], {"id": escalation_id})).fetchone(),
                     "get_escalation")
    if row["status"] != "pending":
        return Conflict(f"cannot {what}: escalation {escalation_id!r} is already {row['status']}")
    if role is not None and row["role"] != role:
        return Conflict(f"cannot {what}: escalation {escalation_id!r} was just re-routed to role {row['role']!r}")
    if row["assigned_to"] is None:
        return Conflict(f"cannot {what}: escalation {escalation_id!r} is not claimed")
    return Conflict(f"cannot {what}: escalation {escalation_id!r} is claimed by {row['assigned_to']} "
                    f"until {row['assigned_until'].isoformat()}")


# -- create -----------------------------------------------------------------------------------------

async def insert_escalation(
    conn: Conn, db: Database, actor: Principal, *, escalation_id: str, role: str, message: str,
    data: dict[str, Any] | None = None, type: str = "review", priority: int = 3,
    # `timeout` is the escalation's deadline, stored with it, not a limit on this call.
    form_schema: dict[str, Any] | None = None, timeout: float | None = None, assigned_to: str | None = None,  # noqa: ASYNC109
    metadata: dict[str, Any] | None = None, action: tuple[str, dict[str, Any]] | None = None,
    workflow_id: str | None = None, seq: int | None = None,
) -> dict[str, Any] | None:
    """Insert on the caller's transaction (a run's suspension uses this in the same transaction).

    The id is an idempotency key, and never a way into someone else's escalation: if it exists, the
    existing row is returned only when it is the same request by the same account (and, for a run,
    the same run and step); otherwise None, and the caller chooses (Conflict, or another id).

    Raises:
        InvalidInput: bad id, priority, message, data, form schema or timeout.  NotFound: unknown role.
    """
    check_escalation_id(escalation_id)
    if not message:
        raise InvalidInput("an escalation needs a message")
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"the message is {len(message):,} characters; the limit is {MAX_MESSAGE_CHARS:,}")
    if not 1 <= priority <= 5:
        raise InvalidInput("priority must be 1 (most urgent) to 5")
    if timeout is not None and timeout <= 0:
        raise InvalidInput("timeout must be positive")
    if data is not None and not isinstance(data, dict):
        raise InvalidInput("data must be an object")
    encoded_data = _check_size(data or {}, "escalation data", MAX_DATA_BYTES)
    encoded_metadata = _check_size(metadata or {}, "escalation metadata", MAX_METADATA_BYTES)
    form_version = None
    if form_schema is not None:
        check_schema(form_schema)
        _check_size(form_schema, "the form schema", MAX_DATA_BYTES)
    else:
        form = await (await conn.execute(H["current_form"], {"role": role})).fetchone()
        if form is not None:
            form_version, form_schema = form["version"], form["schema"]
    deadline = timeout
    if deadline is None:
        chain = await (await conn.execute(H["get_chain"], {"role": role})).fetchone()
        deadline = chain["stage_seconds"] if chain else None
    if await (await conn.execute(H["role_exists"], {"role": role})).fetchone() is None:
        raise NotFound(f"no role {role!r}")
    if assigned_to is not None:
        member = await (await conn.execute(H["is_member"], {"account": assigned_to, "role": role})).fetchone()
        if member is None:
            raise InvalidInput(f"cannot assign to {assigned_to!r}: not a member of role {role!r}")
    row = await (await conn.execute(Q["insert_escalation"], {
        "id": escalation_id, "workflow_id": workflow_id, "seq": seq, "type": type, "role": role,
        "message": message, "data": encoded_data, "metadata": encoded_metadata, "form_version": form_version,
        "form_schema": dumps_or_none(form_schema), "priority": priority, "assigned_to": assigned_to,
        "claim_seconds": CLAIM_SECONDS, "deadline_seconds": deadline,
        "action_hash": action_hash(*action) if action else None, "created_by": actor.id,
    })).fetchone()
    if row is None:
        existing = await (await conn.execute(Q["get_escalation"], {"id": escalation_id})).fetchone()
        same = existing is not None and (
            existing["created_by"] == actor.id and existing["workflow_id"] == workflow_id and existing["seq"] == seq
            and existing["type"] == type and existing["message"] == message and existing["data"] == (data or {}))
        return existing if same else None
    await audit(conn, actor, "escalation.create", "escalation", escalation_id, after="pending",
                data={"role": role, "workflow_id": workflow_id})
    await emit(conn, db, [event_of("created", row)])
    return row


async def create_escalation(db: Database, actor: Principal, *, role: str, message: str,
                            escalation_id: str | None = None, **options: Any) -> Escalation:
    """An escalation outside any run (a notification, or a request someone will follow up).

    Raises:
        Conflict: `escalation_id` is taken by another request (nothing about it is returned).
    """
    require_write(actor)
    escalation_id = escalation_id or f"esc-{uuid.uuid4().hex}"
    async with db.transaction() as conn:
        row = await insert_escalation(conn, db, actor, escalation_id=escalation_id, role=role, message=message,
                                      **options)
    if row is None:
        raise Conflict(f"escalation id {escalation_id!r} is already taken; omit escalation_id or choose another")
    return Escalation.of(row)


# -- act --------------------------------------------------------------------------------------------

async def get_escalation(db: Database, actor: Principal, escalation_id: str) -> Escalation:
    async with db.connection() as conn:
        return Escalation.of(await _visible(conn, actor, escalation_id))


async def claim(db: Database, actor: Principal, escalation_id: str, *, seconds: float = CLAIM_SECONDS) -> Escalation:
    """Claim for `seconds` (default 30 min); claiming again extends one's own claim.

    Raises:
        Conflict: someone else holds a live claim, or it is no longer pending.
    """
    if seconds <= 0:
        raise InvalidInput("a claim needs a positive duration")
    async with db.transaction() as conn:
        row = await _visible(conn, actor, escalation_id)
        _require_act(actor, row, "claim")
        new = await (await conn.execute(Q["claim_escalation"], {
            "id": escalation_id, "who": actor.id, "seconds": seconds, "role": row["role"],
        })).fetchone()
        if new is None:
            raise await _conflict(conn, escalation_id, "claim", row["role"])
        await audit(conn, actor, "escalation.claim", "escalation", escalation_id, before="pending", after="pending",
                    data={"until": new["assigned_until"].isoformat()})
        await emit(conn, db, [event_of("claimed", new)])
    return Escalation.of(new)


async def claim_next(db: Database, actor: Principal, *, role: str | None = None,
                     seconds: float = CLAIM_SECONDS) -> Escalation | None:
    """Claim the next piece of work (most urgent, then oldest) from the actor's roles, or None.

    Unlike list-then-claim, concurrent callers never collide: each gets a different escalation.
    """
    require_write(actor)
    if seconds <= 0:
        raise InvalidInput("a claim needs a positive duration")
    roles = visible_roles(actor, role)
    async with db.connection() as conn:  # one autocommit statement: pick, claim, audit, event
        if roles is None:
            roles = [r["name"] for r in await (await conn.execute(H["list_role_names"])).fetchall()]
        row = await (await conn.execute(Q["claim_next"], {
            "who": actor.id, "roles": roles, "seconds": seconds, "channel": db.events_channel,
        })).fetchone()
    return None if row is None else Escalation.of(row)


async def release(db: Database, actor: Principal, escalation_id: str) -> Escalation:
    """Give back one's claim (an admin of the role may release anyone's)."""
    async with db.transaction() as conn:
        row = await _visible(conn, actor, escalation_id)
        _require_act(actor, row, "release")
        new = await (await conn.execute(Q["release_escalation"], {
            "id": escalation_id, "who": actor.id, "force": actor.admin_of(row["role"]), "role": row["role"],
        })).fetchone()
        if new is None:
            raise Conflict(f"cannot release: escalation {escalation_id!r} is not claimed by {actor.id}")
        await audit(conn, actor, "escalation.release", "escalation", escalation_id, before="pending", after="pending")
        await emit(conn, db, [event_of("released", new)])
    return Escalation.of(new)


def validate_resolution(schema: dict[str, Any] | None, payload: Any) -> None:
    """Raises InvalidInput listing what is wrong when `payload` does not satisfy the pinned form."""
    if not isinstance(payload, dict):
        raise InvalidInput("a resolution must be an object")
    found = schemas.problems(schema, payload)
    if found:
        raise InvalidInput(f"the resolution does not match the form: {schemas.summary(found)}",
                           data={"errors": [p.entry("resolution") for p in found]})


async def resolve(db: Database, actor: Principal, escalation_id: str, resolution: dict[str, Any], *,
                  reason: str | None = None, allow_self_approval: bool = False) -> Escalation:
    """Resolve with a payload validated against the pinned form; wakes the waiting run.

    A rejected payload changes nothing (the claim stays as it was). An approval is never decided by
    the account that asked for it, a superadmin included, unless `allow_self_approval` (the setting
    LONGTAIL_ALLOW_SELF_APPROVAL, for single-person installs).

    Raises:
        InvalidInput: payload fails the form.  Conflict: someone else claimed it, or it ended.
        Forbidden: the requester deciding their own approval (or no right to act on the role).
    """
    async with db.transaction() as conn:
        row = await _visible(conn, actor, escalation_id)
        _require_act(actor, row, "resolve")
        if row["type"] == "approval" and row["created_by"] == actor.id and not allow_self_approval:
            raise Forbidden(f"{actor.id} asked for this approval and may not decide it (separation of duties): "
                            "another member of the approver role must")
        validate_resolution(row["form_schema"], resolution)
        _check_size(resolution, "the resolution", MAX_DATA_BYTES)
        new = await (await conn.execute(Q["resolve_escalation"], {
            "id": escalation_id, "who": actor.id, "resolution": dumps(resolution, what="resolution"), "reason": reason,
            "role": row["role"],
        })).fetchone()
        if new is None:
            raise await _conflict(conn, escalation_id, "resolve", row["role"])
        await audit(conn, actor, "escalation.resolve", "escalation", escalation_id, before="pending",
                    after="resolved", reason=reason)
        await emit(conn, db, [event_of("resolved", new)])
        await wake_run(conn, db, new)
    return Escalation.of(new)


async def cancel(db: Database, actor: Principal, escalation_id: str, *, reason: str | None = None) -> Escalation:
    async with db.transaction() as conn:
        row = await _visible(conn, actor, escalation_id)
        _require_act(actor, row, "cancel")
        new = await (await conn.execute(Q["cancel_escalation"], {
            "id": escalation_id, "who": actor.id, "reason": reason, "role": row["role"],
            "force": actor.admin_of(row["role"]),
        })).fetchone()
        if new is None:
            raise await _conflict(conn, escalation_id, "cancel", row["role"])
        await audit(conn, actor, "escalation.cancel", "escalation", escalation_id, before="pending",
                    after="cancelled", reason=reason)
        await emit(conn, db, [event_of("cancelled", new)])
        await wake_run(conn, db, new)
    return Escalation.of(new)


async def reroute(db: Database, actor: Principal, escalation_id: str, role: str, *,
                  reason: str | None = None) -> Escalation:
    """Send to another role (claim cleared; the new role's chain sets the deadline)."""
    async with db.transaction() as conn:
        row = await _visible(conn, actor, escalation_id)
        _require_act(actor, row, "re-route")
        if role == row["role"]:
            raise InvalidInput(f"escalation {escalation_id!r} is already with role {role!r}")
        if await (await conn.execute(H["role_exists"], {"role": role})).fetchone() is None:
            raise NotFound(f"no role {role!r}")
        chain = await (await conn.execute(H["get_chain"], {"role": role})).fetchone()
        new = await (await conn.execute(Q["reroute_escalation"], {
            "id": escalation_id, "role": role, "from_role": row["role"], "reason": reason,
            "deadline_seconds": chain["stage_seconds"] if chain else None, "who": actor.id,
            "force": actor.admin_of(row["role"]),
        })).fetchone()
        if new is None:
            raise await _conflict(conn, escalation_id, "re-route", row["role"])
        await audit(conn, actor, "escalation.reroute", "escalation", escalation_id, before="pending", after="pending",
                    reason=reason, data={"from": row["role"], "to": role})
        await emit(conn, db, [event_of("escalated", new)])
    return Escalation.of(new)


async def annotate(db: Database, actor: Principal, escalation_id: str, metadata: dict[str, Any], *,
                   reason: str | None = None) -> Escalation:
    """Attach findings to a pending escalation (keys merged into its metadata), for whoever takes it.

    Raises:
        InvalidInput: not an object, or too large.  Conflict: it is no longer pending.
    """
    if not isinstance(metadata, dict) or not metadata:
        raise InvalidInput("annotations are a non-empty object")
    async with db.transaction() as conn:
        row = await _visible(conn, actor, escalation_id)
        _require_act(actor, row, "annotate")
        _check_size({**(row["metadata"] or {}), **metadata}, "escalation metadata", MAX_METADATA_BYTES)
        new = await (await conn.execute(Q["annotate_escalation"], {
            "id": escalation_id, "metadata": dumps(metadata, what="annotations")})).fetchone()
        if new is None:
            raise await _conflict(conn, escalation_id, "annotate", row["role"])
        await audit(conn, actor, "escalation.annotate", "escalation", escalation_id, before="pending",
                    after="pending", reason=reason, data={"keys": sorted(metadata)})
    return Escalation.of(new)


async def history(db: Database, actor: Principal, escalation_id: str) -> list[dict[str, Any]]:
    """What happened to an escalation, oldest first (its audit records: created, claimed, re-routed,
    handed to a strategy, annotated, resolved ...), for anyone who may see it."""
    async with db.connection() as conn:
        await _visible(conn, actor, escalation_id)
        rows = await (await conn.execute(Q["escalation_history"], {"id": escalation_id})).fetchall()
    return [dict(r) for r in rows]


async def use_approval(db: Database, escalation_id: str, tool: str, args: dict[str, Any], *,
                       requested_by: str | None = None) -> None:
    """Spend an approval on exactly the action it was bound to. Single use. With `requested_by`, only the
    account that asked for it may spend it.

    Raises:
        Forbidden: not an approval of this exact action, not approved, already used, or someone else's.
    """
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["use_approval"], {
            "id": escalation_id, "hash": action_hash(tool, args), "who": requested_by,
        })).fetchone()
        if row is None:
            raise Forbidden(f"escalation {escalation_id!r} does not approve this exact call (it is not approved, "
                            "is for other arguments, was requested by someone else, or its approval was used)")
        await audit(conn, SYSTEM, "escalation.approval.use", "escalation", escalation_id,
                    data={"tool": tool})

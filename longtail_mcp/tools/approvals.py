"""Denial -> approval: a call a safety policy refused becomes an escalation to the approver role,
bound to the hash of that exact call; once approved, the same caller may make that call once.
"""

import hashlib
from typing import Any

from pydantic import BaseModel

from longtail_mcp.db.pool import Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import PolicyDenied
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans.identity import Principal, require_write
from longtail_mcp.humans.models import Escalation

Q = load("escalations")
CONTROL_FIELDS = frozenset({"request_approval", "approval_id"})
APPROVAL_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["approved"],
    "properties": {
        "approved": {"type": "boolean", "description": "Allow this exact call once"},
        "reason": {"type": "string", "maxLength": 2000},
    },
    "additionalProperties": False,
}


def canonical(args: BaseModel) -> dict[str, Any]:
    """The arguments an approval is bound to: every field with its default filled in, minus the approval
    controls, so `{"path": "a"}` and `{"path": "a", "overwrite": false}` are the same call."""
    return args.model_dump(mode="json", exclude=set(CONTROL_FIELDS))


def message(tool: str, who: str, reason: str) -> str:
    return f"Allow {who} to call {tool} once, with exactly the arguments shown? It was refused: {reason}"


SHOWN_CHARS = 4000  # longer argument strings are shown cut, with their length and hash


def _shown(value: Any) -> Any:
    """The arguments as an approver sees them: a long string (a file's content) is cut to its start plus
    its length and sha256, so the escalation stays readable; the approval still binds the whole call."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        digest = hashlib.sha256(value.encode()).hexdigest()
        return f"{value[:SHOWN_CHARS]}… [{len(value):,} characters in all, sha256 {digest}]"
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def details(tool: str, args: dict[str, Any], *, who: str, reason: str, rule: str) -> dict[str, Any]:
    return {"tool": tool, "arguments": _shown(args), "rule": rule, "reason": reason, "requested_by": who}


async def request(db: Database, actor: Principal, role: str, tool: str, args: dict[str, Any], *, reason: str,
                  rule: str) -> Escalation:
    """Open (or return the caller's still-pending) approval escalation for the exact call `tool(args)`.

    Raises:
        Forbidden: a read-only key.  NotFound: the approver role does not exist.
    """
    require_write(actor)
    async with db.connection() as conn:
        pending = await (await conn.execute(Q["pending_approval"], {
            "hash": esc.action_hash(tool, args), "who": actor.id,
        })).fetchone()
    if pending is not None:
        return Escalation.of(pending)
    return await esc.create_escalation(
        db, actor, role=role, message=message(tool, actor.id, reason), type="approval", priority=2,
        data=details(tool, args, who=actor.id, reason=reason, rule=rule), form_schema=APPROVAL_FORM,
        metadata={"tool": tool, "rule": rule}, action=(tool, args),
    )


async def spend(db: Database, actor: Principal, escalation_id: str, tool: str, args: dict[str, Any]) -> None:
    """Use an approval for `tool(args)`: it must be approved, for this exact call, requested by `actor`, unused.

    Raises:
        Forbidden: anything else (or a read-only key).
    """
    require_write(actor)
    await esc.use_approval(db, escalation_id, tool, args, requested_by=actor.id)


async def explain(services: Any, principal: Principal, tool: str, action: tuple[str, dict[str, Any]],
                  refusal: PolicyDenied, *, ask: bool) -> PolicyDenied:
    """The error a caller sees for a refused call: how to ask for an approval, or (with `ask`) the
    approval escalation just opened for it (its id also in the error's data)."""
    role = services.settings.approver_role
    if not ask:
        return PolicyDenied(f"{refusal.message}. To ask the {role!r} role to allow this exact call once, call "
                            "again with request_approval: true", rule=refusal.rule)
    row = await request(services.db, principal, role, *action, reason=refusal.message, rule=refusal.rule)
    return PolicyDenied(f"{refusal.message}. Approval requested: escalation {row.id!r} for role {row.role!r} "
                        f"(human-queue check_resolution shows the decision). Once approved, call {tool} again with "
                        f"the same arguments and approval_id={row.id!r}: it goes through once",
                        rule=refusal.rule, data={"escalation_id": row.id})

"""The inbox: what is waiting for whom (available work, my claims, searches, counts), a page at a time."""

from typing import Any

from longtail_mcp.db.pool import Database
from longtail_mcp.db.queries import load
from longtail_mcp.db.search import ESCALATION_ORDERS, find_escalations_query, work_query
from longtail_mcp.errors import Forbidden, InvalidInput
from longtail_mcp.humans.identity import Principal
from longtail_mcp.humans.models import Escalation, EscalationStats
from longtail_mcp.runtime.codec import dumps, dumps_or_none

Q = load("escalations")
H = load("humans")
STATUSES = ("pending", "resolved", "cancelled", "expired")
SORTS = ESCALATION_ORDERS  # priority: most urgent first, then oldest; oldest first; newest first
PAGE_BYTES = 512 * 1024  # a listing stops adding escalations past this much data (then next_offset)


def visible_roles(actor: Principal, role: str | None) -> list[str] | None:
    """The roles whose escalations `actor` lists (None: every role, for a superadmin)."""
    if role is not None:
        if not actor.member_of(role):
            raise Forbidden(f"{actor.id} is not a member of role {role!r}")
        return [role]
    return None if actor.superadmin else sorted(actor.roles)


async def available_work(db: Database, actor: Principal, *, role: str | None = None, type: str | None = None,
                         sort: str = "priority", limit: int = 50, offset: int = 0) -> list[Escalation]:
    """Pending work `actor` may claim (of their roles, or of `role`; of one `type`), one page in the order
    `sort` asks (SORTS): the database filters and orders, so a page is right however long the queue."""
    roles = visible_roles(actor, role)
    _check_page(limit, offset)
    _check_sort(sort)
    if roles is None:
        async with db.connection() as conn:
            roles = [r["name"] for r in await (await conn.execute(H["list_role_names"])).fetchall()]
    query = work_query("available", role=False, type=type is not None, order=sort)
    async with db.connection() as conn:
        rows = await (await conn.execute(query, {"roles": roles, "type": type, "limit": limit,
                                                 "offset": offset})).fetchall()
    return Escalation.all(rows)


async def my_work(db: Database, actor: Principal, *, role: str | None = None, type: str | None = None,
                  sort: str = "priority", limit: int = 50, offset: int = 0) -> list[Escalation]:
    """What `actor` holds a live claim on (of one `role` and `type` if given), one page in the order `sort`
    asks."""
    _check_page(limit, offset)
    _check_sort(sort)
    query = work_query("mine", role=role is not None, type=type is not None, order=sort)
    async with db.connection() as conn:
        return Escalation.all(await (await conn.execute(query, {
            "who": actor.id, "role": role, "type": type, "limit": limit, "offset": offset})).fetchall())


async def find_escalations(db: Database, actor: Principal, *, status: str | None = None, role: str | None = None,
                           type: str | None = None, priority: int | None = None,
                           metadata: dict[str, Any] | None = None, workflow_id: str | None = None,
                           sort: str = "newest", limit: int = 50, offset: int = 0) -> list[Escalation]:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    _check_page(limit, offset)
    _check_sort(sort)
    roles = None if actor.superadmin or role is not None else sorted(actor.roles)
    if role is not None and not actor.member_of(role):
        raise Forbidden(f"{actor.id} is not a member of role {role!r}")
    given = {"roles": roles is not None, "status": status is not None, "role": role is not None,
             "type": type is not None, "priority": priority is not None, "metadata": metadata is not None,
             "workflow_id": workflow_id is not None}
    params = {"roles": roles, "status": status, "role": role, "type": type, "priority": priority,
              "metadata": dumps_or_none(metadata), "workflow_id": workflow_id, "limit": limit, "offset": offset}
    async with db.connection() as conn:
        rows = await (await conn.execute(find_escalations_query(order=sort, **given), params)).fetchall()
    return Escalation.all(rows)


def _check_sort(sort: str) -> None:
    if sort not in SORTS:
        raise InvalidInput(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 1001:
        raise InvalidInput("limit must be between 1 and 1000")
    if offset < 0:
        raise InvalidInput("offset must not be negative")


def page(rows: list[Escalation], *, limit: int, offset: int) -> tuple[list[Escalation], int | None]:
    """Cut a listing fetched with `limit + 1` rows into one page and the offset of the next (None: last
    page). A page also ends before its data passes PAGE_BYTES, so one answer stays readable."""
    out: list[Escalation] = []
    size = 0
    for row in rows[:limit]:
        size += len(dumps(row.data)) + len(dumps(row.form_schema))
        if out and size > PAGE_BYTES:
            break
        out.append(row)
    more = len(out) < len(rows)
    return out, (offset + len(out) if more else None)


async def escalation_stats(db: Database, actor: Principal) -> EscalationStats:
    roles = None if actor.superadmin else sorted(actor.roles)
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["escalation_stats"], {"roles": roles})).fetchall()
    by_status: dict[str, int] = {}
    by_role: dict[str, dict[str, int]] = {}
    totals = {"created_1h": 0, "created_1d": 0, "resolved_1h": 0, "resolved_1d": 0}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + r["n"]
        by_role.setdefault(r["role"], {})[r["status"]] = r["n"]
        for k in totals:
            totals[k] += r[k]
    return EscalationStats(by_status=by_status, by_role=by_role, **totals)

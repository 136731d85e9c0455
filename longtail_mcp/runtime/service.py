"""Run services: the one implementation behind the Python API, the CLI and (later) the MCP tools."""

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from croniter import croniter
from psycopg import errors as pg_errors

from longtail_mcp.db.pool import Conn, Database
from longtail_mcp.db.queries import load
from longtail_mcp.db.search import find_runs_query
from longtail_mcp.errors import Conflict, InvalidInput, NotFound
from longtail_mcp.events import Event, emit
from longtail_mcp.runtime.codec import dumps, dumps_or_none
from longtail_mcp.runtime.journal import TERMINAL
from longtail_mcp.runtime.models import (
    FoundRun,
    Run,
    RunExport,
    RunSummary,
    Schedule,
    Signal,
    Step,
    WorkflowTool,
    WorkflowType,
)
from longtail_mcp.runtime.ports import CancelListener

Q = load("runtime")
S = load("schedules")
LIVE = ("pending", "running", "waiting")
STATUSES = (*LIVE, *TERMINAL)


def check_id(workflow_id: str, what: str = "workflow_id") -> None:
    if not workflow_id or len(workflow_id) > 200 or not workflow_id.isprintable():
        raise InvalidInput(f"{what} must be 1-200 printable characters")


# The ids the runtime makes for runs nobody named: a child `<parent>/<n>`, a cron tick `<schedule>@<time>`.
_SYSTEM_ID = re.compile(r"/|@\d{4}-\d{2}-\d{2}T")


def check_caller_id(workflow_id: str) -> None:
    """An id an untrusted caller chose must not have the form of an id the runtime will make: taken first,
    it would stop another account's child run from starting, or a schedule's tick from firing.

    Raises:
        InvalidInput: it contains `/` or an `@<ISO time>`.
    """
    check_id(workflow_id)
    if _SYSTEM_ID.search(workflow_id):
        raise InvalidInput("workflow_id must not contain '/' (child runs are named <parent>/<n>) or '@' and a time "
                           "(cron runs are named <schedule>@<time>); choose another id")


# Who may see a run: None (trusted code, superadmins) sees every run; (account id, role names) sees
# the runs that account started and the runs that asked one of those roles (see humans/runs.py).
Visibility = tuple[str, list[str]] | None


def _visibility_params(visible_to: Visibility) -> dict[str, Any]:
    who, roles = visible_to or (None, [])
    return {"who": who, "roles": roles}


async def require_visible(db: Database, workflow_id: str, visible_to: Visibility) -> None:
    """Raises NotFound unless the run exists and `visible_to` may see it (absent and invisible look alike)."""
    if visible_to is None:
        return
    async with db.connection() as conn:
        row = await (await conn.execute(Q["run_visible"], {"id": workflow_id,
                                                           **_visibility_params(visible_to)})).fetchone()
    if row is None:
        raise NotFound(f"no run with id {workflow_id!r}")


def _starter(principal: Any) -> str:
    return str(principal.id) if principal is not None else "system"


async def start_run(db: Database, name: str, input: Any = None, *, workflow_id: str | None = None,
                    principal: Any = None, then: Callable[[Conn], Awaitable[None]] | None = None) -> tuple[str, bool]:
    """Insert a run (the id is the idempotency key) on behalf of `principal`. Returns (id, created).
    `then` runs in the same transaction when the run is created (what must be written with it, or not at all).

    Starting an existing id again returns that run only to the one who started it (with the same
    type); anyone else gets Conflict and learns nothing about it.

    Raises:
        InvalidInput: no name, a bad id, or input that is not JSON.  Conflict: the id is someone else's.
    """
    if not name:
        raise InvalidInput("a workflow name is required")
    wid = workflow_id if workflow_id is not None else f"{name}-{uuid.uuid4().hex}"
    check_id(wid)
    encoded = dumps(input, what="workflow input")
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["start_workflow"], {
            "id": wid, "name": name, "input": encoded, "parent_id": None, "parent_seq": None,
            "principal": dumps(principal.to_json()) if principal is not None else None,
        })).fetchone()
        if row is not None:
            if then is not None:
                await then(conn)
            await emit(conn, db, [Event("run.started", workflow_id=wid, name=name, status="pending")])
            await db.wake(conn)
            return wid, True
        existing = await (await conn.execute(Q["run_starter"], {"id": wid})).fetchone()
    if existing is not None and existing["started_by"] != _starter(principal):
        raise Conflict(f"the workflow id {wid!r} is already taken; choose another")
    if existing is not None and existing["name"] != name:
        raise Conflict(f"the workflow id {wid!r} is already a run of type {existing['name']!r}, not {name!r}")
    return wid, False


async def start_hook(db: Database, target: str, name: str, args: Any = None, *, hook_id: str | None = None,
                     principal: Any = None) -> str:
    """Start workflow type `name` as a hook on live run `target`, sharing its entity state.

    Raises:
        NotFound: no run `target`.  Conflict: it already ended, or `hook_id` is taken.
    """
    hid = hook_id or f"{target}#{name}-{uuid.uuid4().hex[:12]}"
    check_id(hid, "hook_id")
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["start_hook"], {
            "id": hid, "name": name, "input": dumps(args, what="hook arguments"), "target": target,
            "principal": dumps(principal.to_json()) if principal is not None else None,
        })).fetchone()
        if row is None:
            run = await (await conn.execute(Q["get_workflow"], {"id": target})).fetchone()
            if run is None:
                raise NotFound(f"no run with id {target!r}")
            if run["status"] not in LIVE:
                raise Conflict(f"run {target!r} is {run['status']}; hooks start only on live runs")
            raise Conflict(f"a run with id {hid!r} already exists")
        await emit(conn, db, [Event("run.started", workflow_id=hid, name=name, status="pending", kind="hook")])
        await db.wake(conn)
    return hid


async def send_signal(db: Database, workflow_id: str, name: str, payload: Any = None) -> None:
    if not name:
        raise InvalidInput("a signal needs a name")
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["send_signal"], {
            "id": workflow_id, "name": name, "payload": dumps(payload, what="signal payload"),
        })).fetchone()
        if row is None:
            run = await (await conn.execute(Q["get_workflow"], {"id": workflow_id})).fetchone()
            if run is None:
                raise NotFound(f"no run with id {workflow_id!r}")
            raise Conflict(f"run {workflow_id!r} is {run['status']}; the signal {name!r} was not delivered")
        await db.wake(conn)


async def cancel_run(db: Database, workflow_id: str, reason: str | None = None, *,
                     listeners: Sequence[CancelListener] = ()) -> list[str]:
    """Cancel a live run, its children and hooks; returns the ids cancelled. Each of `listeners` (the
    composition root passes `Extensions.on_cancel`) runs in the cancelling transaction, e.g. to close
    the escalations those runs waited on."""
    error = {"code": "cancelled", "type": "Cancelled", "message": reason or "cancelled", "retryable": False}
    async with db.transaction() as conn:
        rows = await (await conn.execute(Q["cancel_workflows"], {"id": workflow_id, "error": dumps(error)})).fetchall()
        if not rows:
            run = await (await conn.execute(Q["get_workflow"], {"id": workflow_id})).fetchone()
            if run is None:
                raise NotFound(f"no run with id {workflow_id!r}")
            raise Conflict(f"run {workflow_id!r} is already {run['status']}")
        ids = [r["id"] for r in rows]
        parents = sorted({r["parent_id"] for r in rows if r["parent_id"] and r["parent_id"] not in ids})
        if parents:
            await conn.execute(Q["wake_workflows"], {"ids": parents})
        await emit(conn, db, [Event("run.cancelled", workflow_id=r["id"], name=r["name"], status="cancelled")
                              for r in rows])
        for listener in listeners:
            await listener(conn, ids, f"run cancelled: {reason or 'cancelled'}")
        await db.wake(conn)
    return ids


async def get_run(db: Database, workflow_id: str) -> Run:
    async with db.connection() as conn:
        row = await (await conn.execute(Q["get_workflow"], {"id": workflow_id})).fetchone()
    if row is None:
        raise NotFound(f"no run with id {workflow_id!r}")
    return Run.of(row)


async def export_run(db: Database, workflow_id: str) -> RunExport:
    """The full history: the run, every journal entry (with timings), every signal."""
    run = await get_run(db, workflow_id)
    async with db.connection() as conn:
        steps = await (await conn.execute(Q["export_steps"], {"id": workflow_id})).fetchall()
        messages = await (await conn.execute(Q["export_messages"], {"id": workflow_id})).fetchall()
    return RunExport(run=run, steps=Step.all(steps), signals=Signal.all(messages))


async def get_state(db: Database, workflow_id: str, path: list[str] | None = None) -> Any:
    async with db.connection() as conn:
        row = await (await conn.execute(Q["get_state"], {"id": workflow_id, "path": path or []})).fetchone()
    if row is None:
        raise NotFound(f"no run with id {workflow_id!r}")
    return row["value"]


def _check_listing(status: str | None, limit: int, offset: int = 0) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    if offset < 0:
        raise InvalidInput("offset must not be negative")


async def list_runs(db: Database, *, status: str | None = None, name: str | None = None, limit: int = 50,
                    offset: int = 0, visible_to: Visibility = None) -> list[RunSummary]:
    """Runs, newest first: one page of `limit` from `offset`, only those `visible_to` may see."""
    _check_listing(status, limit, offset)
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["list_workflows"], {
            "status": status, "name": name, "limit": limit, "offset": offset, **_visibility_params(visible_to),
        })).fetchall()
    return RunSummary.all(rows)


async def related_runs(db: Database, parent: str, ids: list[str], *,
                       visible_to: Visibility = None) -> list[RunSummary]:
    """The runs of `ids` (a parent's children, as its journal names them) and the hooks started on `parent`,
    oldest first, in one query; only those `visible_to` may see (the others are simply absent)."""
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["related_runs"], {
            "parent": parent, "ids": ids, **_visibility_params(visible_to)})).fetchall()
    return RunSummary.all(rows)


async def find_runs(
    db: Database,
    *,
    state: dict[str, Any] | None = None,
    path: str | None = None,
    status: str | None = None,
    name: str | None = None,
    limit: int = 50,
    visible_to: tuple[str, list[str]] | None = None,
) -> list[FoundRun]:
    """Runs whose entity state contains `state` (`@>`) and matches the jsonpath predicate `path` (`@?`).

    `visible_to=(account_id, roles)` keeps only the runs that account started or that asked one of those roles.
    """
    _check_listing(status, limit)
    if state is not None and not isinstance(state, dict):
        raise InvalidInput("state must be an object to match by containment")
    query = find_runs_query(state=state is not None, path=path is not None, status=status is not None,
                            name=name is not None, visible=visible_to is not None)
    who, roles = visible_to or (None, [])
    params = {"state": dumps_or_none(state), "path": path, "status": status, "name": name, "limit": limit,
              "who": who, "roles": roles}
    try:
        async with db.connection() as conn:
            rows = await (await conn.execute(query, params)).fetchall()
    except (pg_errors.SyntaxError, pg_errors.DataError) as exc:
        raise InvalidInput(f"invalid jsonpath {path!r}: {str(exc).splitlines()[0]}") from None
    return FoundRun.all(rows)


# -- schedules ---------------------------------------------------------------------------------

def cron_iter(cron: str, start: datetime) -> croniter:
    """A croniter over 5-field (minute) or 6-field (seconds first) expressions, in UTC.

    Raises:
        InvalidInput: the expression is not valid cron.
    """
    fields = cron.split()
    seconds = len(fields) == 6
    if len(fields) not in (5, 6) or not croniter.is_valid(cron, second_at_beginning=seconds):
        raise InvalidInput(f"invalid cron expression {cron!r}: use 5 fields (m h dom mon dow) or 6 with seconds first")
    return croniter(cron, start, second_at_beginning=seconds)


async def upsert_schedule(
    db: Database, name: str, cron: str, input: Any = None, *, workflow: str | None = None, declared: bool = False,
    conn: Conn | None = None,
) -> Schedule:
    """Create or change a schedule. `declared` (a workflow's own cron=...) never overwrites its input. With
    `conn`, inside the caller's transaction (the workers hear of it when that commits)."""
    check_id(name, "schedule name")
    now = datetime.now(UTC)
    next_at = cron_iter(cron, now).get_next(datetime)
    async with _on(db, conn) as c:
        await c.execute(S["register_cron" if declared else "upsert_schedule"], {
            "name": name, "workflow": workflow or name, "cron": cron, "input": dumps_or_none(input), "next_at": next_at,
        })
        await db.wake(c)
    return Schedule(name=name, workflow=workflow or name, cron=cron, input=input, next_at=next_at.isoformat())


async def delete_schedule(db: Database, name: str, *, conn: Conn | None = None) -> None:
    """Remove a schedule (with `conn`, inside the caller's transaction).

    Raises:
        NotFound: there is none of that name.
    """
    async with _on(db, conn) as c:
        row = await (await c.execute(S["delete_schedule"], {"name": name})).fetchone()
    if row is None:
        raise NotFound(f"no schedule named {name!r}")


@asynccontextmanager
async def _on(db: Database, conn: Conn | None) -> AsyncIterator[Conn]:
    """The caller's connection, or one of the pool's for this statement."""
    if conn is not None:
        yield conn
        return
    async with db.connection() as own:
        yield own


async def list_schedules(db: Database) -> list[Schedule]:
    async with db.connection() as conn:
        return Schedule.all(await (await conn.execute(S["list_schedules"])).fetchall())


async def list_workflow_types(db: Database, *, stale_seconds: float = 60.0) -> list[WorkflowType]:
    """Workflow types some live worker can run: [{name, workers, cron}]."""
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["workflow_types"], {"stale": stale_seconds})).fetchall()
        crons = {r["workflow"]: r["cron"] for r in await (await conn.execute(S["list_schedules"])).fetchall()}
    return [WorkflowType(name=r["name"], workers=r["workers"], cron=crons.get(r["name"])) for r in rows]


async def live_workers(db: Database, *, stale_seconds: float = 60.0) -> list[dict[str, Any]]:
    """Worker processes alive now (heartbeat within `stale_seconds`): id, host, pid, how many workflow
    types they run, concurrency, when they started and last beat."""
    async with db.connection() as conn:
        return [dict(r) for r in await (await conn.execute(Q["live_workers"], {"stale": stale_seconds})).fetchall()]


async def health(db: Database, *, stale_seconds: float) -> dict[str, int]:
    """`{migration, workers_alive}`: the applied schema version and the workers that heartbeat within
    `stale_seconds` (for /health).

    Raises:
        Unavailable: the database cannot be reached.
    """
    async with db.connection() as conn:
        row = await (await conn.execute(Q["health"], {"stale": stale_seconds})).fetchone()
    return {"migration": int(row["migration"]), "workers_alive": int(row["workers_alive"])} if row else {}


async def publish_workflow_tools(db: Database, tools: list[WorkflowTool]) -> None:
    """Publish (or refresh) workflow types as MCP tools: a worker does this for the types it runs."""
    async with db.connection() as conn:
        for tool in tools:
            await conn.execute(Q["publish_workflow_tool"], {
                "name": tool.name, "description": tool.description, "input_schema": dumps(tool.input_schema),
                "output_schema": dumps_or_none(tool.output_schema), "wrapped": tool.wrapped, "roles": tool.roles,
            })


async def workflow_tools(db: Database, *, stale_seconds: float = 60.0) -> list[WorkflowTool]:
    """The workflow types published as tools that some live worker runs now."""
    async with db.connection() as conn:
        return WorkflowTool.all(await (await conn.execute(Q["workflow_tools"], {"stale": stale_seconds})).fetchall())

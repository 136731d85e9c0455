"""LongTail: the application object (registry + database + workers) a program builds once."""

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from longtail_mcp.config import Settings, load_settings
from longtail_mcp.db.embedded import EmbeddedPostgres
from longtail_mcp.db.migrate import migrate
from longtail_mcp.db.pool import Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Conflict, InvalidInput, NotFound
from longtail_mcp.runtime.codec import dumps, iso
from longtail_mcp.runtime.handle import Handle
from longtail_mcp.runtime.registry import Registry, RetryPolicy, StepSpec
from longtail_mcp.runtime.worker import Worker

logger = logging.getLogger(__name__)
Q = load("runtime")
F = TypeVar("F", bound=Callable[..., Any])
LIVE = ("pending", "running", "waiting")


class LongTail:
    """Registry of workflows and steps, bound to one database.

    `async with LongTail() as app:` opens the pool (starting the embedded Postgres when no
    DATABASE_URL is set) and applies migrations; `app.run_worker()` executes runs.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        serve_mcp: bool = True,
        **overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(database_url=database_url, **overrides)
        self.serve_mcp = serve_mcp
        self.registry = Registry()
        self._db: Database | None = None
        self.embedded: EmbeddedPostgres | None = None

    # -- definitions -----------------------------------------------------------------------------

    def workflow(self, name: str | None = None, **options: Any) -> Callable[[F], F]:
        """Register `async def fn(ctx, input)` as a workflow type (by default named after the function)."""

        def register(fn: F) -> F:
            self.registry.add_workflow(fn, name or fn.__name__, **options)
            return fn

        return register

    def step(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        retries: int = 3,
        backoff: float = 10.0,
        max_interval: float = 120.0,
        non_retryable: tuple[type[BaseException], ...] = (),
    ) -> Any:
        """Give a function a retry policy for `ctx.run(fn, ...)`; the function stays callable as before."""

        def mark(f: F) -> F:
            policy = RetryPolicy(retries=retries, backoff=backoff, max_interval=max_interval, non_retryable=non_retryable)
            f.__longtail_step__ = StepSpec(fn=f, name=name or f.__qualname__, retry=policy)  # type: ignore[attr-defined]
            return f

        return mark(fn) if fn is not None else mark

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the app is not open: use `async with app:` or `await app.open()`")
        return self._db

    async def open(self, *, apply_migrations: bool = True, attach: bool = False) -> "LongTail":
        """Connect (starting the embedded Postgres if no DATABASE_URL) and migrate.

        With `attach`, an embedded server already running for the same home is shared.
        """
        if self._db is not None:
            return self
        dsn = self.settings.database_url
        if dsn is None:
            self.embedded = EmbeddedPostgres.for_settings(self.settings)
            dsn = self.embedded.start(attach=attach)
        db = Database(dsn, schema=self.settings.schema_name)
        try:
            await db.open()
            if apply_migrations:
                await migrate(db)
        except BaseException:
            await db.close()
            if self.embedded:
                self.embedded.stop()
            raise
        self._db = db
        return self

    async def close(self) -> None:
        if self._db is not None:
            with anyio.CancelScope(shield=True):
                await self._db.close()
            self._db = None
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None

    async def __aenter__(self) -> "LongTail":
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def worker(self, **options: Any) -> Worker:
        """A worker for this app's workflows (options: concurrency, lease_seconds, poll_seconds, ...)."""
        options.setdefault("concurrency", self.settings.concurrency)
        options.setdefault("lease_seconds", self.settings.lease_seconds)
        options.setdefault("poll_seconds", self.settings.poll_seconds)
        return Worker(self.db, self.registry, **options)

    async def run_worker(self, **options: Any) -> None:
        """Run a worker until cancelled."""
        await self.worker(**options).run()

    # -- runs ------------------------------------------------------------------------------------

    async def start(self, name: str, input: Any = None, *, workflow_id: str | None = None) -> Handle:
        """Start a run. The workflow id is the idempotency key: starting it again returns the first run.

        Raises:
            NotFound: no workflow type of that name is registered in this app.
            InvalidInput: the input is not JSON, or the id is empty or too long.
        """
        self.registry.get(name)
        return await start_run(self.db, name, input, workflow_id=workflow_id)

    def handle(self, workflow_id: str) -> Handle:
        return Handle(self.db, workflow_id)

    async def signal(self, workflow_id: str, name: str, payload: Any = None) -> None:
        """Deliver a signal; buffered until the run waits for it.

        Raises:
            NotFound: no such run.  Conflict: the run already ended.
        """
        await send_signal(self.db, workflow_id, name, payload)

    async def cancel(self, workflow_id: str, reason: str | None = None) -> list[str]:
        """Cancel a live run and its live children; returns the ids cancelled."""
        return await cancel_run(self.db, workflow_id, reason)

    async def get_run(self, workflow_id: str) -> dict[str, Any]:
        return await Handle(self.db, workflow_id).info()

    async def list_runs(self, *, status: str | None = None, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return await list_runs(self.db, status=status, name=name, limit=limit)

    async def export(self, workflow_id: str) -> dict[str, Any]:
        return await Handle(self.db, workflow_id).export()


# Service functions shared by the app, the CLI and (later) the MCP tools and the Python client.

def _check_id(workflow_id: str) -> None:
    if not workflow_id or len(workflow_id) > 200 or not workflow_id.isprintable():
        raise InvalidInput("workflow_id must be 1-200 printable characters")


async def start_run(db: Database, name: str, input: Any = None, *, workflow_id: str | None = None) -> Handle:
    import uuid

    wid = workflow_id if workflow_id is not None else f"{name}-{uuid.uuid4().hex}"
    _check_id(wid)
    encoded = dumps(input, what="workflow input")
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["start_workflow"], {
            "id": wid, "name": name, "input": encoded, "parent_id": None, "parent_seq": None,
        })).fetchone()
        if row is not None:
            await conn.execute("SELECT pg_notify(%s, '')", [db.wake_channel])
    return Handle(db, wid, created=row is not None)


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
        await conn.execute("SELECT pg_notify(%s, '')", [db.wake_channel])


async def cancel_run(db: Database, workflow_id: str, reason: str | None = None) -> list[str]:
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
        await conn.execute("SELECT pg_notify(%(c)s, x) FROM unnest(%(ids)s::text[]) AS x", {"c": db.done_channel, "ids": ids})
        await conn.execute("SELECT pg_notify(%s, '')", [db.wake_channel])
    return ids


async def list_runs(db: Database, *, status: str | None = None, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    if status is not None and status not in (*LIVE, "completed", "failed", "cancelled"):
        raise InvalidInput(f"unknown status {status!r}")
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["list_workflows"], {"status": status, "name": name, "limit": limit})).fetchall()
    return [iso(r) for r in rows]

"""Client: start, signal, query and export runs, act as people, follow events: the Python API of a host
application. It is also the composition root's object the servers and tools are handed (`Services`)."""

from contextlib import AsyncExitStack
from typing import Any

import anyio

from longtail_mcp.agents.llm import LLM, Provider
from longtail_mcp.app import wiring
from longtail_mcp.config import Settings, load_settings
from longtail_mcp.db import keeper
from longtail_mcp.db.embedded import EmbeddedPostgres
from longtail_mcp.db.migrate import migrate
from longtail_mcp.db.pool import Database
from longtail_mcp.events import EventBus
from longtail_mcp.humans.identity import Principal, authenticate, get_principal
from longtail_mcp.humans.queue import HumanQueue
from longtail_mcp.humans.runs import Runs
from longtail_mcp.runtime import service
from longtail_mcp.runtime.handle import Handle
from longtail_mcp.runtime.models import FoundRun, Run, RunExport, RunSummary, Schedule
from longtail_mcp.runtime.ports import Extensions
from longtail_mcp.tools.catalog import Catalog
from longtail_mcp.tools.invoker import FamilyInvoker
from longtail_mcp.tools.sessions import RemoteSessions
from longtail_mcp.tools.spec import ToolSpec


class Client:
    """The Python API a host application uses. It needs no worker: runs execute wherever workers run.

    `async with Client() as lt:` connects (to DATABASE_URL, else to the home's shared embedded server,
    started if none runs: db/keeper.py), applies migrations, and dispatches `lt.events.on(...)` handlers
    (registered before entering: from the first event; registered later: from a moment later).
    """

    attach_embedded: bool | str = True  # "only": attach to a running embedded server, never start one

    def __init__(self, database_url: str | None = None, *, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or load_settings(database_url=database_url, **overrides)
        self._db: Database | None = None
        self.embedded: EmbeddedPostgres | None = None
        self.events = EventBus(lambda: self.db)
        # Sessions to registered MCP servers, held while `async with` lasts (`serve` and `worker` run
        # them in their own task groups); without that, each call connects for itself.
        self.remote_sessions = RemoteSessions(idle_seconds=self.settings.remote_idle_seconds)
        self._extensions: Extensions | None = None
        self._llm: LLM | None = None
        self._stack: AsyncExitStack | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("not open: use `async with` or `await .open()`")
        return self._db

    @property
    def extensions(self) -> Extensions:
        """What this app plugs into the runtime kernel (tools, human waits, certified runs, ...)."""
        if self._extensions is None:
            self._extensions = wiring.extensions(self, self.db)
        return self._extensions

    def served_workflows(self) -> list[str]:
        """Workflow types this process runs itself (none: a Client only starts and watches runs)."""
        return []

    def family_tool(self, server: str, tool: str) -> ToolSpec | None:
        """One of the family's own tools (the servers are imported on first use)."""
        invoker = self.extensions.tools
        return invoker.find(server, tool) if isinstance(invoker, FamilyInvoker) else None

    def llm(self) -> LLM:
        """The model agents and routers use (settings `llm_*`; built on first use).

        Raises:
            ConfigurationError: no model is configured (the message says what to set).
        """
        if self._llm is None:
            self._llm = Provider.from_settings(self.settings).build()
        return self._llm

    async def tool_catalog(self) -> Catalog:
        """Every tool a run can call now: the family's and registered servers'."""
        invoker = self.extensions.tools
        names = invoker.names() if isinstance(invoker, FamilyInvoker) else []
        return await Catalog.load(self.db, self.family_tool, names)

    async def open(self, *, apply_migrations: bool = True, attach: bool | str | None = None) -> "Client":
        """Connect (starting or sharing the embedded Postgres if no DATABASE_URL) and migrate."""
        if self._db is not None:
            return self
        dsn = self.settings.database_url
        if dsn is None:
            # The home's one embedded Postgres, shared by every process and stopped by its keeper once idle
            # (db/keeper.py): never stopped by us, so no order of starting and stopping strands anyone.
            self.embedded = EmbeddedPostgres.for_settings(self.settings)
            mode = self.attach_embedded if attach is None else attach
            dsn = await anyio.to_thread.run_sync(lambda: keeper.attach(self.settings, start=mode != "only"))
        db = Database(dsn, schema=self.settings.schema_name, max_size=self.settings.pool_size)
        try:
            await db.open()
            if apply_migrations:
                await migrate(db)
        except BaseException:
            await db.close()
            raise
        self._db = db
        return self

    async def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            with anyio.CancelScope(shield=True):
                await llm.aclose()
        if self._db is not None:
            with anyio.CancelScope(shield=True):
                await self._db.close()
            self._db = None
            self._extensions = None

    async def __aenter__(self) -> Any:
        await self.open()
        stack = AsyncExitStack()
        try:
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            stack.callback(setattr, self.events, "spawn", None)
            self.events.spawn = lambda: tg.start_soon(self.events.run)
            await tg.start(self.remote_sessions.run)  # cancelled on exit: every session closes
            if self.events.has_handlers:  # dispatch only when someone listens (it reads every event)
                await tg.start(self.events.run)
        except BaseException:
            await stack.aclose()
            await self.close()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                await stack.aclose()
        finally:
            await self.close()

    # -- runs ------------------------------------------------------------------------------------

    async def start(self, name: str, input: Any = None, *, workflow_id: str | None = None,
                    principal: Principal | None = None) -> Handle:
        """Start a run of workflow type `name`. The id is the idempotency key: a second start by the same
        principal returns the first run.

        Raises:
            InvalidInput: the input is not JSON, or the id is empty or too long.
            Conflict: the id is taken by another principal's run (or a run of another type).
        """
        wid, created = await service.start_run(self.db, name, input, workflow_id=workflow_id, principal=principal)
        return self.handle(wid, created=created)

    def handle(self, workflow_id: str, *, created: bool = True) -> Handle:
        return Handle(self.db, workflow_id, created=created, on_cancel=self.extensions.on_cancel)

    async def hook(self, workflow_id: str, name: str, args: Any = None, *, hook_id: str | None = None,
                   principal: Principal | None = None) -> Handle:
        """Start workflow type `name` on live run `workflow_id`, concurrently, sharing its entity state.

        The hook acts for `principal` (default: the principal of the run it is started on)."""
        return self.handle(await service.start_hook(self.db, workflow_id, name, args, hook_id=hook_id,
                                                    principal=principal))

    async def signal(self, workflow_id: str, name: str, payload: Any = None) -> None:
        """Deliver a signal; buffered until the run waits for it.

        Raises:
            NotFound: no such run.  Conflict: the run already ended.
        """
        await service.send_signal(self.db, workflow_id, name, payload)

    async def cancel(self, workflow_id: str, reason: str | None = None) -> list[str]:
        """Cancel a live run with its live children and hooks (and the escalations they wait on);
        returns the ids cancelled."""
        return await service.cancel_run(self.db, workflow_id, reason, listeners=self.extensions.on_cancel)

    async def get_run(self, workflow_id: str) -> Run:
        return await service.get_run(self.db, workflow_id)

    async def list_runs(self, *, status: str | None = None, name: str | None = None, limit: int = 50,
                        offset: int = 0) -> list[RunSummary]:
        return await service.list_runs(self.db, status=status, name=name, limit=limit, offset=offset)

    async def find_runs(
        self, *, state: dict[str, Any] | None = None, path: str | None = None, status: str | None = None,
        name: str | None = None, limit: int = 50,
    ) -> list[FoundRun]:
        """Search runs by entity state: containment (`state={...}`) and jsonpath predicates
        (`path='$.total ? (@ > 10)'`)."""
        return await service.find_runs(self.db, state=state, path=path, status=status, name=name, limit=limit)

    async def export(self, workflow_id: str) -> RunExport:
        return await service.export_run(self.db, workflow_id)

    # -- people ----------------------------------------------------------------------------------

    async def principal(self, account_id: str) -> Principal:
        """The Principal of an account (its current role memberships), to act as it."""
        return await get_principal(self.db, account_id)

    async def authenticate(self, api_key: str) -> Principal:
        """The Principal an API key stands for (raises Unauthenticated)."""
        return await authenticate(self.db, api_key)

    def runs(self, actor: Principal) -> Runs:
        """The runs `actor` may see and act on (the one visibility rule, see humans/runs.py)."""
        return Runs(self.db, actor, on_cancel=self.extensions.on_cancel)

    def humans(self, actor: Principal) -> HumanQueue:
        """The human queue as `actor` sees it (RBAC enforced on every call)."""
        return HumanQueue(self.db, actor, allow_self_approval=self.settings.allow_self_approval)

    # -- schedules -------------------------------------------------------------------------------

    async def schedule(self, name: str, cron: str, input: Any = None, *, workflow: str | None = None) -> Schedule:
        """Start workflow type `workflow` (default: `name`) on a cron schedule, once per tick across all workers."""
        return await service.upsert_schedule(self.db, name, cron, input, workflow=workflow)

    async def unschedule(self, name: str) -> None:
        await service.delete_schedule(self.db, name)

    async def list_schedules(self) -> list[Schedule]:
        return await service.list_schedules(self.db)


"""Runs as a principal sees them: the one visibility rule, applied by every door.

A run is visible to the account that started it, to members and admins of the roles it asked (its
escalations' roles), and to superadmins; signal and cancel need the same relation and a full-scope
key. To anyone else a run does not exist: every function here answers NotFound, never Forbidden,
so ids do not leak. The MCP tools, the CLI (`--as`), `Client.runs(principal)` and the web view all
call these functions; trusted Python code that passes no principal sees everything.
"""

from __future__ import annotations

import builtins  # `Runs.list` shadows `list` in the annotations of its class
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from longtail_mcp.db.pool import Conn, Database
from longtail_mcp.errors import InvalidInput, NotFound, Unauthenticated
from longtail_mcp.events import Event
from longtail_mcp.humans.identity import SYSTEM, Principal, require_use, require_write
from longtail_mcp.humans.waits import cancel_listener
from longtail_mcp.runtime import service
from longtail_mcp.runtime.codec import dumps
from longtail_mcp.runtime.context import Context
from longtail_mcp.runtime.handle import Handle
from longtail_mcp.runtime.models import Run, RunExport, RunSummary, Step
from longtail_mcp.runtime.ports import CancelListener
from longtail_mcp.runtime.registry import WorkflowSpec
from longtail_mcp.runtime.service import Visibility


def visibility(actor: Principal | None) -> Visibility:
    """The filter for `actor`: None (everything) for trusted code and superadmins, else (account, roles)."""
    if actor is None or actor.superadmin:
        return None
    return actor.id, sorted(actor.roles)


async def require_visible(db: Database, actor: Principal | None, workflow_id: str) -> None:
    """Raises NotFound unless `actor` may see run `workflow_id`."""
    await service.require_visible(db, workflow_id, visibility(actor))


async def is_visible(db: Database, actor: Principal | None, workflow_id: str) -> bool:
    try:
        await require_visible(db, actor, workflow_id)
    except NotFound:
        return False
    return True


async def start_run(db: Database, actor: Principal, name: str, input: Any = None, *,
                    workflow_id: str | None = None, then: Callable[[Conn], Awaitable[None]] | None = None,
                    reads_only: bool = False) -> tuple[str, bool]:
    """Start a run acting for `actor` (its principal is recorded on the run). An id someone else
    started is a Conflict, not their run. `then` is written in the run's transaction (service.start_run).
    `reads_only`: the run only reads (a read-only pipeline), so a read-scope key may start it; every tool it
    calls still acts with that key's scope.

    Raises:
        Forbidden: a read-only key (unless `reads_only`).  Conflict: the id is taken by another account's run.
        InvalidInput: an id of the form the runtime gives child runs and cron ticks (`check_caller_id`).
    """
    if not reads_only:
        require_write(actor)
    if workflow_id is not None and actor is not SYSTEM:  # only the local operator's own code names runs freely
        service.check_caller_id(workflow_id)
    return await service.start_run(db, name, input, workflow_id=workflow_id, principal=actor, then=then)


async def get_run(db: Database, actor: Principal | None, workflow_id: str) -> Run:
    await require_visible(db, actor, workflow_id)
    return await service.get_run(db, workflow_id)


async def list_runs(db: Database, actor: Principal | None, *, status: str | None = None, name: str | None = None,
                    limit: int = 50, offset: int = 0) -> list[RunSummary]:
    return await service.list_runs(db, status=status, name=name, limit=limit, offset=offset,
                                   visible_to=visibility(actor))


async def related_runs(db: Database, actor: Principal | None, parent: str, ids: list[str]) -> list[RunSummary]:
    """The runs of `ids` and the hooks on `parent` that `actor` may see (see service.related_runs)."""
    return await service.related_runs(db, parent, ids, visible_to=visibility(actor))


async def export_run(db: Database, actor: Principal | None, workflow_id: str) -> RunExport:
    await require_visible(db, actor, workflow_id)
    return await service.export_run(db, workflow_id)


EXPORT_PAGE_BYTES = 512 * 1024  # a page of a run's history stops adding journal entries past this much JSON


async def export_page(db: Database, actor: Principal | None, workflow_id: str, *, offset: int = 0,
                      budget: int = EXPORT_PAGE_BYTES) -> tuple[RunExport, int | None, int]:
    """A run's history a page at a time, for answers that must stay readable (an MCP client takes about
    1 MiB): the run, the journal entries from `offset` until their JSON passes `budget` (at least one),
    and the signals on the first page only. Returns (the page, the offset of the next page or None, how
    many journal entries there are)."""
    if offset < 0:
        raise InvalidInput("offset must not be negative")
    whole = await export_run(db, actor, workflow_id)
    steps: list[Step] = []
    size = len(dumps(whole.run.to_json()))
    for step in whole.steps[offset:]:
        size += len(dumps(step.to_json()))
        if steps and size > budget:
            break
        steps.append(step)
    end = offset + len(steps)
    page = RunExport(run=whole.run, steps=steps, signals=whole.signals if offset == 0 else [])
    return page, end if end < len(whole.steps) else None, len(whole.steps)


async def signal_run(db: Database, actor: Principal | None, workflow_id: str, name: str, payload: Any = None) -> None:
    """Raises: Forbidden (read-only key), NotFound (absent or not visible), Conflict (the run ended)."""
    if actor is not None:
        require_write(actor)
    await require_visible(db, actor, workflow_id)
    await service.send_signal(db, workflow_id, name, payload)


async def cancel_run(db: Database, actor: Principal | None, workflow_id: str, reason: str | None = None, *,
                     listeners: Sequence[CancelListener] | None = None) -> list[str]:
    """Cancel a visible run with its live children and hooks, and close the escalations they wait on
    (`listeners`: the app's cancel listeners; by default the human queue's).

    Raises: Forbidden (read-only key), NotFound (absent or not visible), Conflict (already ended).
    """
    if actor is not None:
        require_write(actor)
    await require_visible(db, actor, workflow_id)
    return await service.cancel_run(db, workflow_id, reason,
                                    listeners=[cancel_listener(db)] if listeners is None else listeners)


async def handle(db: Database, actor: Principal | None, workflow_id: str) -> Handle:
    """A handle to a run `actor` may see (to wait for its result).

    Raises:
        NotFound: absent or not visible.
    """
    await require_visible(db, actor, workflow_id)
    return Handle(db, workflow_id, on_cancel=[cancel_listener(db)])


class Runs:
    """`client.runs(principal)`: the runs API with every call checked against that principal."""

    def __init__(self, db: Database, actor: Principal, *, on_cancel: Sequence[CancelListener] | None = None) -> None:
        self.db = db
        self.actor = actor
        self.on_cancel = on_cancel

    async def start(self, name: str, input: Any = None, *, workflow_id: str | None = None) -> Handle:
        wid, created = await start_run(self.db, self.actor, name, input, workflow_id=workflow_id)
        return Handle(self.db, wid, created=created, on_cancel=[cancel_listener(self.db)])

    async def get(self, workflow_id: str) -> Run:
        return await get_run(self.db, self.actor, workflow_id)

    async def list(self, *, status: str | None = None, name: str | None = None, limit: int = 50,
                   offset: int = 0) -> list[RunSummary]:
        return await list_runs(self.db, self.actor, status=status, name=name, limit=limit, offset=offset)

    async def export(self, workflow_id: str) -> RunExport:
        return await export_run(self.db, self.actor, workflow_id)

    async def related(self, parent: str, ids: builtins.list[str]) -> builtins.list[RunSummary]:
        return await related_runs(self.db, self.actor, parent, ids)

    async def signal(self, workflow_id: str, name: str, payload: Any = None) -> None:
        await signal_run(self.db, self.actor, workflow_id, name, payload)

    async def cancel(self, workflow_id: str, reason: str | None = None) -> builtins.list[str]:
        return await cancel_run(self.db, self.actor, workflow_id, reason, listeners=self.on_cancel)

    async def handle(self, workflow_id: str) -> Handle:
        return await handle(self.db, self.actor, workflow_id)


class EventAudience:
    """Which events one subscriber (an /events client) may receive: those about what it may see.

    Superadmins and trusted code get every event. Anyone else gets run and step events of the runs
    visible to them (one query per run, remembered), escalation events of their roles' escalations
    (and of runs visible to them), and file and pipeline events (every key may use those tools).
    """

    REMEMBER = 4096  # runs whose visibility is remembered per subscriber

    def __init__(self, db: Database, actor: Principal | None, *,
                 recheck: Callable[[], Awaitable[Principal]] | None = None, every: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`recheck`, if given, says who the subscriber is now (its key or session looked up again) and
        raises Unauthenticated once that ended. It is asked before the first event is judged and then at
        most every `every` seconds, so a revoked key, a signed-out session or a lost role changes what a
        long-lived stream receives from then on, not only at its next connection."""
        self.db = db
        self.actor = actor
        self._runs: dict[str, bool] = {}
        self._recheck = recheck
        self._every = every
        self._clock = clock
        self._next_check = clock()  # the first event is judged by who the subscriber is then

    async def sees(self, event: Event) -> bool:
        """Whether this subscriber may receive `event`.

        Raises:
            Unauthenticated: (with `recheck`) the subscriber's key or session has ended: end the stream.
        """
        await self._refresh()
        actor = self.actor
        if actor is None or actor.superadmin:
            return True
        family = event.type.partition(".")[0]
        if family == "escalation":
            if event.name is not None and actor.member_of(event.name):
                if event.workflow_id:  # a run asked one of my roles: it is visible to me from now on
                    self._remember(event.workflow_id, True)
                return True
            return await self._run_visible(event.workflow_id)
        if family in ("run", "step"):
            return await self._run_visible(event.workflow_id)
        return family in ("file", "pipeline")

    async def _run_visible(self, workflow_id: str | None) -> bool:
        if not workflow_id:
            return False
        known = self._runs.get(workflow_id)
        if known is None:
            known = await is_visible(self.db, self.actor, workflow_id)
            self._remember(workflow_id, known)
        return known

    async def _refresh(self) -> None:
        if self._recheck is None or self._clock() < self._next_check:
            return
        try:
            actor = await self._recheck()
        except NotFound as exc:  # the account is gone
            raise Unauthenticated(exc.message) from None
        self._next_check = self._clock() + self._every
        if actor != self.actor:  # roles or scope changed: what it may see is decided again
            self.actor = actor
            self._runs.clear()

    def _remember(self, workflow_id: str, visible: bool) -> None:
        if len(self._runs) >= self.REMEMBER:
            self._runs.pop(next(iter(self._runs)))
        self._runs[workflow_id] = visible


class RolesInterceptor:
    """Who may run a workflow type published with `roles=`: checked when its run starts executing, against
    the principal the run acts for (recorded when it was started), so every door that starts a run —
    its MCP tool, `start_workflow`, the Python API, the CLI — is held to the same rule."""

    def applies(self, spec: WorkflowSpec) -> bool:
        return bool(spec.options.get("roles"))

    async def run(self, ctx: Context, spec: WorkflowSpec, body: Callable[[], Awaitable[Any]]) -> Any:
        principal = ctx.principal if isinstance(ctx.principal, Principal) else None
        if principal is not None:  # no principal: trusted Python code started it
            require_use(principal, list(spec.options.get("roles") or []), False, f"run workflow {spec.name!r}")
        return await body()

"""Handles: a caller's view of one run (status, result, state, export, signal, cancel)."""

from collections.abc import Sequence
from typing import Any

import anyio

from longtail_mcp.db.pool import Database
from longtail_mcp.errors import Unavailable, WorkflowFailed
from longtail_mcp.events import EventBus
from longtail_mcp.runtime import service
from longtail_mcp.runtime.journal import TERMINAL
from longtail_mcp.runtime.models import Run, RunExport
from longtail_mcp.runtime.ports import CancelListener
from longtail_mcp.runtime.state import split_path


class Handle:
    """A run by id. `created` is False when a start found the id already taken (the first run wins)."""

    def __init__(self, db: Database, workflow_id: str, *, created: bool = True,
                 on_cancel: Sequence[CancelListener] = ()) -> None:
        self.db = db
        self.workflow_id = workflow_id
        self.created = created
        self._on_cancel = on_cancel  # the composition root's Extensions.on_cancel

    def __repr__(self) -> str:
        return f"Handle({self.workflow_id!r})"

    async def info(self) -> Run:
        """The run's row (status, input, result, error, state, timestamps).

        Raises:
            NotFound: no run has this id.
        """
        return await service.get_run(self.db, self.workflow_id)

    async def status(self) -> str:
        return str((await self.info())["status"])

    async def state(self, path: str | list[str] | None = None) -> Any:
        """The run's entity state, or the value at `path` ("a.b" or ["a", "b"])."""
        return await service.get_state(self.db, self.workflow_id, split_path(path))

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - public API, a fail_after inside
        """Wait for the run to end and return its result.

        Raises:
            WorkflowFailed: it failed or was cancelled.  TimeoutError: still running after `timeout` s.
        """
        async def read() -> Run:
            while True:
                try:
                    return await self.info()
                except Unavailable:  # Postgres restarting: the caller's deadline, not the outage, ends the wait
                    await anyio.sleep(0.5)

        with anyio.fail_after(timeout):
            info = await read()  # an ended run costs this one pooled query and no subscription
            while info["status"] not in TERMINAL:
                try:
                    async with EventBus(lambda: self.db).subscribe(
                        ["run.completed", "run.failed", "run.cancelled"], self.workflow_id
                    ) as events:
                        info = await read()  # it may have ended before the subscription was in place
                        while info["status"] not in TERMINAL:
                            # An end event, or a gap in the feed (a reconnection): either way re-read the row,
                            # and at least every 2 s, which covers a notification missed any other way.
                            with anyio.move_on_after(2.0):
                                await events.next_or_gap()
                            info = await read()
                except Unavailable:  # the feed could not connect just now; it keeps trying by itself
                    await anyio.sleep(0.5)
                    info = await read()
        if info["status"] != "completed":
            error = info["error"] or {}
            raise WorkflowFailed(
                f"run {self.workflow_id!r} {info['status']}: {error.get('message', '')}",
                workflow_id=self.workflow_id, status=info["status"], error=error,
            )
        return info["result"]

    async def export(self) -> RunExport:
        """The full history: the run, every journal entry (with timings), every signal."""
        return await service.export_run(self.db, self.workflow_id)

    async def signal(self, name: str, payload: Any = None) -> None:
        await service.send_signal(self.db, self.workflow_id, name, payload)

    async def cancel(self, reason: str | None = None) -> list[str]:
        return await service.cancel_run(self.db, self.workflow_id, reason, listeners=self._on_cancel)

"""Handles: a caller's view of one run (status, result, export, signal, cancel)."""

from typing import Any

import anyio
from psycopg import sql

from longtail_mcp.db.pool import Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import NotFound, WorkflowFailed
from longtail_mcp.runtime.codec import iso

Q = load("runtime")
TERMINAL = ("completed", "failed", "cancelled")


class Handle:
    """A run by id. `created` is False when a start found the id already taken (the first run wins)."""

    def __init__(self, db: Database, workflow_id: str, *, created: bool = True) -> None:
        self.db = db
        self.workflow_id = workflow_id
        self.created = created

    def __repr__(self) -> str:
        return f"Handle({self.workflow_id!r})"

    async def info(self) -> dict[str, Any]:
        """The run's row (status, input, result, error, timestamps).

        Raises:
            NotFound: no run has this id.
        """
        async with self.db.connection() as conn:
            row = await (await conn.execute(Q["get_workflow"], {"id": self.workflow_id})).fetchone()
        if row is None:
            raise NotFound(f"no run with id {self.workflow_id!r}")
        return iso(row)  # type: ignore[no-any-return]

    async def status(self) -> str:
        return str((await self.info())["status"])

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the run to end and return its result.

        Raises:
            WorkflowFailed: it failed or was cancelled.  TimeoutError: still running after `timeout` s.
        """
        conn = await self.db.connect()
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.db.done_channel)))
            with anyio.fail_after(timeout):
                while True:
                    info = await self.info()
                    if info["status"] in TERMINAL:
                        break
                    with anyio.move_on_after(1.0):  # polling backs up a missed notification
                        async for note in conn.notifies():
                            if note.payload == self.workflow_id:
                                break
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()
        if info["status"] != "completed":
            error = info["error"] or {}
            raise WorkflowFailed(
                f"run {self.workflow_id!r} {info['status']}: {error.get('message', '')}",
                workflow_id=self.workflow_id, status=info["status"], error=error,
            )
        return info["result"]

    async def export(self) -> dict[str, Any]:
        """The full history: the run, every journal entry (with timings), every signal."""
        run = await self.info()
        async with self.db.connection() as conn:
            steps = await (await conn.execute(Q["export_steps"], {"id": self.workflow_id})).fetchall()
            messages = await (await conn.execute(Q["export_messages"], {"id": self.workflow_id})).fetchall()
        return {"run": run, "steps": iso(steps), "signals": iso(messages)}

    async def signal(self, name: str, payload: Any = None) -> None:
        from longtail_mcp.runtime.app import send_signal

        await send_signal(self.db, self.workflow_id, name, payload)

    async def cancel(self, reason: str | None = None) -> list[str]:
        from longtail_mcp.runtime.app import cancel_run

        return await cancel_run(self.db, self.workflow_id, reason)

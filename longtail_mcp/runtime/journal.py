"""The journal writer: group commit of checkpoints and run transitions, fenced by lease epoch.

Executors hand it writes and wait; a few flusher tasks each take everything pending and commit
it in one transaction. With many runs in flight one commit carries many checkpoints; with one
run waiting its write is flushed at once. Every write carries the lease epoch its run was
claimed with: a write whose epoch is no longer current (the lease expired and another worker
took the run, or the run was cancelled) is refused and its run stops here with `LeaseLost`.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

import anyio

from longtail_mcp.db.pool import Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Conflict
from longtail_mcp.runtime.codec import dumps

logger = logging.getLogger(__name__)
Q = load("runtime")
TERMINAL = ("completed", "failed", "cancelled")


class Interrupted(BaseException):
    """The run stops on this worker without recording anything more; a later claim resumes it."""


class LeaseLost(Interrupted):
    """This worker no longer owns the run (its lease expired and another took it, or it was cancelled)."""


@dataclass
class StepWrite:
    workflow_id: str
    epoch: int
    seq: int
    kind: str
    name: str
    status: str
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 1
    wake_at: float | None = None
    started_at: float | None = None
    key: str | None = None  # a keyed entry (see ReplayCursor.keyed_seq), else None


@dataclass
class Finish:
    workflow_id: str
    epoch: int
    status: str  # completed | failed | waiting
    wake_seq: int  # the value seen at claim: a later wake makes a waiting run due at once
    result: Any = None
    error: dict[str, Any] | None = None
    due_at: float | None = None
    waiting_for: str | None = None
    parent_id: str | None = None
    name: str | None = None


@dataclass
class _Pending:
    op: StepWrite | Finish
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class JournalWriter:
    """Group-commits journal writes for one worker process."""

    def __init__(self, db: Database, worker_id: str, *, max_batch: int = 512) -> None:
        self.db = db
        self.worker_id = worker_id
        self.max_batch = max_batch
        self._pending: list[_Pending] = []
        self._ready = anyio.Event()
        self.batches = 0
        self.writes = 0

    async def write(self, op: StepWrite | Finish) -> None:
        """Commit one write (with whatever else is pending).

        Raises:
            LeaseLost: the run's epoch moved on; nothing was written for it.
        """
        item = _Pending(op)
        self._pending.append(item)
        self._ready.set()
        await item.done.wait()
        if isinstance(item.error, Interrupted):
            raise item.error
        if item.error is not None:  # the database failed: abandon the run here, its lease brings it back
            raise Interrupted(f"journal write failed: {item.error}") from item.error

    async def run(self, flushers: int = 2) -> None:
        """Flush until cancelled."""
        async with anyio.create_task_group() as tg:
            for _ in range(flushers):
                tg.start_soon(self._flusher)

    async def _flusher(self) -> None:
        while True:
            while not self._pending:
                if self._ready.is_set():
                    self._ready = anyio.Event()
                await self._ready.wait()
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            with anyio.CancelScope(shield=True):
                await self._flush_with_retry(batch)

    async def _flush_with_retry(self, batch: list[_Pending]) -> None:
        for attempt in range(5):
            try:
                await self._flush(batch)
                return
            except Conflict:  # deadlock or serialization failure: the whole batch rolled back
                await anyio.sleep(0.01 * (attempt + 1))
            except Exception as exc:
                logger.exception("journal flush failed")
                for item in batch:
                    item.error = exc
                    item.done.set()
                return
        for item in batch:
            item.error = Conflict("journal write kept conflicting; the run will be retried")
            item.done.set()

    async def _flush(self, batch: list[_Pending]) -> None:
        ops = [item.op for item in batch]
        parents = {op.parent_id for op in ops if isinstance(op, Finish) and op.parent_id and op.status in TERMINAL}
        ids = sorted({op.workflow_id for op in ops} | parents)
        lost: set[int] = set()
        async with self.db.transaction() as conn:
            rows = await (await conn.execute(Q["lock_for_batch"], {"ids": ids})).fetchall()
            current = {r["id"]: r for r in rows}
            accepted: list[StepWrite | Finish] = []
            for i, op in enumerate(ops):
                row = current.get(op.workflow_id)
                if row is None or row["lease_epoch"] != op.epoch:
                    lost.add(i)
                else:
                    accepted.append(op)
            steps = [op for op in accepted if isinstance(op, StepWrite)]
            finishes = [op for op in accepted if isinstance(op, Finish)]
            wake_now = bool(parents)
            finish_rows = []
            for f in finishes:
                due = f.due_at
                if f.status == "waiting" and current[f.workflow_id]["wake_seq"] != f.wake_seq:
                    due, wake_now = 0.0, True  # woken while it ran: due at once
                finish_rows.append({
                    "id": f.workflow_id, "status": f.status, "result": f.result if f.status == "completed" else None,
                    "error": f.error, "due_at": due, "waiting_for": f.waiting_for,
                })
            async with conn.pipeline():  # the writes go out together: one round trip, then COMMIT
                if steps:
                    await conn.execute(Q["write_steps"], step_params(steps, self.worker_id, self.db.events_channel))
                if finish_rows:
                    await conn.execute(Q["finish_workflows"], {
                        "rows": dumps(finish_rows), "channel": self.db.events_channel,
                    })
                if parents:
                    await conn.execute(Q["wake_workflows"], {"ids": sorted(parents)})
                if wake_now:
                    await self.db.wake(conn)
        self.batches += 1
        self.writes += len(batch)
        for i, item in enumerate(batch):
            if i in lost:
                item.error = LeaseLost(item.op.workflow_id)
            item.done.set()


def step_params(steps: list[StepWrite], worker_id: str, channel: str) -> dict[str, Any]:
    """Parameters of `write_steps`: the rows as one JSON document (one encode, one parameter)."""
    rows = [
        {
            "workflow_id": s.workflow_id, "seq": s.seq, "kind": s.kind, "name": s.name, "status": s.status,
            "input": s.input, "output": s.output, "error": s.error, "attempts": s.attempts,
            "wake_at": s.wake_at, "epoch": s.epoch, "started_at": s.started_at, "key": s.key,
        }
        for s in steps
    ]
    return {"rows": dumps(rows, what="journal batch"), "worker": worker_id, "channel": channel}

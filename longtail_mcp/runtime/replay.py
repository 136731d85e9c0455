"""The replay cursor: a run's journal, the sequence numbers its operations take, and how they are recorded.

Every `ctx` operation takes the next sequence number when it is *called*, looks it up in the journal
(a recorded outcome is returned without doing the work; an entry of another kind or name is a
divergence), and records new outcomes through the worker's group-commit journal writer, or through
a short side transaction when it must read and change other rows atomically with its entry.
"""

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from longtail_mcp.db.pool import Conn
from longtail_mcp.db.queries import load
from longtail_mcp.errors import (
    Forbidden,
    InvalidInput,
    LongtailError,
    NonDeterminism,
    NotFound,
    StepFailed,
    WorkflowFailed,
    error_from_json,
)
from longtail_mcp.runtime.codec import roundtrip
from longtail_mcp.runtime.journal import Interrupted, LeaseLost, StepWrite, step_params

if TYPE_CHECKING:
    from longtail_mcp.runtime.worker import Worker

Q = load("runtime")
T = TypeVar("T")
SHORT_WAIT = 1.0  # waits up to this long stay in the worker; longer ones release it (the run becomes a row)
KEYED_BASE = 1_000_000_000  # keyed entries take seqs from here up, apart from those program order allocates


class Suspend(BaseException):
    """Unwinds a workflow body that must wait; workflow code cannot catch it with `except Exception`."""

    def __init__(self, until: float | None, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


@dataclass(frozen=True)
class StepInfo:
    """What a running step may know about itself (see `current_step()`)."""

    workflow_id: str
    seq: int
    name: str
    attempt: int
    principal: Any = None  # who the run acts for (humans.identity.Principal), or None
    key: str | None = None  # a keyed step's key (a pipeline step: `id` or `id:item`)

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and replays: pass it to the outside world to deduplicate effects.
        `<workflow id>:<seq>`, or `<workflow id>:<key>` for a keyed step (a pipeline's `run:step[:item]`)."""
        return f"{self.workflow_id}:{self.key if self.key is not None else self.seq}"


current_step_var: contextvars.ContextVar[StepInfo | None] = contextvars.ContextVar("longtail_step", default=None)


def current_step() -> StepInfo:
    """Inside a step function: its workflow id, sequence number, attempt and idempotency key."""
    info = current_step_var.get()
    if info is None:
        raise RuntimeError("current_step() is only available inside a step run by ctx.run()")
    return info


@dataclass
class Record:
    seq: int
    kind: str
    name: str
    status: str
    input: Any
    output: Any
    error: dict[str, Any] | None
    attempts: int
    wake_at: float | None
    key: str | None = None


def seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def step_failed(name: str, error: dict[str, Any]) -> StepFailed:
    return StepFailed(
        f"step {name!r} failed: {error.get('type', 'Error')}: {error.get('message', '')}",
        step=name, error=error, retryable=bool(error.get("retryable")),
    )


def child_failed(child_id: str, error: dict[str, Any]) -> WorkflowFailed:
    status = "cancelled" if error.get("code") == "cancelled" else "failed"
    return WorkflowFailed(f"child run {child_id!r} {status}: {error.get('message', '')}",
                          workflow_id=child_id, status=status, error=error)


def recorded_error(error: dict[str, Any]) -> LongtailError:
    """The error a replay raises again for a wait the journal recorded as failed (its stored form)."""
    return error_from_json(error)


def jsonable_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return roundtrip({"args": list(args), "kwargs": kwargs})
    except InvalidInput:
        return {"repr": repr((args, kwargs))[:2000]}


class ReplayCursor:
    """The journal side of a `Context`: sequence numbers, lookups, writes, side transactions."""

    def __init__(self, worker: "Worker", *, workflow_id: str, epoch: int, journal: dict[int, Record],
                 entity_id: str | None = None) -> None:
        self._worker = worker
        self.workflow_id = workflow_id
        self._epoch = epoch
        self._journal = journal
        self._seq = 0
        self.replaying = bool(journal)
        self.diverged: NonDeterminism | None = None  # sticky: workflow code catching it cannot hide it
        self.entity_id = entity_id or workflow_id  # a hook shares the state of the run it was started on
        self._seq_of: dict[str, int] = {r.key: r.seq for r in journal.values() if r.key is not None}
        self._key_of: dict[int, str] = {seq: key for key, seq in self._seq_of.items()}
        self._keyed_used: set[str] = set()

    def next_seq(self) -> int:
        """Take the next sequence number (extensions call this when their operation is *called*)."""
        self._seq += 1
        return self._seq

    def keyed_seq(self, key: str) -> int:
        """The sequence number of the operation named `key` in this run: the one it had if the journal has
        it, else a new one from the keyed range. Operations that start in an order only timing decides (a
        pipeline's ready steps, the items of a loop) replay onto their own entries whatever the order."""
        self._keyed_used.add(key)
        seq = self._seq_of.get(key)
        if seq is None:
            seq = max([KEYED_BASE, *self._key_of]) + 1
            self._seq_of[key], self._key_of[seq] = seq, key
        return seq

    def followup_seq(self, seq: int, suffix: str) -> int:
        """The sequence number of an operation that follows the one at `seq` (an approval after a refusal):
        keyed after it when that one is keyed, else the next in program order."""
        key = self._key_of.get(seq)
        return self.keyed_seq(f"{key}:{suffix}") if key is not None else self.next_seq()

    def key_of(self, seq: int) -> str | None:
        return self._key_of.get(seq)

    def recorded(self, seq: int, kind: str, name: str) -> Record | None:
        """The journal entry at `seq`, if any.

        Raises:
            NonDeterminism: the entry is of another kind or name (the code changed under the run).
        """
        rec = self._journal.get(seq)
        if rec is None:
            return None
        if rec.kind != kind or rec.name != name:
            self.diverged = NonDeterminism(
                f"replay of run {self.workflow_id!r} diverged at step {seq}: the journal recorded "
                f"{rec.kind} {rec.name!r} but the workflow code now asks for {kind} {name!r}; "
                "workflow code must call the same steps in the same order (version the workflow instead)"
            )
            raise self.diverged
        return rec

    def unreplayed(self) -> Record | None:
        """A journal entry the code no longer reaches: beyond the last one in program order, or keyed and
        never asked for."""
        extra = [seq for seq in self._journal if self._seq < seq < KEYED_BASE]
        extra += [seq for seq, rec in self._journal.items() if rec.key is not None and rec.key not in self._keyed_used]
        return self._journal[min(extra)] if extra else None

    async def write(self, seq: int, kind: str, name: str, status: str, **fields: Any) -> None:
        """Record an outcome at `seq` (group-committed with other runs' writes)."""
        await self._worker.journal.write(StepWrite(self.workflow_id, self._epoch, seq, kind, name, status,
                                                   key=self._key_of.get(seq), **fields))
        self.remember(seq, kind, name, status, **fields)

    def remember(self, seq: int, kind: str, name: str, status: str, **fields: Any) -> None:
        """Note an entry written by a side transaction (see `record_on`) in the in-memory journal."""
        self._journal[seq] = Record(
            seq, kind, name, status, fields.get("input"), fields.get("output"), fields.get("error"),
            fields.get("attempts", 1), fields.get("wake_at"), self._key_of.get(seq),
        )

    async def record_on(self, conn: Conn, seq: int, kind: str, name: str, status: str, **fields: Any) -> None:
        """Write a journal entry on a side transaction's connection (atomically with what it changes)."""
        await conn.execute(Q["write_steps"], step_params([StepWrite(
            self.workflow_id, self._epoch, seq, kind, name, status, key=self._key_of.get(seq), **fields,
        )], self._worker.worker_id, self._worker.db.events_channel))

    async def side_transaction(self, work: Callable[[Conn, int], Awaitable[T]]) -> T:
        """Run `work(conn, wake_seq)` in a transaction holding this run's row (fenced by epoch) and
        its entity's, locked in id order like the journal's batches (so the two never deadlock).

        Raises:
            InvalidInput, NotFound, Forbidden: `work` refused (e.g. a state type clash, an unknown role).
        """
        ids = sorted({self.workflow_id, self.entity_id})
        try:
            async with self._worker.db.transaction() as conn:
                rows = await (await conn.execute(Q["lock_for_batch"], {"ids": ids})).fetchall()
                mine = next((r for r in rows if r["id"] == self.workflow_id), None)
                if mine is None or mine["lease_epoch"] != self._epoch:
                    raise LeaseLost(self.workflow_id)
                return await work(conn, mine["wake_seq"])
        except (InvalidInput, NotFound, Forbidden):
            raise
        except Exception as exc:  # the database failed: abandon the run here, its lease brings it back
            raise Interrupted(f"{self.workflow_id}: {exc}") from exc

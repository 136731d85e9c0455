"""A worker process's loop: claim due runs, execute them by replay, keep their leases."""

import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from pydantic import BaseModel, ValidationError

from longtail_mcp.db.pool import Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import InvalidInput, NonDeterminism, error_to_json
from longtail_mcp.events import Event, emit
from longtail_mcp.events.feed import feed_of
from longtail_mcp.runtime import service
from longtail_mcp.runtime.codec import dumps_or_none, roundtrip
from longtail_mcp.runtime.context import Context, Record, Suspend
from longtail_mcp.runtime.journal import Finish, Interrupted, JournalWriter, LeaseLost
from longtail_mcp.runtime.ports import Extensions
from longtail_mcp.runtime.registry import Registry, WorkflowSpec

logger = logging.getLogger(__name__)
Q = load("runtime")
S = load("schedules")


class Worker:
    """Executes the registry's workflows. Any number of workers, on any hosts, may share one database."""

    def __init__(
        self,
        db: Database,
        registry: Registry,
        *,
        concurrency: int = 200,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        claim_batch: int = 64,
        flushers: int = 2,
        listen: bool = True,
        worker_id: str | None = None,
        extensions: Extensions | None = None,
    ) -> None:
        self.db = db
        self.extensions = extensions or Extensions()  # tools, external waits, interceptors, periodic tasks
        self.registry = registry
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.claim_batch = claim_batch
        self.flushers = flushers
        self.listen = listen  # False: rely on polling alone (it stays correct, only slower)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.journal = JournalWriter(db, self.worker_id)
        self.running: dict[str, anyio.CancelScope] = {}
        self._wake = anyio.Event()
        self.executed = 0
        self.alive = False

    async def run(self, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        """Work until cancelled; on the way out hand running runs back for others to take at once."""
        names = self.registry.names()
        async with self.db.connection() as conn:
            await conn.execute(Q["register_worker"], {
                "id": self.worker_id, "host": socket.gethostname(), "pid": os.getpid(),
                "workflows": names, "concurrency": self.concurrency,
            })
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.journal.run, self.flushers)
                if self.listen:
                    await tg.start(self._listen)
                tg.start_soon(self._heartbeat)
                for name, task in self.extensions.periodic:
                    await self._periodic_once(name, task)  # e.g. which types are certified, before any claim
                    tg.start_soon(self._periodic, name, task)
                tg.start_soon(self._claim_loop, tg, names)
                await self._register_crons()
                await self._publish_tools()
                tg.start_soon(self._schedule_loop, names)
                self.alive = True
                task_status.started(self)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                async with self.db.connection() as conn:
                    await conn.execute(Q["release_leases"], {"worker": self.worker_id})
                    await conn.execute(Q["stop_worker"], {"id": self.worker_id})
                    await self.db.wake(conn)
            self.alive = False

    def wake(self) -> None:
        self._wake.set()

    # -- loops -----------------------------------------------------------------------------------

    async def _listen(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Wake the claim loop on every NOTIFY of the wake channel, heard through the process's one event
        feed (no connection of our own). A lost listener only costs latency: polling stays correct."""
        started = False
        while True:
            try:
                async with feed_of(self.db).wakes(self.wake):
                    if not started:
                        started = True
                        task_status.started()
                    await anyio.sleep_forever()
            except Exception as exc:
                logger.warning("worker listener reconnecting: %s", exc)
                if not started:
                    started = True
                    task_status.started()
                await anyio.sleep(self.poll_seconds)

    async def _heartbeat(self) -> None:
        interval = min(self.lease_seconds / 3, 5.0)
        while True:
            await anyio.sleep(interval)
            try:
                async with self.db.connection() as conn:
                    await conn.execute(Q["heartbeat_worker"], {"id": self.worker_id})
                    ids = list(self.running)
                    if not ids:
                        continue
                    rows = await (await conn.execute(Q["renew_leases"], {
                        "worker": self.worker_id, "ids": ids, "lease": self.lease_seconds,
                    })).fetchall()
                kept = {r["id"] for r in rows}
                for wid in ids:
                    if wid not in kept and wid in self.running:
                        logger.info("run %s was taken over or cancelled; stopping it here", wid)
                        self.running[wid].cancel()
            except Exception as exc:
                logger.warning("heartbeat failed: %s", exc)

    async def _claim_loop(self, tg: anyio.abc.TaskGroup, names: list[str]) -> None:
        while True:
            free = self.concurrency - len(self.running)
            if free > 0 and names:
                limit = min(free, self.claim_batch)
                try:
                    async with self.db.connection() as conn:
                        rows = await (await conn.execute(Q["claim_workflows"], {
                            "names": names, "limit": limit, "worker": self.worker_id, "lease": self.lease_seconds,
                        })).fetchall()
                except Exception as exc:
                    logger.warning("claim failed: %s", exc)
                    rows = []
                for row in rows:
                    scope = self.running[row["id"]] = anyio.CancelScope()
                    tg.start_soon(self._execute, row, scope)
                if len(rows) == limit:
                    continue
            with anyio.move_on_after(self.poll_seconds):
                await self._wake.wait()
            if self._wake.is_set():
                self._wake = anyio.Event()

    async def _register_crons(self) -> None:
        for spec in self.registry.workflows.values():
            if spec.options.get("cron"):
                await service.upsert_schedule(self.db, spec.name, spec.options["cron"], workflow=spec.name,
                                              declared=True)

    async def _publish_tools(self) -> None:
        tools = [t for spec in self.registry.workflows.values() if (t := spec.tool()) is not None]
        if tools:
            await service.publish_workflow_tools(self.db, tools)

    async def _schedule_loop(self, names: list[str]) -> None:
        """Fire due cron ticks. The row lock (SKIP LOCKED) and the tick-derived run id make each tick start
        exactly one run across every worker; after downtime a schedule fires once, for its latest missed tick."""
        while True:
            wait = self.poll_seconds
            try:
                async with self.db.transaction() as conn:
                    due = await (await conn.execute(S["due_schedules"], {"workflows": names})).fetchall()
                    for row in due:
                        await self._fire(conn, row)
                    if due:
                        await self.db.wake(conn)
                    nxt = await (await conn.execute(S["next_schedule_in"], {"workflows": names})).fetchone()
                if nxt and nxt["seconds"] is not None:
                    wait = max(0.0, min(wait, float(nxt["seconds"])))
            except Exception as exc:
                logger.warning("scheduler: %s", exc)
            await anyio.sleep(wait)

    async def _periodic_once(self, name: str, task: Any) -> None:
        try:
            await task()
        except Exception as exc:
            logger.warning("%s: %s", name, exc)

    async def _periodic(self, name: str, task: Any) -> None:
        """A task plugged in by a layer above (escalation deadlines, ...), every poll interval."""
        while True:
            await anyio.sleep(self.poll_seconds)
            await self._periodic_once(name, task)

    async def _fire(self, conn: Any, row: dict[str, Any]) -> None:
        now: datetime = row["now"]
        tick = service.cron_iter(row["cron"], now + timedelta(microseconds=1)).get_prev(datetime)
        tick = max(tick, row["next_at"])
        run_id = f"{row['name']}@{tick.astimezone(UTC).isoformat()}"
        created = await (await conn.execute(Q["start_workflow"], {
            "id": run_id, "name": row["workflow"], "input": dumps_or_none(row["input"]),
            "parent_id": None, "parent_seq": None, "principal": None,
        })).fetchone()
        if created:
            await emit(conn, self.db, [
                Event("run.started", workflow_id=run_id, name=row["workflow"], status="pending")])
        await conn.execute(S["advance_schedule"], {
            "name": row["name"], "tick": tick, "run_id": run_id,
            "next_at": service.cron_iter(row["cron"], now).get_next(datetime),
        })

    # -- one run ---------------------------------------------------------------------------------

    async def _execute(self, claim: dict[str, Any], scope: anyio.CancelScope) -> None:
        wid = claim["id"]
        try:
            with scope:
                await self._replay(claim)
        except LeaseLost:
            logger.info("run %s: lease lost, another worker owns it now", wid)
        except Interrupted as exc:
            logger.warning("run %s interrupted (%s); it resumes after its lease expires", wid, exc)
        except Exception:
            logger.exception("run %s: could not record its outcome; it will be retried after its lease", wid)
        finally:
            # The run may already be claimed again (woken the moment its finish committed): only
            # forget this execution, never the next one.
            if self.running.get(wid) is scope:
                del self.running[wid]
            self.executed += 1
            self._wake.set()

    async def _replay(self, claim: dict[str, Any]) -> None:
        wid, epoch = claim["id"], claim["lease_epoch"]
        journal: dict[int, Record] = {}
        if claim["claims"] > 1:
            async with self.db.connection() as conn:
                rows = await (await conn.execute(Q["load_journal"], {"id": wid})).fetchall()
            journal = {
                r["seq"]: Record(r["seq"], r["kind"], r["name"], r["status"], r["input"], r["output"], r["error"],
                                 r["attempts"], r["wake_at"].timestamp() if r["wake_at"] else None, r["key"])
                for r in rows
            }
        spec = self.registry.get(claim["name"])
        entity = claim["parent_id"] if claim["kind"] == "hook" else wid
        ctx = Context(self, workflow_id=wid, name=claim["name"], input=claim["input"], epoch=epoch, journal=journal,
                      entity_id=entity, principal=claim["principal"])
        finish = Finish(wid, epoch, "failed", claim["wake_seq"], parent_id=claim["parent_id"], name=claim["name"])
        try:
            value = await self._body(ctx, spec, claim["input"])()
            extra = ctx.unreplayed()
            if extra is not None:
                raise NonDeterminism(
                    f"replay of run {wid!r} finished but its journal has step {extra.seq} ({extra.kind} "
                    f"{extra.name!r}) that the workflow code no longer reaches"
                )
            if isinstance(value, BaseModel):  # a typed result is stored as its JSON
                value = value.model_dump(mode="json")
            finish.result = roundtrip(value, what=f"the result of workflow {claim['name']!r}")
            finish.status = "completed"
        except Suspend as s:
            finish.status, finish.due_at, finish.waiting_for = "waiting", s.until, s.reason
        except Exception as exc:
            logger.info("run %s failed: %s", wid, exc)
            finish.error = error_to_json(exc)
        if ctx.diverged is not None:  # even if the workflow caught it, or went on to wait
            finish.status, finish.error, finish.due_at, finish.waiting_for = (
                "failed", error_to_json(ctx.diverged), None, None)
        await self.journal.write(finish)

    def _body(self, ctx: Context, spec: WorkflowSpec, input: Any) -> Any:
        """The workflow body as a call, wrapped by every interceptor that applies to its type."""

        def call() -> Any:
            return spec.fn(ctx, _as_model(spec, input)) if spec.takes_input else spec.fn(ctx)

        body = call
        for interceptor in reversed(self.extensions.interceptors):
            if interceptor.applies(spec):
                body = _wrapped(interceptor, ctx, spec, body)
        return body


def _as_model(spec: WorkflowSpec, input: Any) -> Any:
    """The run's input as the body's annotation asks: a pydantic model, validated, or the JSON as is."""
    if spec.input_model is None:
        return input
    try:
        return spec.input_model.model_validate(input)
    except ValidationError as exc:
        raise InvalidInput(f"the input of workflow {spec.name!r} does not match {spec.input_model.__name__}: "
                           f"{exc.errors()[0]['msg'] if exc.errors() else exc}") from None


def _wrapped(interceptor: Any, ctx: Context, spec: WorkflowSpec, inner: Any) -> Any:
    def call() -> Any:
        return interceptor.run(ctx, spec, inner)

    return call

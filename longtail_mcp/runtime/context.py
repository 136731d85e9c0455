"""The workflow context: every operation a workflow body performs, checkpointed and replayable."""

import contextvars
import random as _random
import time
import uuid as _uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from longtail_mcp.db.queries import load
from longtail_mcp.errors import (
    Conflict,
    EscalationClosed,
    Forbidden,
    InvalidInput,
    NonDeterminism,
    NonRetryableError,
    NotFound,
    PolicyDenied,
    StepFailed,
    WaitTimeout,
    WorkflowFailed,
    error_to_json,
)
from longtail_mcp.events import Event, emit
from longtail_mcp.runtime.codec import dumps, roundtrip
from longtail_mcp.runtime.journal import Interrupted, LeaseLost, StepWrite, step_params
from longtail_mcp.runtime.registry import StepSpec, step_spec
from longtail_mcp.runtime.state import State

if TYPE_CHECKING:
    from longtail_mcp.runtime.worker import Worker

Q = load("runtime")
E = load("escalations")
T = TypeVar("T")
SHORT_WAIT = 1.0  # waits up to this long stay in the worker; longer ones release it (the run becomes a row)


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

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and replays: pass it to the outside world to deduplicate effects."""
        return f"{self.workflow_id}:{self.seq}"


_current_step: contextvars.ContextVar[StepInfo | None] = contextvars.ContextVar("longtail_step", default=None)


def current_step() -> StepInfo:
    """Inside a step function: its workflow id, sequence number, attempt and idempotency key."""
    info = _current_step.get()
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


def _seconds(value: timedelta | float | int | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Context:
    """Passed to every workflow body as its first argument.

    Each method allocates the next sequence number when it is *called* (not when awaited), so
    `ctx.gather(ctx.run(a), ctx.run(b))` numbers a and b in argument order on every replay.
    """

    def __init__(
        self,
        worker: "Worker",
        *,
        workflow_id: str,
        name: str,
        input: Any,
        epoch: int,
        journal: dict[int, Record],
        entity_id: str | None = None,
        principal: Any = None,
    ) -> None:
        self._worker = worker
        self.workflow_id = workflow_id
        self.name = name
        self.input = input
        self._epoch = epoch
        self._journal = journal
        self._seq = 0
        self.replaying = bool(journal)
        self.diverged: NonDeterminism | None = None  # sticky: workflow code catching it cannot hide it
        self.entity_id = entity_id or workflow_id  # a hook shares the state of the run it was started on
        self.principal = principal  # who started the run (humans.identity.Principal), or None
        self.resolver: Any = None  # certified workflows: the payload of the resolution that re-ran them
        self.state = State(self)

    # -- journal plumbing ----------------------------------------------------------------------

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _recorded(self, seq: int, kind: str, name: str) -> Record | None:
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
        """A journal entry beyond the last one the code reached (the code no longer calls it)."""
        extra = [seq for seq in self._journal if seq > self._seq]
        return self._journal[min(extra)] if extra else None

    async def _write(self, seq: int, kind: str, name: str, status: str, **fields: Any) -> None:
        await self._worker.journal.write(
            StepWrite(self.workflow_id, self._epoch, seq, kind, name, status, **fields)
        )
        self._journal[seq] = Record(
            seq, kind, name, status, fields.get("input"), fields.get("output"), fields.get("error"),
            fields.get("attempts", 1), fields.get("wake_at"),
        )

    async def _side_transaction(self, work: Callable[[Any, int], Awaitable[T]]) -> T:
        """Run `work(conn, wake_seq)` in a transaction holding this run's row (fenced by epoch) and
        its entity's, locked in id order like the journal's batches (so the two never deadlock).

        Raises:
            InvalidInput: `work` was refused by the database for its data (e.g. a state type clash).
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

    # -- steps ---------------------------------------------------------------------------------

    def run(self, fn: Callable[..., Any] | StepSpec, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        """Run `fn(*args, **kwargs)` as a checkpointed step with retries; returns its (JSON) result.

        Raises:
            StepFailed: the step used up its attempts or failed non-retryably.
        """
        spec = fn if isinstance(fn, StepSpec) else step_spec(fn)
        return self._run_step(self._next(), spec, args, kwargs)

    def call_tool(self, qualified: str, args: dict[str, Any] | None = None, *, retries: int = 3,
                  backoff: float = 10.0, max_interval: float = 120.0) -> Coroutine[Any, Any, Any]:
        """Call `server/tool` as a checkpointed step (kind `tool`): one of the family's own tools (in
        process, as the run's principal) or a registered MCP server's.

        A tool that answers with an error fails the step at once; an unreachable server is retried.
        A call of the family's own tools refused by a safety policy (files outside the root, an internal
        URL, a write statement) does not fail: the run asks the approver role for this exact call and
        waits durably; approved, the call is made once; rejected, it raises PolicyDenied.

        Raises:
            InvalidInput: bad arguments for a known tool.  StepFailed: the call failed.
            PolicyDenied: refused by policy and not approved.  WaitTimeout: the approval expired.
        """
        from functools import partial

        from longtail_mcp.humans.identity import SYSTEM
        from longtail_mcp.runtime.registry import RetryPolicy
        from longtail_mcp.tools import local
        from longtail_mcp.tools.registry import call_tool

        server, _, tool = qualified.partition("/")
        if not server or not tool:
            raise InvalidInput(f"call_tool takes 'server/tool', got {qualified!r}")
        if qualified == "human-queue/escalate_and_wait":  # inside a run this is a durable wait, not a poll
            return self._escalate_as_tool(args or {})
        builtin = local.find(server, tool)
        if builtin is not None:
            client = self._worker.client
            if client is None:
                raise InvalidInput(f"{qualified} is one of the family's own tools; its worker needs the app "
                                   "(LongTail.worker() passes it)")
            retry = RetryPolicy(retries=retries, backoff=backoff, max_interval=max_interval,
                                non_retryable=(Forbidden, NotFound, Conflict))  # answers, not outages
            spec = StepSpec(fn=partial(local.call, client, server, builtin, self.principal or SYSTEM),
                            name=qualified, retry=retry)
            return self._call_builtin(qualified, spec, builtin, args or {})
        spec = StepSpec(fn=partial(call_tool, self._worker.db, server, tool, principal=self.principal), name=qualified,
                        retry=RetryPolicy(retries=retries, backoff=backoff, max_interval=max_interval,
                                          non_retryable=(Forbidden, NotFound)))
        return self._run_step(self._next(), spec, (args or {},), {}, kind="tool")

    async def _call_builtin(self, qualified: str, step: StepSpec, tool: Any, args: dict[str, Any]) -> Any:
        from longtail_mcp.humans import approvals
        from longtail_mcp.humans.identity import SYSTEM
        from longtail_mcp.mcp_glue.server import Approvable, parse_args

        model = parse_args(tool, args)  # bad arguments fail here, before any step is journaled
        if not isinstance(model, Approvable) or model.approval_id is not None:
            return await self._run_step(self._next(), step, (args,), {}, kind="tool")
        call_args = approvals.canonical(model)
        try:
            return await self._run_step(self._next(), step, (call_args,), {}, kind="tool")
        except StepFailed as exc:
            if exc.error.get("code") != PolicyDenied.code:
                raise
            refusal = exc.error
        who = (self.principal or SYSTEM).id
        approval_id, decision = await self._escalate(self._next(), self._worker.client.settings.approver_role,
            approvals.message(qualified, who, refusal.get("message", "")), {
                "data": approvals.details(qualified, call_args, who=who, reason=refusal.get("message", ""),
                                          rule=refusal.get("rule", "")),
                "form_schema": approvals.APPROVAL_FORM, "type": "approval", "priority": 2,
                "action": (qualified, call_args),
                "metadata": {"tool": qualified, "rule": refusal.get("rule", ""), "workflow_id": self.workflow_id},
            })
        if decision.get("approved") is not True:
            why = f": {decision['reason']}" if decision.get("reason") else ""
            raise PolicyDenied(f"{qualified} was refused by policy ({refusal.get('message', '')}) and the approver "
                               f"declined{why}", rule=refusal.get("rule", "approval"))
        return await self._run_step(self._next(), step, ({**call_args, "approval_id": approval_id},), {}, kind="tool")

    async def _escalate_as_tool(self, args: dict[str, Any]) -> dict[str, Any]:
        """`human-queue/escalate_and_wait` called from a run: the run suspends until a person decides
        (no 50 s bound); the result has the tool's shape. An expiry raises WaitTimeout as ctx.escalate does."""
        known = {"role", "message", "data", "priority", "type", "form_schema", "timeout_seconds", "metadata",
                 "wait_seconds", "escalation_id"}
        unknown = set(args) - known
        if unknown or "role" not in args or "message" not in args:
            raise InvalidInput(f"escalate_and_wait needs role and message (unknown: {sorted(unknown)})")
        escalation_id, resolution = await self._escalate(self._next(), args["role"], args["message"], {
            "data": args.get("data"), "priority": args.get("priority", 3), "type": args.get("type", "review"),
            "form_schema": args.get("form_schema"), "timeout": args.get("timeout_seconds"),
            "metadata": args.get("metadata"), "assigned_to": None, "action": None,
        })
        return {"escalation_id": escalation_id, "status": "resolved", "resolution": resolution}

    async def _run_step(self, seq: int, spec: StepSpec, args: tuple[Any, ...], kwargs: dict[str, Any],
                        kind: str = "step") -> Any:
        rec = self._recorded(seq, kind, spec.name)
        attempt = 1
        if rec is not None:
            if rec.status == "completed":
                return rec.output
            if rec.status == "failed":
                raise _step_failed(spec.name, rec.error or {})
            attempt = rec.attempts + 1  # retrying: its backoff was recorded
            if rec.wake_at and rec.wake_at > time.time():
                raise Suspend(rec.wake_at, f"retry:{spec.name}")
        call_input = _jsonable_args(args, kwargs)
        policy = spec.retry
        while True:
            started = time.time()
            token = _current_step.set(StepInfo(self.workflow_id, seq, spec.name, attempt, self.principal))
            try:
                if spec.is_async:
                    result = await spec.fn(*args, **kwargs)
                else:
                    result = await anyio.to_thread.run_sync(lambda: spec.fn(*args, **kwargs))
                result = roundtrip(result, what=f"the result of step {spec.name!r}")
            except Exception as exc:
                error = error_to_json(exc)
                retryable = not isinstance(exc, (NonRetryableError, InvalidInput, *policy.non_retryable))
                error["retryable"] = retryable
                if retryable and attempt < policy.retries:
                    delay = policy.delay(attempt)
                    if delay <= SHORT_WAIT:
                        await anyio.sleep(delay)
                        attempt += 1
                        continue
                    wake = time.time() + delay
                    await self._write(seq, kind, spec.name, "retrying", input=call_input, error=error,
                                      attempts=attempt, wake_at=wake, started_at=started)
                    raise Suspend(wake, f"retry:{spec.name}") from None
                await self._write(seq, kind, spec.name, "failed", input=call_input, error=error,
                                  attempts=attempt, started_at=started)
                raise _step_failed(spec.name, error) from None
            finally:
                _current_step.reset(token)
            await self._write(seq, kind, spec.name, "completed", input=call_input, output=result,
                              attempts=attempt, started_at=started)
            return result

    async def gather(self, *awaitables: Awaitable[Any]) -> list[Any]:
        """Await several steps (or waits) concurrently; results in argument order.

        If a branch must wait, the others still finish and checkpoint before the run leaves the
        worker. The first branch (in argument order) that raised an error re-raises it.
        """
        results: list[Any] = [None] * len(awaitables)
        outcomes: list[BaseException | None] = [None] * len(awaitables)

        async def branch(i: int, aw: Awaitable[Any]) -> None:
            try:
                results[i] = await aw
            except (Suspend, Interrupted, Exception) as exc:
                outcomes[i] = exc

        async with anyio.create_task_group() as tg:
            for i, aw in enumerate(awaitables):
                tg.start_soon(branch, i, aw)
        interrupted = [e for e in outcomes if isinstance(e, Interrupted)]
        if interrupted:  # lease lost or database gone: the whole run stops here, not the worker
            raise interrupted[0]
        errors = [e for e in outcomes if isinstance(e, Exception)]
        if errors:
            raise errors[0]
        waits = [e for e in outcomes if isinstance(e, Suspend)]
        if waits:
            untils = [w.until for w in waits if w.until is not None]
            raise Suspend(min(untils) if len(untils) == len(waits) else None, waits[0].reason)
        return results

    # -- deterministic values --------------------------------------------------------------------

    def now(self) -> Coroutine[Any, Any, float]:
        """Wall-clock time (epoch seconds), recorded on first run and replayed after."""
        return self._value(self._next(), "now", time.time)

    def uuid(self) -> Coroutine[Any, Any, str]:
        """A random UUID string, recorded on first run and replayed after."""
        return self._value(self._next(), "uuid", lambda: str(_uuid.uuid4()))

    def random(self) -> Coroutine[Any, Any, float]:
        """A float in [0, 1), recorded on first run and replayed after."""
        return self._value(self._next(), "random", _random.random)

    async def _value(self, seq: int, kind: str, make: Callable[[], Any]) -> Any:
        rec = self._recorded(seq, kind, kind)
        if rec is not None:
            return rec.output
        value = make()
        await self._write(seq, kind, kind, "completed", output=value)
        return value

    # -- waits -----------------------------------------------------------------------------------

    def sleep(self, delay: timedelta | float) -> Coroutine[Any, Any, None]:
        """Durable timer: survives restarts; a long sleep releases the worker."""
        return self._sleep(self._next(), _seconds(delay) or 0.0)

    async def _sleep(self, seq: int, seconds: float) -> None:
        rec = self._recorded(seq, "sleep", "sleep")
        if rec is not None and rec.wake_at is not None:
            until = rec.wake_at
        else:
            until = time.time() + seconds
            await self._write(seq, "sleep", "sleep", "completed", input={"seconds": seconds}, wake_at=until)
        remaining = until - time.time()
        if remaining <= 0:
            return
        if remaining <= SHORT_WAIT:
            await anyio.sleep(remaining)
            return
        raise Suspend(until, "sleep")

    def wait_for_signal(self, name: str, *, timeout: timedelta | float | None = None) -> Coroutine[Any, Any, Any]:
        """Wait for `app.signal(workflow_id, name, payload)` and return the payload.

        Signals sent before the wait are buffered and consumed oldest first.

        Raises:
            WaitTimeout: no signal arrived within `timeout`.
        """
        return self._wait_for_signal(self._next(), name, _seconds(timeout))

    async def _wait_for_signal(self, seq: int, name: str, timeout: float | None) -> Any:
        rec = self._recorded(seq, "signal", name)
        if rec is not None and rec.status == "completed":
            return rec.output
        if rec is not None and rec.status == "failed":
            raise WaitTimeout(f"no signal {name!r} arrived before the deadline")
        deadline = rec.wake_at if rec is not None else (time.time() + timeout if timeout is not None else None)

        async def consume(conn: Any, _wake_seq: int) -> tuple[bool, Any]:
            got = await (await conn.execute(
                Q["consume_message"], {"id": self.workflow_id, "name": name, "seq": seq}
            )).fetchone()
            status = "completed" if got is not None else "waiting"
            if got is None and rec is not None:
                return False, None
            await conn.execute(Q["write_steps"], step_params([StepWrite(
                self.workflow_id, self._epoch, seq, "signal", name, status,
                output=None if got is None else got["payload"], wake_at=deadline,
            )], self._worker.worker_id, self._worker.db.events_channel))
            return got is not None, None if got is None else got["payload"]

        received, payload = await self._side_transaction(consume)
        if received:
            self._journal[seq] = Record(seq, "signal", name, "completed", None, payload, None, 1, deadline)
            return payload
        self._journal[seq] = Record(seq, "signal", name, "waiting", None, None, None, 1, deadline)
        if deadline is not None and time.time() >= deadline:
            error = WaitTimeout(f"no signal {name!r} arrived before the deadline")
            await self._write(seq, "signal", name, "failed", error=error.to_json(), wake_at=deadline)
            raise error
        raise Suspend(deadline, f"signal:{name}")

    def child(self, name: str, input: Any = None, *, workflow_id: str | None = None) -> Coroutine[Any, Any, Any]:
        """Start a child workflow (once) and wait for its result.

        Raises:
            WorkflowFailed: the child failed or was cancelled.
        """
        return self._child(self._next(), name, input, workflow_id)

    async def _child(self, seq: int, name: str, input: Any, workflow_id: str | None) -> Any:
        rec = self._recorded(seq, "child", name)
        if rec is not None and rec.status == "completed":
            return rec.output
        if rec is not None and rec.status == "failed":
            if (rec.error or {}).get("code") == InvalidInput.code:
                raise InvalidInput((rec.error or {}).get("message", "child could not start"))
            raise _child_failed(rec.input["workflow_id"], rec.error or {})
        if rec is None:
            child_id = workflow_id or f"{self.workflow_id}/{seq}"
            call_input = {"workflow_id": child_id, "input": roundtrip(input, what="child input")}

            async def start(conn: Any, _wake_seq: int) -> str | None:
                created = await (await conn.execute(Q["start_workflow"], {
                    "id": child_id, "name": name, "input": dumps(call_input["input"]),
                    "parent_id": self.workflow_id, "parent_seq": seq,
                    "principal": dumps(self.principal.to_json()) if self.principal else None,
                })).fetchone()
                if created is None:
                    row = await (await conn.execute(Q["get_workflow"], {"id": child_id})).fetchone()
                    if row["parent_id"] != self.workflow_id or row["parent_seq"] != seq:
                        return f"cannot start child {name!r} as {child_id!r}: that id belongs to another run"
                else:
                    await emit(conn, self._worker.db, [
                        Event("run.started", workflow_id=child_id, name=name, status="pending")])
                await conn.execute(Q["write_steps"], step_params([StepWrite(
                    self.workflow_id, self._epoch, seq, "child", name, "waiting", input=call_input,
                )], self._worker.worker_id, self._worker.db.events_channel))
                await conn.execute("SELECT pg_notify(%s, '')", [self._worker.db.wake_channel])
                return None

            refused = await self._side_transaction(start)
            if refused is not None:
                error = InvalidInput(refused)
                await self._write(seq, "child", name, "failed", input=call_input, error=error.to_json())
                raise error
            self._journal[seq] = Record(seq, "child", name, "waiting", call_input, None, None, 1, None)
        else:
            child_id = rec.input["workflow_id"]
            call_input = rec.input

        async def read(conn: Any, _wake_seq: int) -> Any:
            return await (await conn.execute(Q["get_workflow"], {"id": child_id})).fetchone()

        row = await self._side_transaction(read)
        if row is None:
            raise InvalidInput(f"child run {child_id!r} disappeared")
        if row["status"] == "completed":
            await self._write(seq, "child", name, "completed", input=call_input, output=row["result"])
            return row["result"]
        if row["status"] in ("failed", "cancelled"):
            error = row["error"] or {"code": row["status"], "message": f"child {child_id} {row['status']}"}
            await self._write(seq, "child", name, "failed", input=call_input, error=error)
            raise _child_failed(child_id, error)
        raise Suspend(None, "child")

    # -- entity state and hooks ------------------------------------------------------------------

    async def _state_op(self, seq: int, op: str, path: list[str], value: Any) -> Any:
        rec = self._recorded(seq, "state", op)
        if rec is not None:
            if rec.status == "failed":
                raise InvalidInput((rec.error or {}).get("message", f"state {op} failed"))
            return rec.output
        call_input = {"path": path, "value": roundtrip(value, what="the state value")}

        async def apply(conn: Any, _wake_seq: int) -> Any:
            if op == "get":
                row = await (await conn.execute(Q["get_state"], {"id": self.entity_id, "path": path})).fetchone()
            else:
                row = await (await conn.execute(Q["apply_state"], {
                    "id": self.entity_id, "op": op, "path": path, "value": dumps(call_input["value"]),
                })).fetchone()
            out = None if row is None else row["value"]
            await conn.execute(Q["write_steps"], step_params([StepWrite(
                self.workflow_id, self._epoch, seq, "state", op, "completed", input=call_input, output=out,
            )], self._worker.worker_id, self._worker.db.events_channel))
            return out

        try:
            out = await self._side_transaction(apply)
        except InvalidInput as exc:
            await self._write(seq, "state", op, "failed", input=call_input, error=exc.to_json())
            raise
        self._journal[seq] = Record(seq, "state", op, "completed", call_input, out, None, 1, None)
        return out

    def wait_for_hooks(self) -> Coroutine[Any, Any, list[dict[str, Any]]]:
        """Wait until every hook started on this run has ended; returns [{id, name, status, result}]."""
        return self._wait_for_hooks(self._next())

    async def _wait_for_hooks(self, seq: int) -> list[dict[str, Any]]:
        rec = self._recorded(seq, "hooks", "hooks")
        if rec is not None and rec.status == "completed":
            return rec.output  # type: ignore[no-any-return]

        async def read(conn: Any, _wake_seq: int) -> list[dict[str, Any]]:
            return await (await conn.execute(Q["list_hooks"], {"id": self.workflow_id})).fetchall()  # type: ignore[no-any-return]

        hooks = await self._side_transaction(read)
        if any(h["status"] in ("pending", "running", "waiting") for h in hooks):
            raise Suspend(None, "hooks")
        out = [{"id": h["id"], "name": h["name"], "status": h["status"], "result": h["result"]} for h in hooks]
        await self._write(seq, "hooks", "hooks", "completed", output=out)
        return out

    # -- humans ----------------------------------------------------------------------------------

    def escalate(
        self, role: str, message: str, data: dict[str, Any] | None = None, *,
        form_schema: dict[str, Any] | None = None, priority: int = 3, timeout: timedelta | float | None = None,
        assigned_to: str | None = None, type: str = "review", metadata: dict[str, Any] | None = None,
        action: tuple[str, dict[str, Any]] | None = None,
    ) -> Coroutine[Any, Any, dict[str, Any]]:
        """Ask `role` for a decision and wait for it durably; returns the resolution payload.

        The escalation row is written in the same transaction that records the wait.

        Raises:
            WaitTimeout: the escalation expired (past its deadline and its chain). Never an approval.
            EscalationClosed: it was cancelled.
        """
        options = {"data": data, "form_schema": form_schema, "priority": priority, "timeout": _seconds(timeout),
                   "assigned_to": assigned_to, "type": type, "metadata": metadata, "action": action}
        return self._decision(self._escalate(self._next(), role, message, options))

    @staticmethod
    async def _decision(opening: Coroutine[Any, Any, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        return (await opening)[1]

    async def _escalate(self, seq: int, role: str, message: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Open (once) and await the escalation at `seq`; returns (its id, the resolution)."""
        from longtail_mcp.humans.escalations import insert_escalation
        from longtail_mcp.humans.identity import SYSTEM

        rec = self._recorded(seq, "escalation", role)
        recorded_id = (rec.input or {}).get("escalation_id") if rec is not None else None
        escalation_id: str = recorded_id or f"{self.workflow_id}:{seq}"
        if rec is not None and rec.status == "completed":
            return escalation_id, rec.output  # type: ignore[return-value]
        if rec is not None and rec.status == "failed":
            raise _closed_error(rec.error or {})

        async def open_and_read(conn: Any, _wake_seq: int) -> tuple[str, dict[str, Any]]:
            opened = escalation_id
            if rec is None:
                for candidate in (escalation_id, f"{escalation_id}:{_uuid.uuid4().hex[:12]}"):
                    # Bound to this run and step: a row someone else made under the id is never read.
                    row = await insert_escalation(conn, self._worker.db, self.principal or SYSTEM,
                                                  escalation_id=candidate, role=role, message=message,
                                                  workflow_id=self.workflow_id, seq=seq, **options)
                    if row is not None:
                        opened = candidate
                        break
                await conn.execute(Q["write_steps"], step_params([StepWrite(
                    self.workflow_id, self._epoch, seq, "escalation", role, "waiting",
                    input={"escalation_id": opened},
                )], self._worker.worker_id, self._worker.db.events_channel))
            row = await (await conn.execute(E["escalation_outcome"], {"id": opened, "workflow_id": self.workflow_id,
                                                                      "seq": seq})).fetchone()
            return opened, row

        try:
            escalation_id, row = await self._side_transaction(open_and_read)
        except (InvalidInput, NotFound) as exc:
            await self._write(seq, "escalation", role, "failed", error=exc.to_json())
            raise
        ref = {"escalation_id": escalation_id}
        if row is None:
            raise InvalidInput(f"escalation {escalation_id} of run {self.workflow_id!r} disappeared")
        if row["status"] == "resolved":
            await self._write(seq, "escalation", role, "completed", input=ref, output=row["resolution"])
            return escalation_id, row["resolution"]
        if row["status"] in ("expired", "cancelled"):
            error = (WaitTimeout(f"escalation {escalation_id} to {role!r} expired without a decision")
                     if row["status"] == "expired" else EscalationClosed(f"escalation {escalation_id} was cancelled"))
            await self._write(seq, "escalation", role, "failed", input=ref, error=error.to_json())
            raise error
        raise Suspend(None, f"escalation:{escalation_id}")


def _step_failed(name: str, error: dict[str, Any]) -> StepFailed:
    return StepFailed(
        f"step {name!r} failed: {error.get('type', 'Error')}: {error.get('message', '')}",
        step=name, error=error, retryable=bool(error.get("retryable")),
    )


def _child_failed(child_id: str, error: dict[str, Any]) -> WorkflowFailed:
    status = "cancelled" if error.get("code") == "cancelled" else "failed"
    return WorkflowFailed(f"child run {child_id!r} {status}: {error.get('message', '')}",
                          workflow_id=child_id, status=status, error=error)


def _jsonable_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return roundtrip({"args": list(args), "kwargs": kwargs})
    except InvalidInput:
        return {"repr": repr((args, kwargs))[:2000]}


def _closed_error(error: dict[str, Any]) -> Exception:
    message = error.get("message", "escalation closed")
    if error.get("code") == WaitTimeout.code:
        return WaitTimeout(message)
    if error.get("code") == InvalidInput.code:
        return InvalidInput(message)
    if error.get("code") == NotFound.code:
        return NotFound(message)
    return EscalationClosed(message)

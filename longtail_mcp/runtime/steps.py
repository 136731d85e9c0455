"""Steps: checkpointed function calls with retries, tool calls, parallel branches, recorded values."""

import random as _random
import time
import uuid as _uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio

from longtail_mcp.errors import InvalidInput, NonRetryableError, error_to_json
from longtail_mcp.runtime.codec import roundtrip
from longtail_mcp.runtime.journal import Interrupted
from longtail_mcp.runtime.registry import RetryPolicy, StepSpec, step_spec
from longtail_mcp.runtime.replay import (
    SHORT_WAIT,
    ReplayCursor,
    StepInfo,
    Suspend,
    current_step_var,
    jsonable_args,
    step_failed,
)


class Steps(ReplayCursor):
    """The step operations of a `Context`."""

    principal: Any

    def run(self, fn: Callable[..., Any] | StepSpec, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        """Run `fn(*args, **kwargs)` as a checkpointed step with retries; returns its (JSON) result.

        Raises:
            StepFailed: the step used up its attempts or failed non-retryably.
        """
        spec = fn if isinstance(fn, StepSpec) else step_spec(fn)
        return self.run_step(self.next_seq(), spec, args, kwargs)

    def call_tool(self, qualified: str, args: dict[str, Any] | None = None, *, retries: int = 3,
                  backoff: float = 10.0, max_interval: float = 120.0,
                  key: str | None = None) -> Coroutine[Any, Any, Any]:
        """Call `server/tool` as a checkpointed step (kind `tool`): one of the family's own tools (in
        process, as the run's principal) or a registered MCP server's.

        A tool that answers with an error fails the step at once; an unreachable server is retried.
        A call of the family's own tools refused by a safety policy (files outside the root, an internal
        URL, a write statement) does not fail: the run asks the approver role for this exact call and
        waits durably; approved, the call is made once; rejected, it raises PolicyDenied.

        `key` names the call within the run (a keyed journal entry, see `keyed_seq`): calls started in an
        order only timing decides (a pipeline's ready steps) replay onto their own entries; the tool's
        idempotency key is then `<workflow id>:<key>`.

        Raises:
            InvalidInput: bad arguments for a known tool.  StepFailed: the call failed.
            PolicyDenied: refused by policy and not approved.  WaitTimeout: the approval expired.
        """
        server, _, tool = qualified.partition("/")
        if not server or not tool:
            raise InvalidInput(f"call_tool takes 'server/tool', got {qualified!r}")
        invoker = self._worker.extensions.tools
        if invoker is None:
            raise InvalidInput("this worker has no tools plugged in (build it with LongTail.worker())")
        retry = RetryPolicy(retries=retries, backoff=backoff, max_interval=max_interval)
        seq = self.keyed_seq(key) if key is not None else self.next_seq()
        return invoker.call(self, seq, qualified, dict(args or {}), retry)  # type: ignore[arg-type]

    async def run_step(self, seq: int, spec: StepSpec, args: tuple[Any, ...], kwargs: dict[str, Any],
                       kind: str = "step") -> Any:
        """Run (or replay) the step at `seq`: the one implementation of attempts, backoff and recording,
        shared by `ctx.run` and by extensions (a tool call is a step of kind `tool`)."""
        rec = self.recorded(seq, kind, spec.name)
        attempt = 1
        if rec is not None:
            if rec.status == "completed":
                return rec.output
            if rec.status == "failed":
                raise step_failed(spec.name, rec.error or {})
            attempt = rec.attempts + 1  # retrying: its backoff was recorded
            if rec.wake_at and rec.wake_at > time.time():
                raise Suspend(rec.wake_at, f"retry:{spec.name}")
        call_input = jsonable_args(args, kwargs)
        policy = spec.retry
        while True:
            started = time.time()
            token = current_step_var.set(StepInfo(self.workflow_id, seq, spec.name, attempt, self.principal,
                                                  self.key_of(seq)))
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
                    await self.write(seq, kind, spec.name, "retrying", input=call_input, error=error,
                                     attempts=attempt, wake_at=wake, started_at=started)
                    raise Suspend(wake, f"retry:{spec.name}") from None
                await self.write(seq, kind, spec.name, "failed", input=call_input, error=error,
                                 attempts=attempt, started_at=started)
                raise step_failed(spec.name, error) from None
            finally:
                current_step_var.reset(token)
            await self.write(seq, kind, spec.name, "completed", input=call_input, output=result,
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
        return self._value(self.next_seq(), "now", time.time)

    def uuid(self) -> Coroutine[Any, Any, str]:
        """A random UUID string, recorded on first run and replayed after."""
        return self._value(self.next_seq(), "uuid", lambda: str(_uuid.uuid4()))

    def random(self) -> Coroutine[Any, Any, float]:
        """A float in [0, 1), recorded on first run and replayed after."""
        return self._value(self.next_seq(), "random", _random.random)

    async def _value(self, seq: int, kind: str, make: Callable[[], Any]) -> Any:
        rec = self.recorded(seq, kind, kind)
        if rec is not None:
            return rec.output
        value = make()
        await self.write(seq, kind, kind, "completed", output=value)
        return value

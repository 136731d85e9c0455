"""Checkpointed steps: journal, replay, retries, idempotency keys."""

import pytest

from longtail_mcp import LongTail, NonRetryableError, StepFailed, WorkflowFailed, current_step
from longtail_mcp.runtime.registry import RetryPolicy
from tests.conftest import running
from tests.runtime.helpers import until, wait_status

pytestmark = pytest.mark.anyio


async def test_step_results_are_journaled_and_replayed_not_rerun(app: LongTail) -> None:
    calls: list[str] = []

    async def charge(order_id: str, cents: int) -> dict:
        calls.append(order_id)
        return {"receipt": f"r-{order_id}", "cents": cents}

    @app.workflow()
    async def order(ctx, order):
        receipt = await ctx.run(charge, order["id"], order["cents"])
        await ctx.wait_for_signal("shipped")  # the run leaves the worker; the wake replays from the top
        return receipt

    async with running(app):
        handle = await app.start("order", {"id": "o1", "cents": 500})
        await wait_status(handle, "waiting")
        await app.signal(handle.workflow_id, "shipped")
        assert await handle.result(timeout=10) == {"receipt": "r-o1", "cents": 500}
        history = await handle.export()
    assert calls == ["o1"], "the replay must return the recorded result, not run the step again"
    step = history["steps"][0]
    assert (step["seq"], step["kind"], step["name"], step["status"]) == (1, "step", charge.__qualname__, "completed")
    assert step["input"] == {"args": ["o1", 500], "kwargs": {}}
    assert step["output"] == {"receipt": "r-o1", "cents": 500}


async def test_failed_attempts_are_retried_with_backoff_until_success(app: LongTail) -> None:
    attempts: list[int] = []

    @app.step(retries=4, backoff=0.05)
    async def flaky() -> str:
        attempts.append(current_step().attempt)
        if len(attempts) < 3:
            raise ConnectionError("upstream busy")
        return "ok"

    @app.workflow()
    async def wf(ctx):
        return await ctx.run(flaky)

    async with running(app):
        handle = await app.start("wf")
        assert await handle.result(timeout=10) == "ok"
        step = (await handle.export())["steps"][0]
    assert attempts == [1, 2, 3]
    assert step["attempts"] == 3


async def test_a_step_that_keeps_failing_fails_the_run_with_its_error(app: LongTail) -> None:
    @app.step(retries=2, backoff=0)
    async def broken() -> None:
        raise ValueError("bad ledger")

    @app.workflow()
    async def wf(ctx):
        await ctx.run(broken)

    async with running(app):
        handle = await app.start("wf")
        with pytest.raises(WorkflowFailed) as info:
            await handle.result(timeout=10)
        step = (await handle.export())["steps"][0]
    assert info.value.status == "failed"
    assert "bad ledger" in info.value.error["message"] and "broken" in info.value.error["message"]
    assert (step["status"], step["attempts"]) == ("failed", 2)


async def test_workflow_can_catch_a_failed_step_and_the_catch_replays(app: LongTail) -> None:
    runs = 0

    @app.step(retries=1)
    async def refuse() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("declined")

    @app.workflow()
    async def wf(ctx):
        try:
            await ctx.run(refuse)
        except StepFailed as exc:
            outcome = f"handled: {exc.error['message']}"
        await ctx.wait_for_signal("continue")
        return outcome

    async with running(app):
        handle = await app.start("wf")
        await wait_status(handle, "waiting")
        await handle.signal("continue")
        assert await handle.result(timeout=10) == "handled: declined"
    assert runs == 1


async def test_non_retryable_errors_fail_on_the_first_attempt(app: LongTail) -> None:
    seen = {"a": 0, "b": 0}

    @app.step(retries=5, backoff=0)
    async def a() -> None:
        seen["a"] += 1
        raise NonRetryableError("card permanently declined")

    @app.step(retries=5, backoff=0, non_retryable=(KeyError,))
    async def b() -> None:
        seen["b"] += 1
        raise KeyError("missing")

    @app.workflow()
    async def wf(ctx, which):
        await ctx.run(a if which == "a" else b)

    async with running(app):
        for which in ("a", "b"):
            with pytest.raises(WorkflowFailed):
                await (await app.start("wf", which)).result(timeout=10)
    assert seen == {"a": 1, "b": 1}


async def test_a_long_retry_backoff_releases_the_worker(app: LongTail) -> None:
    attempts = 0

    @app.step(retries=2, backoff=1.5)
    async def slow_to_recover() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise TimeoutError("try later")
        return attempts

    @app.workflow()
    async def wf(ctx):
        return await ctx.run(slow_to_recover)

    async with running(app) as worker:
        handle = await app.start("wf")
        info = await wait_status(handle, "waiting")
        assert info["waiting_for"].startswith("retry:")
        await until(lambda: not worker.running)  # a run waiting out a long backoff holds no worker slot
        assert await handle.result(timeout=10) == 2


def test_default_retry_policy_is_three_attempts_coefficient_ten_capped_at_120s() -> None:
    policy = RetryPolicy()
    assert policy.retries == 3
    assert [policy.delay(k) for k in (1, 2, 3)] == [10.0, 100.0, 120.0]


async def test_steps_get_a_stable_idempotency_key_across_retries(app: LongTail) -> None:
    keys: list[str] = []

    @app.step(retries=3, backoff=0)
    def sync_effect() -> str:  # plain functions run in a thread
        keys.append(current_step().idempotency_key)
        if len(keys) < 2:
            raise OSError("flaky network")
        return keys[-1]

    @app.workflow()
    async def wf(ctx):
        await ctx.run(str, "first step")
        return await ctx.run(sync_effect)

    async with running(app):
        handle = await app.start("wf", workflow_id="pay-7")
        assert await handle.result(timeout=10) == "pay-7:2"
    assert keys == ["pay-7:2", "pay-7:2"]


async def test_a_step_result_that_is_not_json_fails_the_step_clearly(app: LongTail) -> None:
    @app.workflow()
    async def wf(ctx):
        await ctx.run(object)

    async with running(app):
        with pytest.raises(WorkflowFailed) as info:
            await (await app.start("wf")).result(timeout=10)
    assert "not JSON-serialisable" in info.value.error["message"]

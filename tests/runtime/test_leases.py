"""Leases: renewed while a worker is busy, handed back on clean shutdown."""

import anyio
import pytest

from longtail_mcp import LongTail
from tests.runtime.helpers import until

pytestmark = pytest.mark.anyio


async def test_a_step_longer_than_the_lease_is_not_taken_over(dsn: str) -> None:
    app = LongTail(dsn, poll_seconds=0.1, lease_seconds=0.9)
    calls = 0

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await anyio.sleep(2.5)  # the work itself: longer than the lease, heartbeats keep it
        return "done"

    @app.workflow()
    async def wf(ctx):
        return await ctx.run(slow)

    async with app, anyio.create_task_group() as tg:
        await tg.start(app.worker().run)
        await tg.start(app.worker().run)
        handle = await app.start("wf")
        assert await handle.result(timeout=15) == "done"
        tg.cancel_scope.cancel()
    assert calls == 1


async def test_a_clean_shutdown_hands_running_runs_to_another_worker_at_once(dsn: str) -> None:
    app = LongTail(dsn, poll_seconds=0.1, lease_seconds=60)
    entered = anyio.Event()
    attempts = 0

    async def stuck_then_fine() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            entered.set()
            await anyio.sleep_forever()
        return "resumed"

    @app.workflow()
    async def wf(ctx):
        return await ctx.run(stuck_then_fine)

    async with app, anyio.create_task_group() as tg:
        first = app.worker()
        scope = anyio.CancelScope()

        async def run_first(*, task_status: anyio.abc.TaskStatus[object]) -> None:
            with scope:
                await first.run(task_status=task_status)

        await tg.start(run_first)
        handle = await app.start("wf")
        with anyio.fail_after(10):
            await entered.wait()
        scope.cancel()  # shut the first worker down while its step hangs
        await until(lambda: not first.alive)
        await tg.start(app.worker().run)
        # Far sooner than the 60 s lease: the run was released, not abandoned.
        assert await handle.result(timeout=10) == "resumed"
        tg.cancel_scope.cancel()
    assert attempts == 2

"""Durable waits: sleep, signals, children, parallel steps, journaled values."""

import time

import anyio
import pytest

from longtail_mcp import LongTail, NotFound, WaitTimeout, WorkflowFailed
from longtail_mcp.errors import Conflict
from tests.conftest import running
from tests.runtime.helpers import until, wait_status

pytestmark = pytest.mark.anyio


async def test_a_long_sleep_releases_the_worker_and_resumes_after_the_timer(app: LongTail) -> None:
    @app.workflow()
    async def nap(ctx):
        before = await ctx.now()
        await ctx.sleep(1.5)
        return {"before": before, "after": time.time()}

    async with running(app) as worker:
        handle = await app.start("nap")
        info = await wait_status(handle, "waiting")
        assert info["waiting_for"] == "sleep"
        await until(lambda: not worker.running)  # its slot is freed just after the status commits
        result = await handle.result(timeout=10)
    assert result["after"] - result["before"] >= 1.5


async def test_a_short_sleep_stays_in_the_worker(app: LongTail) -> None:
    @app.workflow()
    async def blink(ctx):
        await ctx.sleep(0.05)
        return "done"

    async with running(app):
        handle = await app.start("blink")
        assert await handle.result(timeout=10) == "done"
        assert (await handle.info())["claims"] == 1


async def test_signals_sent_before_the_wait_are_buffered_in_order(app: LongTail) -> None:
    @app.workflow()
    async def collect(ctx):
        await ctx.wait_for_signal("start")
        return [await ctx.wait_for_signal("item") for _ in range(3)]

    async with running(app):
        handle = await app.start("collect")
        for i in range(3):
            await app.signal(handle.workflow_id, "item", {"n": i})
        await app.signal(handle.workflow_id, "start")
        assert await handle.result(timeout=10) == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_a_signal_wait_times_out_with_an_error_never_a_value(app: LongTail) -> None:
    @app.workflow()
    async def approve(ctx):
        try:
            await ctx.wait_for_signal("approved", timeout=1.2)
        except WaitTimeout:
            return "timed out: not approved"
        return "approved"

    async with running(app):
        handle = await app.start("approve")
        assert await handle.result(timeout=10) == "timed out: not approved"
        # A late signal cannot turn the timeout into an approval.
        with pytest.raises(Conflict):
            await app.signal(handle.workflow_id, "approved", True)


async def test_signalling_an_unknown_run_is_not_found(app: LongTail) -> None:
    async with app:
        with pytest.raises(NotFound):
            await app.signal("nope", "x")


async def test_child_workflow_result_flows_to_the_parent(app: LongTail) -> None:
    @app.workflow()
    async def invoice(ctx, data):
        return {"invoice_for": data["order"]}

    @app.workflow()
    async def parent(ctx, order_id):
        kid = await ctx.child("invoice", {"order": order_id})
        return {"child": kid}

    async with running(app):
        handle = await app.start("parent", "o-9", workflow_id="p1")
        assert await handle.result(timeout=10) == {"child": {"invoice_for": "o-9"}}
        child = await app.get_run("p1/1")
    assert child["parent_id"] == "p1" and child["status"] == "completed"


async def test_a_failed_child_raises_in_the_parent(app: LongTail) -> None:
    @app.workflow()
    async def bad(ctx):
        raise RuntimeError("child broke")

    @app.workflow()
    async def parent(ctx):
        try:
            await ctx.child("bad")
        except WorkflowFailed as exc:
            return f"caught: {exc.error['message']}"

    async with running(app):
        assert await (await app.start("parent")).result(timeout=10) == "caught: child broke"


async def test_gather_runs_steps_concurrently_and_keeps_argument_order(app: LongTail) -> None:
    a_started, b_started = anyio.Event(), anyio.Event()

    async def a() -> str:
        a_started.set()
        await b_started.wait()  # deadlocks unless b runs at the same time
        return "a"

    async def b() -> str:
        b_started.set()
        await a_started.wait()
        return "b"

    @app.workflow()
    async def both(ctx):
        return await ctx.gather(ctx.run(a), ctx.run(b))

    async with running(app):
        handle = await app.start("both")
        assert await handle.result(timeout=10) == ["a", "b"]
        steps = (await handle.export())["steps"]
    assert [(s["seq"], s["name"]) for s in steps] == [(1, a.__qualname__), (2, b.__qualname__)]


async def test_gather_finishes_other_branches_before_waiting(app: LongTail) -> None:
    ran: list[str] = []

    async def quick() -> str:
        ran.append("quick")
        return "q"

    @app.workflow()
    async def mixed(ctx):
        sig, q = await ctx.gather(ctx.wait_for_signal("go"), ctx.run(quick))
        return [sig, q]

    async with running(app):
        handle = await app.start("mixed")
        await wait_status(handle, "waiting")
        steps = (await handle.export())["steps"]
        assert [(s["kind"], s["status"]) for s in steps] == [("signal", "waiting"), ("step", "completed")]
        await handle.signal("go", "g")
        assert await handle.result(timeout=10) == ["g", "q"]
    assert ran == ["quick"]


async def test_now_uuid_and_random_are_recorded_and_replayed(app: LongTail) -> None:
    bodies = 0

    @app.workflow()
    async def values(ctx):
        nonlocal bodies
        bodies += 1
        first = [await ctx.now(), await ctx.uuid(), await ctx.random()]
        await ctx.wait_for_signal("again")
        return first

    async with running(app):
        handle = await app.start("values")
        await wait_status(handle, "waiting")
        await handle.signal("again")
        result = await handle.result(timeout=10)
        journal = [s["output"] for s in (await handle.export())["steps"][:3]]
    assert bodies == 2, "the body ran again on wake"
    assert result == journal, "the replay returned the recorded values"
    assert 0 <= result[2] < 1 and len(result[1]) == 36


async def test_starting_the_same_workflow_id_twice_returns_the_first_run(app: LongTail) -> None:
    @app.workflow()
    async def echo(ctx, value):
        return value

    async with running(app):
        first = await app.start("echo", "first", workflow_id="same")
        second = await app.start("echo", "second", workflow_id="same")
        assert first.created and not second.created
        assert await second.result(timeout=10) == "first"
        assert len(await app.list_runs(name="echo")) == 1


async def test_result_with_a_timeout_raises_while_the_run_waits(app: LongTail) -> None:
    @app.workflow()
    async def forever(ctx):
        await ctx.wait_for_signal("never")

    async with running(app):
        handle = await app.start("forever")
        with pytest.raises(TimeoutError):
            await handle.result(timeout=0.5)
        await wait_status(handle, "waiting")  # a loaded worker may not have reached the wait in 0.5 s


async def test_cancel_stops_a_waiting_run_and_its_children(app: LongTail) -> None:
    @app.workflow()
    async def kid(ctx):
        await ctx.wait_for_signal("never")

    @app.workflow()
    async def parent(ctx):
        await ctx.child("kid")

    async with running(app):
        handle = await app.start("parent", workflow_id="cp")
        await wait_status(app.handle("cp/1"), "waiting")
        cancelled = await handle.cancel("no longer needed")
        assert sorted(cancelled) == ["cp", "cp/1"]
        with pytest.raises(WorkflowFailed) as info:
            await handle.result(timeout=5)
        assert info.value.status == "cancelled" and info.value.error["message"] == "no longer needed"
        with pytest.raises(Conflict):
            await handle.cancel()


async def test_cancel_fences_out_a_step_in_progress(app: LongTail) -> None:
    entered, release = anyio.Event(), anyio.Event()
    after: list[str] = []

    async def long_step() -> str:
        entered.set()
        await release.wait()
        return "late"

    async def next_step() -> None:
        after.append("ran")

    @app.workflow()
    async def wf(ctx):
        await ctx.run(long_step)
        await ctx.run(next_step)

    async with running(app) as worker:
        handle = await app.start("wf")
        with anyio.fail_after(10):
            await entered.wait()
        await handle.cancel()
        release.set()
        await until(lambda: not worker.running)  # the worker notices it was fenced out and drops the run
        assert await handle.status() == "cancelled"
        assert (await handle.export())["steps"] == [], "the cancelled worker could not checkpoint"
    assert after == []


async def test_a_changed_step_sequence_fails_replay_naming_the_step(dsn: str) -> None:
    v1 = LongTail(dsn, poll_seconds=0.2)

    async def reserve() -> str:
        return "reserved"

    async def charge() -> str:
        return "charged"

    @v1.workflow("checkout")
    async def checkout_v1(ctx):
        await ctx.run(reserve)
        await ctx.wait_for_signal("paid")

    async with running(v1):
        handle = await v1.start("checkout", workflow_id="c1")
        await wait_status(handle, "waiting")

    v2 = LongTail(dsn, poll_seconds=0.2)

    @v2.workflow("checkout")
    async def checkout_v2(ctx):
        await ctx.run(charge)  # deployed code now calls another step first
        await ctx.wait_for_signal("paid")

    async with running(v2):
        await v2.signal("c1", "paid")
        with pytest.raises(WorkflowFailed) as info:
            await v2.handle("c1").result(timeout=10)
    message = info.value.error["message"]
    assert "step 1" in message and reserve.__qualname__ in message and charge.__qualname__ in message
    assert info.value.error["code"] == "nondeterminism"


async def test_notify_wakes_workers_without_waiting_for_the_poll(app: LongTail) -> None:
    @app.workflow()
    async def quick(ctx):
        return 1

    async with running(app, poll_seconds=30):
        started = time.monotonic()
        assert await (await app.start("quick")).result(timeout=10) == 1
        assert time.monotonic() - started < 5


async def test_polling_alone_still_runs_everything(app: LongTail) -> None:
    @app.workflow()
    async def wake_me(ctx):
        return await ctx.wait_for_signal("go")

    async with running(app, listen=False, poll_seconds=0.1):
        handles = [await app.start("wake_me") for _ in range(5)]
        for h in handles:
            await wait_status(h, "waiting")
        for i, h in enumerate(handles):
            await h.signal("go", i)
        assert [await h.result(timeout=10) for h in handles] == [0, 1, 2, 3, 4]


async def test_a_divergence_fails_the_run_even_if_the_workflow_catches_it(dsn: str) -> None:
    v1 = LongTail(dsn, poll_seconds=0.2)

    @v1.workflow("sloppy")
    async def sloppy_v1(ctx):
        await ctx.run(str, "a")
        await ctx.wait_for_signal("go")

    async with running(v1):
        await wait_status(await v1.start("sloppy", workflow_id="s1"), "waiting")

    v2 = LongTail(dsn, poll_seconds=0.2)

    @v2.workflow("sloppy")
    async def sloppy_v2(ctx):
        try:  # noqa: SIM105 - the sloppy pattern under test, written the way users write it
            await ctx.run(repr, "b")
        except Exception:
            pass  # swallowing everything must not hide a replay divergence
        await ctx.wait_for_signal("go")
        return "should not complete"

    async with running(v2):
        await v2.signal("s1", "go")
        with pytest.raises(WorkflowFailed) as info:
            await v2.handle("s1").result(timeout=10)
    assert info.value.error["code"] == "nondeterminism"


async def test_a_lost_lease_inside_gather_stops_the_run_not_the_worker(app: LongTail) -> None:
    entered, release = anyio.Event(), anyio.Event()

    async def slow() -> str:
        entered.set()
        await release.wait()
        return "late"

    @app.workflow()
    async def fan(ctx):
        return await ctx.gather(ctx.run(slow), ctx.run(str, "quick"))

    @app.workflow()
    async def after(ctx):
        return "worker still alive"

    async with running(app) as worker:
        handle = await app.start("fan")
        with anyio.fail_after(10):
            await entered.wait()
        await handle.cancel()
        release.set()  # the slow branch now tries to checkpoint with a stale epoch
        await until(lambda: not worker.running)
        assert await (await app.start("after")).result(timeout=10) == "worker still alive"
        assert worker.alive


async def test_a_child_id_that_belongs_to_another_run_is_refused(app: LongTail) -> None:
    from longtail_mcp import InvalidInput

    @app.workflow()
    async def other(ctx):
        return "someone else's"

    @app.workflow()
    async def parent(ctx):
        try:
            await ctx.child("other", workflow_id="taken")
        except InvalidInput as exc:
            return str(exc)

    async with running(app):
        await (await app.start("other", workflow_id="taken")).result(timeout=10)
        message = await (await app.start("parent")).result(timeout=10)
    assert "belongs to another run" in message


async def test_workflow_decorator_works_bare_and_called(app: LongTail) -> None:
    @app.workflow
    async def plain(ctx):
        return "bare"

    @app.workflow("named")
    async def other(ctx):
        return "called"

    assert {"named", "plain"} <= set(app.registry.names())
    async with running(app):
        assert await (await app.start("plain")).result(timeout=10) == "bare"

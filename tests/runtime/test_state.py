"""Entity state: atomic JSONB operations, journaled for replay, searchable."""

import pytest

from longtail_mcp import InvalidInput, LongTail, WorkflowFailed
from tests.conftest import running
from tests.runtime.helpers import until, wait_status

pytestmark = pytest.mark.anyio


async def test_every_state_operation_changes_the_document_as_documented(app: LongTail) -> None:
    @app.workflow()
    async def ops(ctx):
        out = {}
        out["set"] = await ctx.state.set("order.customer.name", "Ada")  # creates the objects on the way
        out["merge"] = await ctx.state.merge({"order": {"customer": {"tier": "gold"}, "total": 10}})
        out["append"] = await ctx.state.append("items", "a")
        await ctx.state.append("items", "b")
        out["prepend"] = await ctx.state.prepend("items", "z")
        out["remove_index"] = await ctx.state.remove("items", index=0)
        await ctx.state.append("items", "a")
        out["remove_value"] = await ctx.state.remove("items", value="a")
        out["increment"] = await ctx.state.increment("order.total", 5)
        out["increment_new"] = await ctx.state.increment("counters.visits")
        out["toggle"] = await ctx.state.toggle("flags.paid")
        out["toggle_back"] = await ctx.state.toggle("flags.paid")
        out["sine_kept"] = await ctx.state.set_if_not_exists("order.total", 999)
        out["sine_set"] = await ctx.state.set_if_not_exists("order.currency", "EUR")
        out["delete"] = await ctx.state.delete("counters")
        out["get_path"] = await ctx.state.get("order.customer")
        out["get_all"] = await ctx.state.get()
        return out

    async with running(app):
        handle = await app.start("ops")
        out = await handle.result(timeout=10)
        final = await handle.state()
        kinds = {(s["kind"], s["name"]) for s in (await handle.export())["steps"]}
    assert out["set"] == "Ada"
    assert out["merge"] == {"order": {"customer": {"name": "Ada", "tier": "gold"}, "total": 10}}
    assert out["append"] == ["a"]
    assert out["prepend"] == ["z", "a", "b"]
    assert out["remove_index"] == ["a", "b"]
    assert out["remove_value"] == ["b"]
    assert (out["increment"], out["increment_new"]) == (15, 1)
    assert (out["toggle"], out["toggle_back"]) == (True, False)
    assert (out["sine_kept"], out["sine_set"]) == (15, "EUR")
    assert out["delete"] is None
    assert out["get_path"] == {"name": "Ada", "tier": "gold"}
    assert final == out["get_all"] == {
        "order": {"customer": {"name": "Ada", "tier": "gold"}, "total": 15, "currency": "EUR"},
        "items": ["b"],
        "flags": {"paid": False},
    }
    assert ("state", "increment") in kinds and ("state", "merge") in kinds


async def test_a_type_clash_raises_invalid_input_and_changes_nothing(app: LongTail) -> None:
    @app.workflow()
    async def clash(ctx):
        await ctx.state.set("name", "Ada")
        try:
            await ctx.state.increment("name")
        except InvalidInput as exc:
            return str(exc)

    async with running(app):
        handle = await app.start("clash")
        message = await handle.result(timeout=10)
        assert await handle.state() == {"name": "Ada"}
    assert "cannot increment" in message and "string" in message


async def test_a_state_operation_is_not_reapplied_on_replay(app: LongTail) -> None:
    @app.workflow()
    async def counter(ctx):
        first = await ctx.state.increment("n")
        await ctx.wait_for_signal("go")
        return first

    async with running(app):
        handle = await app.start("counter")
        await wait_status(handle, "waiting")
        await handle.signal("go")
        assert await handle.result(timeout=10) == 1
        assert await handle.state("n") == 1, "replay returned the recorded value and did not increment again"


async def test_fifty_concurrent_increments_from_hooks_add_exactly_fifty(app: LongTail) -> None:
    @app.workflow()
    async def tally(ctx):
        await ctx.state.set("count", 100)
        await ctx.wait_for_signal("hooks started")
        hooks = await ctx.wait_for_hooks()
        return {"count": await ctx.state.get("count"), "hooks": len(hooks)}

    @app.workflow()
    async def bump(ctx, by):
        return await ctx.state.increment("count", by)

    async with running(app, concurrency=100):
        handle = await app.start("tally")

        async def counted() -> bool:
            return await handle.state("count") == 100

        await until(counted)
        hooks = [await app.hook(handle.workflow_id, "bump", 1) for _ in range(50)]
        await handle.signal("hooks started")
        assert await handle.result(timeout=30) == {"count": 150, "hooks": 50}
        seen = sorted([await h.result(timeout=10) for h in hooks])
    assert seen == list(range(101, 151)), "each increment saw a distinct value: no lost update"


async def test_find_runs_by_state_containment_and_jsonpath(app: LongTail) -> None:
    @app.workflow()
    async def customer(ctx, data):
        await ctx.state.merge(data)
        return "ok"

    async with running(app):
        for data in ({"tier": "gold", "total": 120}, {"tier": "gold", "total": 40}, {"tier": "basic", "total": 300}):
            await (await app.start("customer", data)).result(timeout=10)
        gold = await app.find_runs(state={"tier": "gold"})
        big_gold = await app.find_runs(state={"tier": "gold"}, path="$.total ? (@ > 100)")
        big = await app.find_runs(path="$.total ? (@ > 100)", status="completed", name="customer")
        with pytest.raises(InvalidInput, match="jsonpath"):
            await app.find_runs(path="$.total ? (@ >")
    assert sorted(r["state"]["total"] for r in gold) == [40, 120]
    assert [r["state"]["total"] for r in big_gold] == [120]
    assert sorted(r["state"]["total"] for r in big) == [120, 300]


async def test_the_state_index_serves_containment_queries(app: LongTail) -> None:
    async with app, app.db.connection() as conn:
        await conn.execute("SET enable_seqscan = off")
        plan = await (await conn.execute(
            "EXPLAIN SELECT id FROM workflow WHERE state @> '{\"tier\": \"gold\"}'::jsonb"
        )).fetchall()
    assert any("workflow_state" in row["QUERY PLAN"] for row in plan)


async def test_hooks_start_only_on_live_runs(app: LongTail) -> None:
    @app.workflow()
    async def done(ctx):
        return 1

    @app.workflow()
    async def extra(ctx):
        return 2

    async with running(app):
        handle = await app.start("done")
        await handle.result(timeout=10)
        from longtail_mcp import Conflict, NotFound

        with pytest.raises(Conflict, match="completed"):
            await app.hook(handle.workflow_id, "extra")
        with pytest.raises(NotFound):
            await app.hook("missing", "extra")


async def test_cancelling_a_run_cancels_its_hooks(app: LongTail) -> None:
    @app.workflow()
    async def main(ctx):
        await ctx.wait_for_signal("never")

    @app.workflow()
    async def stuck(ctx):
        await ctx.wait_for_signal("never")

    async with running(app):
        handle = await app.start("main")
        hook = await app.hook(handle.workflow_id, "stuck")
        await wait_status(hook, "waiting")
        cancelled = await handle.cancel()
        assert sorted(cancelled) == sorted([handle.workflow_id, hook.workflow_id])
        with pytest.raises(WorkflowFailed):
            await hook.result(timeout=5)


async def test_a_hook_started_on_a_hook_shares_the_main_runs_state(app: LongTail) -> None:
    @app.workflow()
    async def main(ctx):
        await ctx.wait_for_signal("done")
        return await ctx.state.get("marks")

    @app.workflow()
    async def first(ctx):
        await ctx.state.append("marks", "first")
        await ctx.wait_for_signal("go")

    @app.workflow()
    async def second(ctx):
        await ctx.state.append("marks", "second")

    async with running(app):
        handle = await app.start("main")
        hook = await app.hook(handle.workflow_id, "first")
        await wait_status(hook, "waiting")
        nested = await app.hook(hook.workflow_id, "second")
        await nested.result(timeout=10)
        await hook.signal("go")
        await hook.result(timeout=10)
        await handle.signal("done")
        assert await handle.result(timeout=10) == ["first", "second"]

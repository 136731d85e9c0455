"""Entity state, hooks, events, cron and the embedded Client, end to end.

    python examples/inventory.py

A `warehouse` run holds one SKU's stock as entity state. Twenty `reserve` hooks run at once on it,
each taking stock with an atomic increment; an event subscription counts them as they finish; a
cron schedule reports stock every second; a separate `Client` finds the warehouse by its state and
closes it with a signal.

Uses DATABASE_URL when set; otherwise the embedded Postgres in a temporary LONGTAIL_HOME.
"""

from typing import Any

import anyio
from _demo import demo_app, run

from longtail_mcp import Client, Context

app = demo_app('inventory')

reports: list[dict[str, Any]] = []


@app.workflow()
async def warehouse(ctx: Context, sku: str) -> dict[str, Any]:
    await ctx.state.merge({"sku": sku, "stock": 100, "reservations": [], "open": True})
    await ctx.wait_for_signal("close")  # hooks work on the state meanwhile
    await ctx.wait_for_hooks()
    await ctx.state.toggle("open")
    return await ctx.state.get()


@app.workflow()
async def reserve(ctx: Context, order: dict[str, Any]) -> int:
    """Runs as a hook: its ctx.state is the warehouse's."""
    left = await ctx.state.increment("stock", -order["qty"])  # one UPDATE: no lost updates
    await ctx.state.append("reservations", order["id"])
    return left


async def stock_report() -> dict[str, Any]:
    runs = await app.find_runs(state={"sku": "TEA-1", "open": True}, name="warehouse")
    return {"open_warehouses": len(runs), "stock": runs[0]["state"]["stock"] if runs else None}


@app.workflow()
async def report(ctx: Context) -> dict[str, Any]:
    figures = await ctx.run(stock_report)
    reports.append(figures)
    return figures


async def main() -> None:
    async with app, anyio.create_task_group() as tg:
        await tg.start(app.worker().run)
        finished = 0
        all_finished, reported = anyio.Event(), anyio.Event()

        @app.events.on("run.completed")
        def count(event: Any) -> None:
            nonlocal finished
            if event.name == "reserve":
                finished += 1
                if finished == 20:
                    all_finished.set()
            elif event.name == "report":
                reported.set()

        async with app.events.subscribe(["run.waiting"], workflow_id="warehouse-TEA-1") as waiting:
            handle = await app.start("warehouse", "TEA-1", workflow_id="warehouse-TEA-1")
            with anyio.fail_after(10):
                await anext(waiting)  # stocked, and waiting for "close": the hooks can start
        hooks = [await app.hook(handle.workflow_id, "reserve", {"id": f"o-{i}", "qty": 1}) for i in range(20)]
        results = sorted([await h.result(timeout=30) for h in hooks])
        print(f"hooks saw stock go {results[-1]} -> {results[0]}")

        await app.schedule("stock-report", "* * * * * *", workflow="report")  # every second
        with anyio.fail_after(10):
            await reported.wait()
        await app.unschedule("stock-report")
        print(f"report: {reports[0]}")

        async with Client(app.settings.database_url, home=app.settings.home, pg_port=app.settings.pg_port) as client:
            (found,) = await client.find_runs(state={"sku": "TEA-1"}, name="warehouse", status="waiting")
            await client.signal(found["id"], "close")
            final = await client.handle(found["id"]).result(timeout=30)
        print(f"stock: {final['stock']}")
        print(f"reservations: {len(final['reservations'])}")
        print(f"open: {final['open']}")
        with anyio.fail_after(5):
            await all_finished.wait()
        print(f"hook completions seen as events: {finished}")
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    run(main)

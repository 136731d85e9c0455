"""An order workflow, end to end: retried steps, parallel steps, a child workflow, a durable
sleep, a signal with a timeout and a journaled clock.

    python examples/orders.py

Uses DATABASE_URL (or LONGTAIL_DATABASE_URL) when set; otherwise it starts the embedded Postgres
in a temporary LONGTAIL_HOME, which it removes on the way out. One worker runs in this process.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from _demo import demo_app, run

from longtail_mcp import Context, NonRetryableError, WaitTimeout, current_step

# -- the app: an external Postgres if configured, else a throwaway embedded one ----------------------

app = demo_app('orders')


# -- steps: plain functions; the decorator only adds a retry policy ---------------------------------

GATEWAY: dict[str, dict[str, Any]] = {}  # a fake card gateway that deduplicates by idempotency key
gateway_calls = 0


async def reserve_stock(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"reserved": sum(item["qty"] for item in items), "warehouse": "AMS-1"}


def quote_shipping(address: dict[str, str]) -> int:  # a sync function runs in a thread
    return 599 if address["country"] == "NL" else 1499


@app.step(retries=3, backoff=1.0)  # 3 attempts in all, 1.0**k = 1 s apart
async def charge_card(order_id: str, cents: int) -> dict[str, Any]:
    global gateway_calls
    gateway_calls += 1
    if cents <= 0:
        raise NonRetryableError(f"nothing to charge for {order_id}")  # fails at once, no retry
    step = current_step()
    if step.attempt == 1:
        raise ConnectionError("gateway timed out")  # the first attempt fails; the retry succeeds
    # The key is the same on every attempt, replay and worker: the gateway charges once.
    charge = GATEWAY.setdefault(step.idempotency_key, {"charge_id": f"ch_{len(GATEWAY) + 1}", "cents": cents})
    return {**charge, "attempt": step.attempt}


async def render_invoice(order_id: str, lines: list[dict[str, Any]], total_cents: int) -> dict[str, Any]:
    return {"number": f"INV-{order_id}", "lines": len(lines), "total_cents": total_cents}


async def refund(charge_id: str) -> str:
    return f"refunded {charge_id}"


# -- workflows: deterministic code that calls steps through ctx -------------------------------------


@app.workflow("invoice")
async def invoice(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    return await ctx.run(render_invoice, data["order_id"], data["lines"], data["total_cents"])


@app.workflow("order")
async def order(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    placed_at = await ctx.now()  # journaled: a replay sees the same time
    stock, shipping = await ctx.gather(
        ctx.run(reserve_stock, order["items"]),
        ctx.run(quote_shipping, order["address"]),
    )
    total = sum(item["qty"] * item["cents"] for item in order["items"]) + shipping
    payment = await ctx.run(charge_card, order["id"], total)
    bill = await ctx.child("invoice", {"order_id": order["id"], "lines": order["items"], "total_cents": total})
    await ctx.sleep(timedelta(seconds=1.5))  # cooling-off period: longer than 1 s, so the run leaves the worker
    try:
        shipped = await ctx.wait_for_signal("shipped", timeout=timedelta(minutes=10))
    except WaitTimeout:  # a timeout is an error, never a value
        return {"order_id": order["id"], "status": "refunded", "refund": await ctx.run(refund, payment["charge_id"])}
    return {
        "order_id": order["id"],
        "status": "shipped",
        "placed_at": datetime.fromtimestamp(placed_at, UTC).isoformat(),
        "reserved": stock["reserved"],
        "total_cents": total,
        "charge": payment,
        "invoice": bill,
        "tracking": shipped["tracking"],
    }


# -- driving it ---------------------------------------------------------------------------------------

ORDER = {
    "id": "A-1001",
    "items": [{"sku": "mug", "qty": 2, "cents": 1299}, {"sku": "tea", "qty": 1, "cents": 1900}],
    "address": {"country": "NL"},
}


def compact(value: Any, width: int = 60) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


async def main() -> None:
    async with app, anyio.create_task_group() as tg:
        await tg.start(app.worker().run)  # one worker in this process; `longtail-mcp worker` does the same
        handle = await app.start("order", ORDER, workflow_id=f"order-{ORDER['id']}-{uuid.uuid4().hex[:8]}")
        again = await app.start("order", ORDER, workflow_id=handle.workflow_id)  # the id is an idempotency key
        print(f"started {handle.workflow_id} (starting it again: created={again.created})")

        seen = None
        with anyio.fail_after(60):
            while (waiting := (await handle.info())["waiting_for"]) != "signal:shipped":
                if waiting != seen and waiting is not None:
                    print(f"  waiting for {waiting}; the run is a row, the worker holds nothing for it")
                seen = waiting
                await anyio.sleep(0.05)
        print("  waiting for signal:shipped; sending it")
        await app.signal(handle.workflow_id, "shipped", {"carrier": "UPS", "tracking": "1Z999AA10123456784"})

        result = await handle.result(timeout=60)
        history = await handle.export()
        tg.cancel_scope.cancel()  # stop the worker; leaving `async with app` stops the embedded Postgres

    print("result: " + json.dumps(result, sort_keys=True))
    print(f"gateway calls: {gateway_calls} (replays after the sleep and the signal returned the recorded charge)")
    print(f"journal of {handle.workflow_id}:")
    for s in history["steps"]:
        print(f"  {s['seq']:>3} {s['kind']:<6} {s['name']:<14} {s['status']:<9} x{s['attempts']} "
              f"{compact(s['output'] if s['error'] is None else s['error'])}")
    for m in history["signals"]:
        print(f"  signal {m['name']!r} consumed by seq {m['consumed_seq']}: {compact(m['payload'])}")


if __name__ == "__main__":
    run(main)

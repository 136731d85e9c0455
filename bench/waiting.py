"""Waiting-runs benchmark: N runs parked (sleeping or waiting for a signal) held by one worker process.

    python bench/waiting.py [--n 100000] [--wake 1000] [--json]

A waiting run is a row, not a coroutine, so the worker's memory should stay flat however many
runs wait. Phases (one in-process worker, DATABASE_URL or a temp embedded Postgres with fsync on):
  1. idle      worker started, nothing queued: RSS baseline (the same-run comparison point).
  2. park      N runs inserted in bulk (half wait for signal "go", half sleep a day); the worker
               executes each up to its wait and releases it. Time and RSS (peak while parking,
               after, after gc) are printed.
  3. wake      `--wake` of the signal-waiting runs are signalled (8 senders); time until all of
               them completed.
"""

import argparse
import gc
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime import fresh_database, log, machine, server

from longtail_mcp import LongTail


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def count(app: LongTail, status: str) -> int:
    async with app.db.connection() as conn:
        row = await (await conn.execute("SELECT count(*) AS n FROM workflow WHERE status = %s", [status])).fetchone()
    return int(row["n"])


async def run(dsn: str, schema: str, n: int, wake: int) -> dict[str, Any]:
    app = LongTail(dsn, schema_name=schema, poll_seconds=0.5)

    @app.workflow()
    async def parked(ctx, i):
        if i % 2 == 0:
            return await ctx.wait_for_signal("go")
        await ctx.sleep(timedelta(days=1))
        return None

    out: dict[str, Any] = {"n": n, "wake": wake}
    async with app, anyio.create_task_group() as tg:
        worker = await tg.start(app.worker(concurrency=200).run)
        await anyio.sleep(1.0)
        gc.collect()
        out["rss_idle_mb"] = round(rss_mb(), 1)
        log(f"idle worker RSS {out['rss_idle_mb']} MB; inserting {n} runs")

        async with app.db.transaction() as conn:  # bulk insert: this benchmark is about holding, not starting
            await conn.execute(
                "INSERT INTO workflow (id, name, input, due_at) "
                "SELECT 'p-' || i, 'parked', to_jsonb(i), now() FROM generate_series(0, %s - 1) AS i", [n])
            await conn.execute("SELECT pg_notify(%s, '')", [app.db.wake_channel])
        async with app.db.connection() as conn:
            await conn.execute("ANALYZE workflow")  # what autovacuum does after a bulk load, so the claim plan is real
        started, peak = time.monotonic(), 0.0
        with anyio.fail_after(1800):
            while (waiting := await count(app, "waiting")) < n:
                peak = max(peak, rss_mb())
                await anyio.sleep(0.5)
                log(f"parked {waiting}/{n}")
        park_s = time.monotonic() - started
        out.update(park_seconds=round(park_s, 1), parks_per_s=round(n / park_s),
                   rss_peak_mb=round(max(peak, rss_mb()), 1))
        out["rss_parked_mb"] = round(rss_mb(), 1)
        gc.collect()
        out["rss_parked_gc_mb"] = round(rss_mb(), 1)
        out["worker_running_after_park"] = len(worker.running)

        ids = [f"p-{i}" for i in range(0, 2 * wake, 2)]
        started = time.monotonic()

        async def send(chunk: list[str]) -> None:
            for wid in chunk:
                await app.signal(wid, "go", {"woken": wid})

        async with anyio.create_task_group() as senders:
            for k in range(8):
                senders.start_soon(send, ids[k::8])
        sent_s = time.monotonic() - started
        with anyio.fail_after(600):
            while await count(app, "completed") < wake:  # noqa: ASYNC110 - counting rows in Postgres is the measurement
                await anyio.sleep(0.02)
        wake_s = time.monotonic() - started
        out.update(signals_sent_seconds=round(sent_s, 2), wake_seconds=round(wake_s, 2),
                   wakes_per_s=round(wake / wake_s))
        gc.collect()
        out["rss_end_mb"] = round(rss_mb(), 1)
        tg.cancel_scope.cancel()
    out["rss_growth_bytes_per_waiting_run"] = round((out["rss_parked_gc_mb"] - out["rss_idle_mb"]) * 1024 * 1024 / n, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--wake", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with server() as (admin_dsn, _pid, where), fresh_database(admin_dsn) as (dsn, schema):
        figures = anyio.run(run, dsn, schema, args.n, args.wake)
    figures["database"] = where
    figures["machine"] = machine()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    f = figures
    sent = f"signals sent in {f['signals_sent_seconds']} s"
    print(f"""
waiting runs held by one worker process ({f['database']})
  runs parked            {f['n']:,} (half on a signal, half in a 1-day sleep)
  time to park           {f['park_seconds']} s ({f['parks_per_s']:,} runs/s executed up to their wait)
  worker slots in use    {f['worker_running_after_park']} after parking (waiting runs hold none)
  RSS idle (baseline)    {f['rss_idle_mb']} MB
  RSS peak while parking {f['rss_peak_mb']} MB
  RSS all parked         {f['rss_parked_mb']} MB, after gc {f['rss_parked_gc_mb']} MB
                         = {f['rss_growth_bytes_per_waiting_run']} bytes per waiting run over the idle baseline
  wake {f['wake']:,} by signal      {f['wake_seconds']} s ({f['wakes_per_s']:,}/s; {sent})
  RSS at the end         {f['rss_end_mb']} MB
""")


if __name__ == "__main__":
    main()

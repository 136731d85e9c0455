"""Cron: exactly one start per tick across worker processes; one catch-up run after downtime."""

import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from longtail_mcp import InvalidInput, LongTail
from tests.conftest import running
from tests.runtime.helpers import until

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def tick_runs(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM longtail.workflow WHERE name = 'tick' ORDER BY id")]


@pytest.mark.slow
async def test_two_worker_processes_start_each_tick_exactly_once(dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": dsn, "LONGTAIL_POLL_SECONDS": "0.1"}
    cmd = [sys.executable, "-m", "longtail_mcp", "worker", "--app", "tests.apps.cron_app:app"]
    # Two long-lived processes, read line by line and stopped with a signal: not a run-to-completion call.
    workers = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: ASYNC220
                                text=True)
               for _ in range(2)]
    try:
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().startswith("longtail-mcp worker ready")
        await until(lambda: len(tick_runs(dsn)) >= 5, within=30, every=0.2)
    finally:
        for w in workers:
            w.send_signal(signal.SIGINT)
        for w in workers:
            w.communicate(timeout=15)
    ids = tick_runs(dsn)
    ticks = sorted(datetime.fromisoformat(i.split("@", 1)[1]) for i in ids)
    seconds = [int(t.timestamp()) for t in ticks]
    assert len(set(seconds)) == len(ids), "one run per tick"
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), "no tick skipped, none doubled"
    with psycopg.connect(dsn) as conn:
        statuses = {r[0] for r in conn.execute("SELECT status FROM longtail.workflow WHERE name = 'tick'")}
        started = conn.execute("SELECT last_run_id FROM longtail.schedule WHERE name = 'tick'").fetchone()[0]
    assert statuses <= {"completed", "pending", "running"}
    assert started in ids


async def test_after_downtime_a_schedule_fires_once_not_once_per_missed_tick(app: LongTail) -> None:
    @app.workflow()
    async def report(ctx, data):
        return data

    async with app:
        await app.schedule("hourly-report", "0 * * * *", {"kind": "summary"}, workflow="report")
        async with app.db.connection() as conn:  # the system was down for three hours
            await conn.execute("UPDATE schedule SET next_at = now() - interval '3 hours' WHERE name = 'hourly-report'")
    async with running(app):
        await until(lambda: app.list_runs(name="report"), every=0.05)
        runs = await app.list_runs(name="report")
        assert await app.handle(runs[0]["id"]).result(timeout=10) == {"kind": "summary"}
        (sched,) = await app.list_schedules()
    assert len(runs) == 1
    assert sched["last_run_id"] == runs[0]["id"]
    assert datetime.fromisoformat(sched["next_at"]) > datetime.fromisoformat(sched["last_at"])
    # the catch-up run is for the latest missed tick, and the next one is in the future
    assert datetime.fromisoformat(sched["last_at"]).second == 0


async def test_invalid_cron_expressions_are_refused_up_front(app: LongTail) -> None:
    with pytest.raises(InvalidInput, match="invalid cron"):

        @app.workflow(cron="every tuesday")
        async def bad(ctx):
            return None

    async with app:
        with pytest.raises(InvalidInput, match="invalid cron"):
            await app.schedule("x", "61 * * * *")
        assert await app.list_schedules() == []


async def test_unscheduling_stops_future_runs(app: LongTail) -> None:
    @app.workflow()
    async def beat(ctx):
        return 1

    async with app:
        await app.schedule("beat", "* * * * * *")
        assert [s["name"] for s in await app.list_schedules()] == ["beat"]
        await app.unschedule("beat")
        assert await app.list_schedules() == []


async def test_a_declared_cron_keeps_the_input_set_with_schedule(app: LongTail) -> None:
    @app.workflow(cron="0 3 * * *")
    async def nightly(ctx, data):
        return data

    async with app:
        await app.schedule("nightly", "0 3 * * *", {"region": "eu"})
    async with running(app):  # the worker registers the declared cron again
        (sched,) = await app.list_schedules()
    assert sched["input"] == {"region": "eu"} and sched["cron"] == "0 3 * * *"

"""Worker processes against one database: crash takeover and no double execution."""

import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import psycopg
import pytest

from longtail_mcp import LongTail
from tests.apps import counting
from tests.runtime.helpers import until

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def start_worker(dsn: str, concurrency: int) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "LONGTAIL_LEASE_SECONDS": "2", "LONGTAIL_POLL_SECONDS": "0.2",
           "STEP_SECONDS": "0.05"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "longtail_mcp", "worker", "--app", "tests.apps.counting:app",
         "--concurrency", str(concurrency)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("longtail-mcp worker ready"):
        proc.kill()
        raise AssertionError(f"worker did not start: {line}{proc.stderr.read() if proc.stderr else ''}")
    return proc


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGINT (clean shutdown), then collect its output and close its pipes."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def create_effect_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(counting.EFFECT_TABLE)


async def queue_runs(dsn: str, count: int) -> LongTail:
    """Start `count` runs once the workers are up, so every worker competes for them from the start."""
    client = LongTail(dsn)
    client.registry.workflows.update(counting.app.registry.workflows)
    await client.open()
    for i in range(count):
        await client.start("counted", i, workflow_id=f"run-{i:03d}")
    return client


def completed(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM longtail.workflow WHERE status = 'completed'").fetchone()[0]


async def wait_completed(dsn: str, count: int, within: float) -> None:
    await until(lambda: completed(dsn) >= count, within=within, every=0.1)


def journal_and_effects(dsn: str) -> tuple[dict, dict]:
    with psycopg.connect(dsn) as conn:
        journal = {
            (wid, seq): out["pid"]
            for wid, seq, out in conn.execute("SELECT workflow_id, seq, output FROM longtail.step").fetchall()
        }
        effects: dict[tuple[str, int], list[int]] = defaultdict(list)
        for wid, seq, pid in conn.execute("SELECT workflow_id, seq, pid FROM public.effect ORDER BY finished"):
            effects[(wid, seq)].append(pid)
    return journal, effects


@pytest.mark.slow
async def test_a_killed_worker_loses_nothing_and_committed_steps_never_rerun(dsn: str) -> None:
    create_effect_table(dsn)
    victim = start_worker(dsn, concurrency=20)
    survivor = start_worker(dsn, concurrency=20)
    client = await queue_runs(dsn, 200)
    try:
        await until(lambda: completed(dsn) >= 30, within=60)
        victim.send_signal(signal.SIGKILL)  # mid-flight: no clean shutdown, leases left to expire
        victim.wait()
        await wait_completed(dsn, 200, within=90)
    finally:
        stop(victim)
        stop(survivor)
    journal, effects = journal_and_effects(dsn)
    results = {r["id"]: r for r in await client.list_runs(status="completed", limit=1000)}
    await client.close()
    assert len(results) == 200, "every run completed"
    assert len(journal) == 600 and set(effects) == set(journal), "every step committed once in the journal"
    killed = victim.pid
    for key, pids in effects.items():
        if journal[key] == killed:
            assert pids == [killed], f"{key} was committed by the killed worker and must not run again"
        else:
            assert pids.count(journal[key]) == 1, f"{key} ran twice on the surviving worker"
            assert set(pids[:-1]) <= {killed}, f"{key}: only an uncommitted attempt of the killed worker may repeat"
    rerun = [k for k, pids in effects.items() if len(pids) > 1]
    assert len(rerun) <= 20, "only steps in flight at the kill (at most the worker's concurrency) ran again"
    assert any(pid == killed for pid in journal.values()), "the victim did commit work before it died"
    with psycopg.connect(dsn) as conn:  # a run claimed again after its lease expired was taken over
        taken_over = conn.execute("SELECT count(*) FROM longtail.workflow WHERE claims > 1").fetchone()[0]
    assert taken_over > 0, "runs in flight on the killed worker were finished by the other process"


@pytest.mark.slow
async def test_two_worker_processes_never_run_the_same_step_twice(dsn: str) -> None:
    create_effect_table(dsn)
    workers = [start_worker(dsn, concurrency=20), start_worker(dsn, concurrency=20)]
    client = await queue_runs(dsn, 200)
    try:
        await wait_completed(dsn, 200, within=90)
    finally:
        for w in workers:
            stop(w)
        await client.close()
    journal, effects = journal_and_effects(dsn)
    assert len(journal) == 600
    executions = Counter({key: len(pids) for key, pids in effects.items()})
    assert set(executions.values()) == {1}, "each step executed exactly once across both processes"
    assert {pid for pids in effects.values() for pid in pids} == {w.pid for w in workers}, "both workers took work"
    with psycopg.connect(dsn) as conn:
        alive = conn.execute("SELECT count(*) FROM longtail.worker WHERE stopped_at IS NULL").fetchone()[0]
    assert alive == 0, "workers deregister on SIGINT"

"""Runtime benchmark: drain N queued 3-step workflows with one in-process worker, against a same-run baseline.

    python bench/runtime.py [--n 2000] [--concurrency 200] [--signals 50] [--json]

Uses DATABASE_URL when set, else starts its own embedded Postgres (default durability: fsync on,
synchronous_commit on) in a temp dir on 127.0.0.1, and removes it afterwards. Every run gets a
fresh database (or, if the DATABASE_URL role cannot create databases, a fresh schema), dropped at
the end. Progress goes to stderr; the summary (or, with --json, the figures as JSON) to stdout.

Phases:
  1. baseline   one INSERT + commit per row into bench_baseline, on 1 connection and on 8.
  2. enqueue    N runs of `bench3` started (app.start, 16 at a time; or one bulk INSERT).
  3. drain      one worker starts; wall time from just before its start (server clock) to the
                last run's completed_at, i.e. until all N are `completed` (polled 10x/s to stop).
  4. journal    step overhead from the step table (completed_at - started_at) and, measured
                in process, how long each checkpoint write waited for its group commit.
  5. signals    K runs park on wait_for_signal("go"); each is signalled in turn and awaited.
"""

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
from psycopg import sql

from longtail_mcp import LongTail
from longtail_mcp.db.embedded import EmbeddedPostgres, postgres_user
from longtail_mcp.runtime.journal import StepWrite

STEPS_PER_WF = 3


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of a list; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


# -- the server and a fresh database -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server() -> Iterator[tuple[str, int | None, str]]:
    """(admin DSN, postmaster pid, description): DATABASE_URL, or an embedded server with fsync on, removed on exit."""
    url = os.environ.get("DATABASE_URL")
    if url:
        info = psycopg.conninfo.conninfo_to_dict(url)
        yield url, None, f"DATABASE_URL (host {info.get('host') or 'local socket'}, port {info.get('port') or 5432})"
        return
    root = Path(tempfile.mkdtemp(prefix="lt-bench-pg-"))
    root.chmod(0o755)  # the unprivileged Postgres user must reach it when we run as root
    who = postgres_user()
    pg = EmbeddedPostgres(root / "pgdata", port=free_port(), password_file=root / "pw", run_as=who,
                          fsync=True, database="postgres")
    try:
        log(f"starting embedded Postgres in {root} (fsync on) on 127.0.0.1:{pg.port}")
        pg.start()
        yield pg.dsn("postgres"), pg.process.pid if pg.process else None, f"embedded, temp dir on {filesystem_of(root)}"
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        log("embedded Postgres stopped and removed")


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes on this machine have used so far (from /proc/stat), to spot other load."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pg_pid: int | None) -> tuple[float, float | None, float | None]:
    """CPU seconds used so far by this process, by the Postgres server (postmaster + children) if ours, by all."""
    own = time.process_time()
    everything = machine_busy_seconds()
    if pg_pid is None:
        return own, None, everything
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pg_pid or int(fields[1]) == pg_pid:  # fields[1] is the ppid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return own, total, everything


def filesystem_of(path: Path) -> str:
    """The filesystem type holding `path` (from /proc/mounts), for the report."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _dev, mnt, fstype, *_ = line.split()
            if str(path).startswith(mnt) and len(mnt) > len(best):
                best, kind = mnt, fstype
    except OSError:
        pass
    return kind


def with_db(dsn: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


@contextmanager
def fresh_database(admin_dsn: str) -> Iterator[tuple[str, str]]:
    """(DSN, schema) of a new database (or, lacking CREATEDB, a new schema), dropped on exit."""
    name = f"lt_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege:
        log(f"cannot create a database; using schema {name} in the DATABASE_URL database instead")
        try:
            yield admin_dsn, name
        finally:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        return
    try:
        yield with_db(admin_dsn, name), "longtail"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- phase 1: raw commit rate ----------------------------------------------------------------------


async def commit_rate(dsn: str, statement: sql.Composable, params: Callable[[int, int], list[Any]],
                      connections: int, seconds: float) -> float:
    """Commits/s of one statement per autocommit round trip, `connections` clients in parallel;
    client i's k-th execution gets `params(i, k)`."""
    conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(connections)]
    counts = [0] * connections
    try:
        for i, c in enumerate(conns):  # warm up (and let psycopg prepare the statement)
            for k in range(6):
                await c.execute(statement, params(i, k))
        go = anyio.Event()
        deadline = 0.0

        async def client(i: int) -> None:
            await go.wait()
            k = 0
            while time.perf_counter() < deadline:
                await conns[i].execute(statement, params(i, k))
                counts[i] += 1
                k += 1

        async with anyio.create_task_group() as tg:
            for i in range(connections):
                tg.start_soon(client, i)
            start = time.perf_counter()
            deadline = start + seconds
            go.set()
        elapsed = time.perf_counter() - start
    finally:
        for c in conns:
            await c.close()
    return sum(counts) / elapsed


async def baseline(dsn: str, table: sql.Composable, connections: int, seconds: float) -> float:
    """Commits/s of one-row INSERTs in autocommit, `connections` clients in parallel."""
    insert = sql.SQL("INSERT INTO {} (v) VALUES (%s)").format(table)
    return await commit_rate(dsn, insert, lambda i, _k: [i], connections, seconds)


# -- phases 2-5: the runtime ---------------------------------------------------------------------


async def noop(i: int) -> None:
    return None


async def wait_until(conn: Any, name: str, status: str, target: int, within: float, every: float = 0.02) -> float:
    """Poll every `every` s until `target` runs of `name` have `status`; returns perf_counter() when seen.

    Raises:
        RuntimeError: a run failed, or the target was not reached within `within` s.
    """
    deadline = time.perf_counter() + within
    while True:
        rows = await (await conn.execute(
            "SELECT status, count(*) AS n FROM workflow WHERE name = %s GROUP BY status", [name]
        )).fetchall()
        counts = {r["status"]: r["n"] for r in rows}
        now = time.perf_counter()
        if counts.get("failed", 0) or counts.get("cancelled", 0):
            raise RuntimeError(f"{name}: some runs failed or were cancelled: {counts}")
        if counts.get(status, 0) >= target:
            return now
        if now > deadline:
            raise RuntimeError(f"{name}: only {counts} after {within:.0f}s (wanted {target} {status})")
        await anyio.sleep(every)


ENDED = ("run.completed", "run.failed", "run.cancelled")


def ended_run(payload: str) -> str | None:
    """The run id of an events-channel NOTIFY that reports a run's end, else None."""
    try:
        event = json.loads(payload)
    except ValueError:
        return None
    return event.get("workflow_id") if isinstance(event, dict) and event.get("type") in ENDED else None


async def enqueue(app: LongTail, n: int, mode: str) -> float:
    """Queue n `bench3` runs; returns the seconds it took."""
    start = time.perf_counter()
    if mode == "bulk":
        async with app.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO workflow (id, name, input, due_at) "
                "SELECT 'bench3-' || i, 'bench3', to_jsonb(i), now() FROM generate_series(1, %s) AS i",
                [n],
            )
    else:
        limiter = anyio.CapacityLimiter(16)

        async def one(i: int) -> None:
            async with limiter:
                await app.start("bench3", i, workflow_id=f"bench3-{i}")

        async with anyio.create_task_group() as tg:
            for i in range(1, n + 1):
                tg.start_soon(one, i)
    return time.perf_counter() - start


async def run_runtime(dsn: str, schema: str, args: argparse.Namespace) -> dict[str, Any]:
    app = LongTail(dsn, schema_name=schema, poll_seconds=args.poll_seconds, serve_mcp=False)

    @app.workflow("bench3")
    async def bench3(ctx: Any, i: int) -> int:
        for _ in range(STEPS_PER_WF):
            await ctx.run(noop, i)
        return i

    @app.workflow("bench_signal")
    async def bench_signal(ctx: Any) -> Any:
        return await ctx.wait_for_signal("go")

    out: dict[str, Any] = {}
    async with app:
        watch = await app.db.connect()  # a dedicated connection: the bench takes nothing from the worker's pool
        try:
            log(f"enqueueing {args.n} bench3 runs ({args.enqueue})")
            took = await enqueue(app, args.n, args.enqueue)
            out["enqueue_seconds"] = round(took, 3)
            out["enqueue_per_s"] = round(args.n / took, 1)
            await wait_until(watch, "bench3", "pending", args.n, 5)

            tuning = {k: v for k, v in (("flushers", args.flushers), ("claim_batch", args.claim_batch))
                      if v is not None}
            worker = app.worker(concurrency=args.concurrency, poll_seconds=args.poll_seconds, **tuning)
            out["flushers"], out["claim_batch"] = worker.flushers, worker.claim_batch
            step_waits: list[float] = []
            real_write = worker.journal.write

            async def timed_write(op: Any) -> None:  # how long a checkpoint waits for its group commit
                t = time.perf_counter()
                await real_write(op)
                if isinstance(op, StepWrite):
                    step_waits.append(time.perf_counter() - t)

            worker.journal.write = timed_write  # type: ignore[method-assign]

            async with anyio.create_task_group() as tg:
                log(f"draining with one worker (concurrency {args.concurrency})")
                cpu0 = cpu_seconds(args.pg_pid)
                server_t0 = (await (await watch.execute("SELECT clock_timestamp() AS t")).fetchone())["t"]
                t0 = time.perf_counter()
                await tg.start(worker.run)
                # A slow poll (10/s) only to know when to stop: the time itself comes from the rows.
                t1 = await wait_until(watch, "bench3", "completed", args.n, args.timeout, every=0.1)
                cpu1 = cpu_seconds(args.pg_pid)
                # completed_at is now() of the transaction that finished the run: a hair before its commit.
                last = (await (await watch.execute(
                    "SELECT max(completed_at) AS t FROM workflow WHERE name = 'bench3'")).fetchone())["t"]
                wall = (last - server_t0).total_seconds()
                out["drain_seconds_polled"] = round(t1 - t0, 3)
                py_cpu = cpu1[0] - cpu0[0]
                pg_cpu = None if cpu0[1] is None or cpu1[1] is None else cpu1[1] - cpu0[1]
                out["python_cpu_us_per_wf"] = round(py_cpu / args.n * 1e6, 1)
                out["postgres_cpu_us_per_wf"] = None if pg_cpu is None else round(pg_cpu / args.n * 1e6, 1)
                out["python_cpu_util"] = round(py_cpu / (t1 - t0), 2)  # cores busy during the drain
                out["postgres_cpu_util"] = None if pg_cpu is None else round(pg_cpu / (t1 - t0), 2)
                if pg_cpu is not None and cpu0[2] is not None and cpu1[2] is not None:  # anyone else on the machine?
                    out["other_cpu_util"] = round(max(0.0, cpu1[2] - cpu0[2] - py_cpu - pg_cpu) / (t1 - t0), 2)
                out["drain_seconds"] = round(wall, 3)
                out["wf_per_s"] = round(args.n / wall, 1)
                out["steps_per_s"] = round(args.n * STEPS_PER_WF / wall, 1)
                out["journal_writes"] = worker.journal.writes
                out["journal_batches"] = worker.journal.batches
                out["writes_per_commit"] = round(worker.journal.writes / max(1, worker.journal.batches), 2)
                out["checkpoint_wait_p50_ms"] = ms(pct(step_waits, 50))
                out["checkpoint_wait_p99_ms"] = ms(pct(step_waits, 99))

                row = await (await watch.execute(
                    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50,"
                    "       percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99, count(*) AS n"
                    " FROM (SELECT extract(epoch FROM s.completed_at - s.started_at)::float8 AS d"
                    "       FROM step s JOIN workflow w ON w.id = s.workflow_id"
                    "       WHERE w.name = 'bench3' AND s.kind = 'step') AS x"
                )).fetchone()
                out["step_rows"] = row["n"]
                out["step_overhead_p50_ms"] = ms(row["p50"])
                out["step_overhead_p99_ms"] = ms(row["p99"])

                out.update(await signals(app, watch, args.signals, args.timeout))
                tg.cancel_scope.cancel()
        finally:
            await watch.close()
    return out


async def signals(app: LongTail, watch: Any, k: int, within: float) -> dict[str, Any]:
    """Wake-up latency: signal each of k parked runs in turn and wait for it to complete.

    Two clocks per run, both from t0 just before app.signal(): until handle.result() returns (the
    caller's view; result() opens its own connection and LISTENs, in parallel with the wake-up),
    and until the run's `run.completed` event reaches a listener armed beforehand (the runtime alone).
    """
    if k <= 0:
        return {}
    log(f"parking {k} bench_signal runs on wait_for_signal('go')")
    ids = [f"bench-signal-{i}" for i in range(k)]
    for wid in ids:
        await app.start("bench_signal", workflow_id=wid)
    await wait_until(watch, "bench_signal", "waiting", k, within)
    await anyio.sleep(0.2)  # let the worker go idle

    done_at: dict[str, float] = {}
    arrived = {wid: anyio.Event() for wid in ids}
    listener = await app.db.connect()
    await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(app.db.events_channel)))

    async def listen() -> None:
        async for note in listener.notifies():
            wid = ended_run(note.payload)
            if wid in arrived and wid not in done_at:
                done_at[wid] = time.perf_counter()
                arrived[wid].set()

    total: list[float] = []
    notified: list[float] = []
    sent: list[float] = []
    log(f"signalling {k} runs one at a time")
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            await anyio.sleep(0.05)
            for i, wid in enumerate(ids):
                t0 = time.perf_counter()
                await app.signal(wid, "go", {"i": i})
                t1 = time.perf_counter()
                result = await app.handle(wid).result(timeout=within)
                t2 = time.perf_counter()
                if result != {"i": i}:
                    raise RuntimeError(f"{wid} returned {result!r}")
                with anyio.fail_after(5):
                    await arrived[wid].wait()
                sent.append(t1 - t0)
                total.append(t2 - t0)
                notified.append(done_at[wid] - t0)
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await listener.close()
    return {
        "signal_runs": k,
        "signal_wakeup_p50_ms": ms(pct(total, 50)),
        "signal_wakeup_p99_ms": ms(pct(total, 99)),
        "signal_to_event_p50_ms": ms(pct(notified, 50)),
        "signal_to_event_p99_ms": ms(pct(notified, 99)),
        "signal_send_p50_ms": ms(pct(sent, 50)),
    }


# -- report ----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {"nproc": cpus, "memory": mem, "python": platform.python_version(), "platform": platform.platform(),
            "code": code_revision()}


def code_revision() -> str:
    """The git commit the measured longtail_mcp comes from, marked when its files have local changes."""
    import subprocess

    import longtail_mcp

    root = Path(longtail_mcp.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "longtail_mcp"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head}{' + local changes' if dirty else ''}"


def server_facts(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        def show(name: str) -> str:
            return str(conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0])  # type: ignore[index]

        return {
            "postgres": show("server_version"),
            "fsync": show("fsync"),
            "synchronous_commit": show("synchronous_commit"),
            "wal_sync_method": show("wal_sync_method"),
            "shared_buffers": show("shared_buffers"),
        }


def fmt(v: Any, unit: str = "") -> str:
    """A figure for a summary line: n/a, 2 decimals below 100, else thousands separators."""
    if v is None:
        return "n/a"
    return f"{v:,.2f}{unit}" if isinstance(v, float) and abs(v) < 100 else f"{v:,.0f}{unit}"


def run_on_server(main_async: Any, args: Any) -> Any:
    """`main_async(admin_dsn, where, args)` against the benchmark's Postgres (DATABASE_URL, else a temp
    embedded one), with `args.pg_pid` set; SIGTERM unwinds, so a temp server is stopped and removed."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with server() as (admin_dsn, pg_pid, where):
        args.pg_pid = pg_pid
        return anyio.run(main_async, admin_dsn, where, args)


def report(result: dict[str, Any], as_json: bool, summary: Any) -> None:
    print(json.dumps(result, indent=2) if as_json else summary(result))


def summary(r: dict[str, Any]) -> str:
    f = fmt

    lines = [
        "",
        "=== longtail_mcp runtime benchmark ===",
        f"machine        nproc {r['nproc']}, {r['memory']}, Python {r['python']}, {r['platform']}",
        f"code           longtail_mcp at {r['code']}",
        f"postgres       {r['postgres']} ({r['server']}); fsync={r['fsync']}, "
        f"synchronous_commit={r['synchronous_commit']}, wal_sync_method={r['wal_sync_method']}",
        f"run            N={r['n']} x {STEPS_PER_WF}-step no-op workflows, concurrency {r['concurrency']}, "
        f"flushers {r['flushers']}, claim batch {r['claim_batch']}, poll {r['poll_seconds']} s, "
        f"enqueue {r['enqueue']} ({f(r['enqueue_per_s'])} starts/s)",
        "",
        f"baseline       {f(r['baseline_1conn_commits_per_s'])} commits/s (1 conn), "
        f"{f(r['baseline_8conn_commits_per_s'])} commits/s (8 conns)   [1-row INSERT, autocommit]",
        f"drain          {f(r['wf_per_s'])} wf/s, {f(r['steps_per_s'])} steps/s  ({r['drain_seconds']:.2f} s wall)",
        f"cpu in drain   Python {f(r['python_cpu_us_per_wf'], ' us')}/wf ({f(r['python_cpu_util'])} cores), "
        f"Postgres {f(r['postgres_cpu_us_per_wf'], ' us')}/wf ({f(r['postgres_cpu_util'])} cores), "
        f"others {r.get('other_cpu_util', 'n/a')} cores; load avg at start {r['loadavg_start']}",
        *([f"!! other processes used {r['other_cpu_util']} cores during the drain: figures are not clean"]
          if (r.get("other_cpu_util") or 0) > 0.2 else []),
        f"vs baseline    steps/s = {r['steps_per_baseline_commit']:.2f} x the 1-conn commit rate "
        f"({r['steps_per_baseline8_commit']:.2f} x the 8-conn rate)",
        f"group commit   {r['writes_per_commit']:.2f} writes per commit "
        f"({r['journal_writes']:,} writes in {r['journal_batches']:,} commits; "
        f"a run = {STEPS_PER_WF} steps + 1 finish)",
        f"step overhead  p50 {f(r['step_overhead_p50_ms'], ' ms')}, p99 {f(r['step_overhead_p99_ms'], ' ms')}"
        "   [step.completed_at - started_at]",
        f"checkpoint     p50 {f(r['checkpoint_wait_p50_ms'], ' ms')}, p99 {f(r['checkpoint_wait_p99_ms'], ' ms')}"
        "   [in-process wait in JournalWriter.write, incl. commit]",
    ]
    if r.get("signal_runs"):
        lines.append(
            f"signal wake-up p50 {f(r['signal_wakeup_p50_ms'], ' ms')}, p99 {f(r['signal_wakeup_p99_ms'], ' ms')}"
            f"   [{r['signal_runs']} runs: app.signal -> handle.result() returns]"
        )
        lines.append(
            f"  runtime only p50 {f(r['signal_to_event_p50_ms'], ' ms')}, "
            f"p99 {f(r['signal_to_event_p99_ms'], ' ms')}"
            f"   [app.signal -> run.completed event at a pre-armed listener; app.signal alone "
            f"p50 {f(r['signal_send_p50_ms'], ' ms')}]"
        )
    lines.append("")
    return "\n".join(lines)


async def main_async(admin_dsn: str, where: str, args: argparse.Namespace) -> dict[str, Any]:
    loadavg = round(os.getloadavg()[0], 2)
    with anyio.fail_after(args.timeout * 3), fresh_database(admin_dsn) as (dsn, schema):
        facts = server_facts(dsn)
        home = "public" if schema == "longtail" else schema  # a schema of our own when we got no database
        table = sql.Identifier(home, "bench_baseline")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(home)))
            conn.execute(sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, v int)").format(table))
        log(f"baseline: 1 connection, {args.baseline_seconds} s")
        b1 = await baseline(dsn, table, 1, args.baseline_seconds)
        log(f"baseline: 8 connections, {args.baseline_seconds} s")
        b8 = await baseline(dsn, table, 8, args.baseline_seconds)
        figures = await run_runtime(dsn, schema, args)
    return {
        **machine(),
        **facts,
        "server": where,
        "loadavg_start": loadavg,
        "n": args.n,
        "concurrency": args.concurrency,
        "poll_seconds": args.poll_seconds,
        "enqueue": args.enqueue,
        "baseline_1conn_commits_per_s": round(b1, 1),
        "baseline_8conn_commits_per_s": round(b8, 1),
        **figures,
        "steps_per_baseline_commit": round(figures["steps_per_s"] / b1, 3),
        "steps_per_baseline8_commit": round(figures["steps_per_s"] / b8, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="workflows to drain (default 2000)")
    parser.add_argument("--concurrency", type=int, default=200, help="worker concurrency (default 200)")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="worker poll interval (default 1.0)")
    parser.add_argument("--flushers", type=int, help="journal flusher tasks (default: the Worker's)")
    parser.add_argument("--claim-batch", type=int, help="runs claimed per query (default: the Worker's)")
    parser.add_argument("--signals", type=int, default=50, help="runs for the signal wake-up latency (default 50)")
    parser.add_argument("--baseline-seconds", type=float, default=3.0, help="length of each baseline (default 3)")
    parser.add_argument("--enqueue", choices=("api", "bulk"), default="api",
                        help="queue runs with app.start (16 at a time) or one bulk INSERT (default api)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="give up on a phase after this many seconds (on the whole run after 3x)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the summary")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    report(run_on_server(main_async, args), args.json, summary)


if __name__ == "__main__":
    main()

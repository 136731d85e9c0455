"""Safety-guard benchmark: what the system servers' guards cost, each against a plain baseline in the same run.

    python bench/guards.py [--seconds 3] [--concurrency 8] [--rounds 1] [--json]

Uses DATABASE_URL when set, else its own embedded Postgres (fsync on, synchronous_commit on) in a
temp dir, removed afterwards; every run gets a fresh database (bench/runtime.py's `server` and
`fresh_database`). Progress goes to stderr, the summary (or, with --json, the figures) to stdout.
Every loop stops after `--seconds` or `--max-ops` calls, whichever comes first. The only network
peer is 127.0.0.1: the embedded Postgres and the HTTP server this script starts.

Phases (each side is measured for `--seconds` after a short warm-up; with `--rounds` > 1 the sides
alternate and each side's median is reported):
  0. setup     a LongTail app (serve_mcp=False, no worker) on the fresh database with files_root in
               a temp dir and http_allow=["127.0.0.1"]; 1,000 workflow rows (one bulk INSERT, ANALYZE).
  1. db-query  `SELECT id, status FROM workflow LIMIT 50`, 1 task and then `--concurrency` tasks:
               app pool  `async with app.db.connection() as conn: await (await conn.execute(q)).fetchall()`
               run_sql   `sql.readonly.run_sql(app.db, SYSTEM, q, max_rows=1000, timeout_ms=5000)`: the
                         reader-role pool (at most 4 connections), a READ ONLY transaction, the statement
                         timeout, stream(), rows made JSON-able, rollback, then DISCARD ALL and
                         search_path on the connection's way back to the pool.
               calls/s, p50/p99 latency, and CPU per call in this process and in Postgres.
  2. files     write then read back 4 KiB of text, sequentially, always to the same name:
               plain          os.open a temp file (O_EXCL) in the directory, os.write, os.fsync,
                              os.replace onto the name, then open + read + close. In the event loop.
               plain+dirsync  the same, plus fsync of the directory after the rename, which
                              write_file also does (the same durability as the guarded side).
               guarded        `files.store.write_file(root, name, data)` then `read_file(root, name)`:
                              path checks (syntax, containment, deny globs), a walk from the root with
                              O_NOFOLLOW per component, a temp file + fsync + rename + directory fsync,
                              and for the read fstat, hard-link and size checks, UTF-8 decoding and
                              the MIME type; each of the four steps in a worker thread.
               ops/s (one op = a write and a read) and p50.
  3. http      one GET of a 512-byte text body from a uvicorn + Starlette server this process runs
               on 127.0.0.1 (same event loop), sequentially:
               reused client  one `httpx2.AsyncClient(trust_env=False)` for every request (keep-alive)
               fresh client   `async with httpx2.AsyncClient(trust_env=False) as c: await c.get(url)`
                              per request, as the guarded side opens one per hop
               guarded        `fetch.client.fetch(Policy.from_settings(settings), "GET", url)`: URL
                              parsing, header checks, the address check (127.0.0.1 is allow-listed),
                              a fresh client pinned to the checked address (sharing the process's one
                              TLS context, which the fresh-client side builds, with the CA bundle, on
                              every request), the body read with a cap.
               requests/s and p50. trust_env=False keeps proxy settings from sending a baseline
               request anywhere but 127.0.0.1 (the guarded side sets it too).

Ratios are guarded / baseline for calls/s (below 1: the guard costs throughput) and for p50 latency.
CPU used by other processes over each window is reported; windows above 0.2 cores are flagged.
"""

import argparse
import logging
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from humans import cpu_window  # bench/humans.py
from runtime import (  # bench/runtime.py
    cpu_seconds,
    filesystem_of,
    fmt,
    fresh_database,
    log,
    machine,
    ms,
    pct,
    report,
    run_on_server,
    server_facts,
)

from longtail_mcp import LongTail

QUERY = "SELECT id, status FROM workflow LIMIT 50"
QUERY_ROWS = 50
SEED_ROWS = 1000
FILE_BYTES = 4096
BODY = (b"longtail-mcp guard benchmark body " * 16)[:512]
WARMUP = 20  # calls per side before measuring (opens pools and connections)
NOISY = 0.2  # cores used by other processes above which a window is flagged

LABELS = {
    "app_pool_1": "app pool, 1 task", "run_sql_1": "run_sql, 1 task",
    "app_pool_c": "app pool, {c} tasks", "run_sql_c": "run_sql, {c} tasks",
    "plain": "plain", "plain_dirsync": "plain + dir fsync", "guarded": "guarded",
    "reused_client": "httpx2, reused client", "fresh_client": "httpx2, fresh client",
}


# -- measuring one side -----------------------------------------------------------------------------


async def measure(op: Callable[[], Awaitable[None]], tasks: int, args: argparse.Namespace) -> dict[str, Any]:
    """`op` from `tasks` concurrent tasks until `--seconds` pass or `--max-ops` calls start: rate, latency, CPU."""
    for _ in range(WARMUP):
        await op()
    latencies: list[float] = []
    started = 0
    deadline = time.perf_counter() + args.seconds

    async def loop() -> None:
        nonlocal started
        while started < args.max_ops and time.perf_counter() < deadline:
            started += 1
            t = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - t)

    before = cpu_seconds(args.pg_pid)
    t0 = time.perf_counter()
    with anyio.fail_after(args.seconds + 60):
        async with anyio.create_task_group() as tg:
            for _ in range(tasks):
                tg.start_soon(loop)
    wall = time.perf_counter() - t0
    cpu = cpu_window(before, cpu_seconds(args.pg_pid), wall, len(latencies), "w")
    return {"ops": len(latencies), "seconds": round(wall, 3), "ops_per_s": round(len(latencies) / wall, 1),
            "p50_ms": ms(pct(latencies, 50)), "p99_ms": ms(pct(latencies, 99)),
            "python_cpu_us_per_op": cpu["w_python_cpu_us_per_op"],
            "postgres_cpu_us_per_op": cpu["w_postgres_cpu_us_per_op"], "other_cores": cpu.get("w_other_cpu_util")}


async def run_phase(name: str, ops: dict[str, tuple[Callable[[], Awaitable[None]], int]],
                    args: argparse.Namespace) -> dict[str, Any]:
    """Every side of a phase `--rounds` times, alternating; each side's rounds and medians."""
    rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in ops}
    for i in range(args.rounds):
        for side, (op, tasks) in ops.items():
            log(f"{name}: {side}, {tasks} task(s), {args.seconds} s (round {i + 1}/{args.rounds})")
            x = await measure(op, tasks, args)
            log(f"  {x['ops_per_s']:,.0f}/s, p50 {x['p50_ms']} ms, p99 {x['p99_ms']} ms")
            rounds[side].append(x)
    out: dict[str, Any] = {}
    for side, xs in rounds.items():
        def med(key: str, xs: list[dict[str, Any]] = xs) -> Any:
            values = [x[key] for x in xs if x[key] is not None]
            return round(statistics.median(values), 2) if values else None

        out[side] = {**{k: med(k) for k in ("ops_per_s", "p50_ms", "p99_ms", "python_cpu_us_per_op",
                                              "postgres_cpu_us_per_op")},
                     "ops": sum(x["ops"] for x in xs), "tasks": ops[side][1],
                     "max_other_cores": max((x["other_cores"] or 0) for x in xs), "rounds": xs}
    return out


def ratio(phase: dict[str, Any], guarded: str, baseline: str) -> dict[str, float]:
    g, b = phase[guarded], phase[baseline]
    return {"ops_per_s": round(g["ops_per_s"] / b["ops_per_s"], 3), "p50": round(g["p50_ms"] / b["p50_ms"], 2)}


# -- phase 1: db-query --------------------------------------------------------------------------------


async def seed(app: LongTail) -> None:
    async with app.db.connection() as conn:
        await conn.execute(
            "INSERT INTO workflow (id, name, status, input) "
            "SELECT 'bench-' || g, 'bench', (ARRAY['completed', 'failed', 'cancelled', 'waiting'])[1 + g %% 4], "
            "       jsonb_build_object('n', g) "
            "FROM generate_series(1, %(n)s) AS g",
            {"n": SEED_ROWS},
        )
        await conn.execute("ANALYZE workflow")


async def db_phase(app: LongTail, args: argparse.Namespace) -> dict[str, Any]:
    from longtail_mcp.humans.identity import SYSTEM
    from longtail_mcp.sql.readonly import run_sql

    async def app_pool() -> None:
        async with app.db.connection() as conn:
            rows = await (await conn.execute(QUERY)).fetchall()
        if len(rows) != QUERY_ROWS:
            raise RuntimeError(f"app pool: {len(rows)} rows, expected {QUERY_ROWS}")

    async def guarded() -> None:
        out = await run_sql(app.db, SYSTEM, QUERY, max_rows=1000, timeout_ms=5000)
        if out["row_count"] != QUERY_ROWS or out["truncated"]:
            raise RuntimeError(f"run_sql: {out['row_count']} rows, expected {QUERY_ROWS}")

    c = args.concurrency
    return await run_phase("db-query", {"app_pool_1": (app_pool, 1), "run_sql_1": (guarded, 1),
                                        "app_pool_c": (app_pool, c), "run_sql_c": (guarded, c)}, args)


# -- phase 2: files -----------------------------------------------------------------------------------


def plain_write_read(directory: Path, data: bytes, *, dirsync: bool) -> None:
    """Write `data` atomically (temp file, fsync, rename; optionally fsync the directory), then read it back."""
    temp, final = directory / ".tmp-plain", directory / "bench.txt"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, final)
    if dirsync:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    with open(final, "rb") as f:
        if len(f.read()) != len(data):
            raise RuntimeError("plain: read back a different size")


async def files_phase(app: LongTail, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from longtail_mcp.files.guard import FileRoot
    from longtail_mcp.files.store import read_file, write_file

    root = FileRoot.from_settings(app.settings)
    data = (b"0123456789abcdef" * (FILE_BYTES // 16 + 1))[:FILE_BYTES]
    text = data.decode()
    plain_dir = work / "plain"
    plain_dir.mkdir()

    async def plain() -> None:
        plain_write_read(plain_dir, data, dirsync=False)

    async def plain_dirsync() -> None:
        plain_write_read(plain_dir, data, dirsync=True)

    async def guarded() -> None:
        written = await write_file(root, "bench.txt", data)
        content = await read_file(root, "bench.txt")
        if written.size != FILE_BYTES or content.content != text:
            raise RuntimeError("files guard: read back something else")

    return await run_phase("files", {"plain": (plain, 1), "plain_dirsync": (plain_dirsync, 1),
                                     "guarded": (guarded, 1)}, args)


# -- phase 3: http-fetch ------------------------------------------------------------------------------


def site() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def small(_: Request) -> Response:
        return Response(BODY, media_type="text/plain; charset=utf-8")

    return Starlette(routes=[Route("/small", small)])


async def http_phase(app: LongTail, args: argparse.Namespace) -> dict[str, Any]:
    import httpx2
    import uvicorn

    from longtail_mcp.fetch.client import Policy, fetch

    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and a
    # socket.socket() says 0, so without it every response's body waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/small"
    policy = Policy.from_settings(app.settings)
    web = uvicorn.Server(uvicorn.Config(site(), log_level="warning", lifespan="off"))

    def check(status: int, body: bytes, who: str) -> None:
        if status != 200 or body != BODY:
            raise RuntimeError(f"{who}: status {status}, {len(body)} bytes")

    try:
        async with anyio.create_task_group() as tg, httpx2.AsyncClient(trust_env=False) as shared:
            tg.start_soon(web.serve, [sock])
            with anyio.fail_after(30):
                while not web.started:  # noqa: ASYNC110  # uvicorn offers a flag, not an event
                    await anyio.sleep(0.01)
            log(f"http: uvicorn + Starlette serving {url}")

            async def reused_client() -> None:
                r = await shared.get(url)
                check(r.status_code, r.content, "reused client")

            async def fresh_client() -> None:
                async with httpx2.AsyncClient(trust_env=False) as http:
                    r = await http.get(url)
                check(r.status_code, r.content, "fresh client")

            async def guarded() -> None:
                got = await fetch(policy, "GET", url)
                check(got.status, got.body, "fetch guard")

            try:
                return await run_phase("http", {"reused_client": (reused_client, 1),
                                                "fresh_client": (fresh_client, 1), "guarded": (guarded, 1)}, args)
            finally:
                web.should_exit = True
    finally:
        sock.close()


# -- report -------------------------------------------------------------------------------------------


def table(r: dict[str, Any], phase: str, unit: str) -> list[str]:
    lines = [f"  {'side':<27}{unit + '/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/' + unit + ': py':>18}{'pg':>8}"
             f"{'other cores':>13}"]
    for side, x in r[phase].items():
        label = LABELS[side].format(c=r["concurrency"])
        noisy = " !" if x["max_other_cores"] > NOISY else ""
        lines.append(f"  {label:<27}{fmt(x['ops_per_s']):>10}{fmt(x['p50_ms']):>9}{fmt(x['p99_ms']):>9}"
                     f"{fmt(x['python_cpu_us_per_op']):>18}{fmt(x['postgres_cpu_us_per_op']):>8}"
                     f"{fmt(x['max_other_cores']):>13}{noisy}")
    return lines


def summary(r: dict[str, Any]) -> str:
    c, q = r["concurrency"], r["ratios"]

    def rt(name: str) -> str:
        return f"{q[name]['ops_per_s']:.3f}x throughput, p50 {q[name]['p50']:.2f}x"

    lines = [
        "",
        "=== longtail_mcp safety guards benchmark ===",
        f"machine        nproc {r['nproc']}, {r['memory']}, Python {r['python']}, {r['platform']}",
        f"code           longtail_mcp at {r['code']}; httpx2 {r['httpx2_version']}, uvicorn {r['uvicorn_version']}",
        f"postgres       {r['postgres']} ({r['server']}); fsync={r['fsync']}, "
        f"synchronous_commit={r['synchronous_commit']}",
        f"run            {r['seconds']} s per side, {r['rounds']} round(s); app pool max {r['pool_max']}, "
        f"reader pool max 4; files in a temp dir on {r['files_fs']}",
        "",
        f"db-query       {QUERY!r} over {SEED_ROWS:,} rows",
        *table(r, "db", "call"),
        f"  run_sql / app pool: 1 task {rt('db_1')}; {c} tasks {rt('db_c')}",
        "",
        f"files          write {FILE_BYTES} bytes (temp file, fsync, rename) then read them back",
        *table(r, "files", "op"),
        f"  guarded / plain: {rt('files_plain')}; guarded / plain + dir fsync: {rt('files_dirsync')}",
        "",
        f"http-fetch     GET of {len(BODY)} bytes from uvicorn + Starlette on 127.0.0.1 (same process)",
        *table(r, "http", "req"),
        f"  guarded / fresh client: {rt('http_fresh')}; guarded / reused client: {rt('http_reused')}",
    ]
    worst = max(x["max_other_cores"] for phase in ("db", "files", "http") for x in r[phase].values())
    if worst > NOISY:
        lines.append(f"!! other processes used up to {worst} cores in a window (marked !): those figures are not clean")
    lines.append("")
    return "\n".join(lines)


async def main_async(admin_dsn: str, where: str, args: argparse.Namespace) -> dict[str, Any]:
    loadavg = round(os.getloadavg()[0], 2)
    work = Path(tempfile.mkdtemp(prefix="lt-bench-guards-"))
    try:
        with anyio.fail_after(args.timeout), fresh_database(admin_dsn) as (dsn, schema):
            facts = server_facts(dsn)
            app = LongTail(dsn, schema_name=schema, serve_mcp=False, files_root=work / "root",
                           http_allow=["127.0.0.1"])
            async with app:
                log(f"setup: {SEED_ROWS:,} workflow rows")
                await seed(app)
                db = await db_phase(app, args)
                files = await files_phase(app, work, args)
                http = await http_phase(app, args)
                pool_max = app.db.pool.max_size
        files_fs = filesystem_of(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from importlib.metadata import version

    return {
        **machine(),
        **facts,
        "server": where,
        "loadavg_start": loadavg,
        "httpx2_version": version("httpx2"),
        "uvicorn_version": version("uvicorn"),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "pool_max": pool_max,
        "files_fs": files_fs,
        "db": db,
        "files": files,
        "http": http,
        "ratios": {
            "db_1": ratio(db, "run_sql_1", "app_pool_1"),
            "db_c": ratio(db, "run_sql_c", "app_pool_c"),
            "files_plain": ratio(files, "guarded", "plain"),
            "files_dirsync": ratio(files, "guarded", "plain_dirsync"),
            "http_fresh": ratio(http, "guarded", "fresh_client"),
            "http_reused": ratio(http, "guarded", "reused_client"),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each side's window (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent tasks for db-query (default 8)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per side, alternating (default 1)")
    parser.add_argument("--max-ops", type=int, default=200_000, help="most calls per window (default 200000)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on the whole run after this (s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the summary")
    args = parser.parse_args()
    if args.seconds <= 0 or args.concurrency < 1 or args.rounds < 1 or args.max_ops < 1:
        parser.error("need --seconds > 0 and --concurrency, --rounds, --max-ops >= 1")
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    report(run_on_server(main_async, args), args.json, summary)


if __name__ == "__main__":
    main()

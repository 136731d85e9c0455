"""Human-queue benchmark: concurrent claimers over a deep queue of escalations, and resolve -> run continues.

    python bench/humans.py [--pending 10000] [--claimers 50] [--waits 50] [--json]

Targets (the issue): >= 2,000 claims/s with 50 concurrent claimers over 10,000 pending escalations on
2 cores, and p50 <= 50 ms from a resolve to the waiting run continuing.

Uses DATABASE_URL when set, else its own embedded Postgres (fsync on, synchronous_commit on) in a
temp dir, removed afterwards; every run gets a fresh database (bench/runtime.py's `server` and
`fresh_database`). Progress goes to stderr, the summary (or, with --json, the figures) to stdout.

Phases:
  1. baseline  one-row UPDATE + commit (autocommit) on 1 connection, then on 8 (each client its own
               rows, so no lock waits): the machine's raw commit rate, the same-run comparison point.
  2. setup     role `reviewer` and `--claimers` member accounts (identity.create_role/create_account/
               set_membership as SYSTEM; principals from identity.get_principal).
  Then, for each claim mode (--mode both: "list", then "next"):
  3. fill      `--pending` pending escalations for `reviewer` in ONE bulk INSERT (setup only: no audit
               records or events, unlike insert_escalation), then VACUUM ANALYZE, as autovacuum would
               after a bulk load.
  4. claim     `--claimers` concurrent tasks, one principal each, all through the app's pool:
               list  inbox.available_work(limit=--page), then escalations.claim on one of the
                     first `--spread` items picked at random (on Conflict the next of them, then a new
                     page), until available_work returns nothing or `--list-seconds` have passed
                     (list-then-claim is too slow to empty 10,000 within a short benchmark).
               next  escalations.claim_next (one SKIP LOCKED statement picks and claims) until it
                     returns None.
               Successful claims/s over the wall time; for list, Conflicts and available_work calls.
  5. resolve   the same tasks resolve every escalation they claimed (escalations.resolve with
               {"approved": True}), then the batch is deleted: resolves/s.
  6. continue  one in-process worker; `--waits` runs of a workflow that awaits
               ctx.escalate("reviewer", "approve?") and returns the decision park as `waiting`; then,
               one at a time with the worker idle: claim (untimed), subscribe to the run's
               run.completed (untimed), t0, escalations.resolve, then handle.result(). Reported:
               t0 -> run.completed event (the run continued and finished), t0 -> result() returned,
               and the resolve call alone.

CPU (this process, the embedded Postgres, everyone else) is measured over each claim and resolve phase;
runs where other processes used more than 0.2 cores are flagged.
"""

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime import (  # bench/runtime.py
    commit_rate,
    cpu_seconds,
    fmt,
    fresh_database,
    log,
    machine,
    ms,
    pct,
    report,
    run_on_server,
    server_facts,
    wait_until,
)

from longtail_mcp import LongTail
from longtail_mcp.errors import Conflict
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity, inbox
from longtail_mcp.humans.identity import SYSTEM, Principal

ROLE = "reviewer"
CLAIMS_TARGET = 2000.0  # claims/s, 50 claimers over 10,000 pending, 2 cores
CONTINUE_TARGET_MS = 50.0  # p50, resolve -> the waiting run continues


# -- phase 1: raw commit rate ----------------------------------------------------------------------


async def update_baseline(dsn: str, table: sql.Composable, connections: int, seconds: float,
                          rows_per_client: int = 100) -> float:
    """Commits/s of one-row UPDATEs in autocommit, `connections` clients in parallel, each on its own rows."""
    update = sql.SQL("UPDATE {} SET v = v + 1 WHERE id = %s").format(table)
    return await commit_rate(dsn, update, lambda i, k: [i * rows_per_client + k % rows_per_client],
                             connections, seconds)


async def baselines(dsn: str, schema: str, seconds: float) -> tuple[float, float]:
    home = "public" if schema == "longtail" else schema  # a schema of our own when we got no database
    table = sql.Identifier(home, "bench_update_baseline")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(home)))
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)").format(table))
        conn.execute(sql.SQL("INSERT INTO {} (id) SELECT generate_series(0, 999)").format(table))
        conn.execute(sql.SQL("ANALYZE {}").format(table))
    log(f"baseline: 1-row UPDATE, 1 connection, {seconds} s")
    b1 = await update_baseline(dsn, table, 1, seconds)
    log(f"baseline: 1-row UPDATE, 8 connections, {seconds} s")
    b8 = await update_baseline(dsn, table, 8, seconds)
    return b1, b8


# -- phase 2: people and a deep queue --------------------------------------------------------------


async def setup_people(app: LongTail, claimers: int) -> list[Principal]:
    await identity.create_role(app.db, SYSTEM, ROLE, "benchmark reviewers")
    people = []
    for i in range(claimers):
        account = f"rev{i:03d}"
        await identity.create_account(app.db, SYSTEM, account, f"Reviewer {i}")
        await identity.set_membership(app.db, SYSTEM, ROLE, account)
        people.append(await identity.get_principal(app.db, account))
    return people


async def fill_queue(app: LongTail, pending: int, batch: str) -> None:
    """`pending` pending escalations for ROLE, 1 ms apart (setup: one bulk INSERT, so no audit records or events).

    Then VACUUM ANALYZE, what autovacuum does after a bulk load (and, for the second batch, after the
    first batch was resolved), so the plans are the steady-state ones.
    """
    async with app.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO escalation (id, type, role, message, data, priority, created_by, created_at, updated_at) "
            "SELECT %(batch)s || '-' || i, 'review', %(role)s, 'approve item ' || i, jsonb_build_object('item', i), "
            "       3, 'system', now() - (%(n)s - i) * interval '1 millisecond', now() "
            "FROM generate_series(1, %(n)s) AS i",
            {"role": ROLE, "n": pending, "batch": batch},
        )
    async with app.db.connection() as conn:
        await conn.execute("VACUUM ANALYZE escalation")


# -- phases 3 and 4: claim, resolve ----------------------------------------------------------------


def cpu_window(before: tuple[Any, ...], after: tuple[Any, ...], wall: float, n: int, prefix: str) -> dict[str, Any]:
    """Cores busy over the window (this process, the embedded Postgres, everyone else) and CPU µs per operation."""
    py = after[0] - before[0]
    pg = None if before[1] is None or after[1] is None else after[1] - before[1]
    out: dict[str, Any] = {f"{prefix}_python_cpu_util": round(py / wall, 2),
                           f"{prefix}_postgres_cpu_util": None if pg is None else round(pg / wall, 2),
                           f"{prefix}_python_cpu_us_per_op": round(py / max(1, n) * 1e6),
                           f"{prefix}_postgres_cpu_us_per_op": None if pg is None else round(pg / max(1, n) * 1e6)}
    if pg is not None and before[2] is not None and after[2] is not None:
        out[f"{prefix}_other_cpu_util"] = round(max(0.0, after[2] - before[2] - py - pg) / wall, 2)
    return out


async def claim_all(app: LongTail, people: list[Principal], mode: str,
                    args: argparse.Namespace) -> tuple[dict[str, Any], list[list[str]]]:
    """Every claimer claims until the queue is empty; returns figures (keys prefixed by `mode`) and each one's ids.

    mode "list": inbox.available_work, then escalations.claim on one of the first --spread items
    (random), the next of them on Conflict, a fresh page when all collided.
    mode "next": escalations.claim_next (one SKIP LOCKED statement picks and claims) until it returns None.
    """
    claimed: list[list[str]] = [[] for _ in people]
    conflicts = [0] * len(people)
    pages = [0] * len(people)
    claim_lat: list[float] = []
    list_lat: list[float] = []
    rng = random.Random(args.seed)
    go = anyio.Event()
    stop_at = float("inf")

    async def lister(i: int) -> None:
        me = people[i]
        await go.wait()
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            items = await inbox.available_work(app.db, me, limit=args.page)
            list_lat.append(time.perf_counter() - t)
            pages[i] += 1
            if not items:
                return
            head = items[: args.spread]
            rng.shuffle(head)
            for item in head:
                t = time.perf_counter()
                try:
                    await esc.claim(app.db, me, item["id"])
                except Conflict:
                    conflicts[i] += 1
                    continue
                finally:
                    claim_lat.append(time.perf_counter() - t)
                claimed[i].append(item["id"])
                break

    async def taker(i: int) -> None:
        me = people[i]
        await go.wait()
        while True:
            t = time.perf_counter()
            row = await esc.claim_next(app.db, me)
            claim_lat.append(time.perf_counter() - t)
            if row is None:
                return
            claimed[i].append(row["id"])

    cpu0 = cpu_seconds(args.pg_pid)
    async with anyio.create_task_group() as tg:
        for i in range(len(people)):
            tg.start_soon(lister if mode == "list" else taker, i)
        await anyio.sleep(0.05)
        t0 = time.perf_counter()
        if args.list_seconds > 0:
            stop_at = t0 + args.list_seconds  # list-then-claim may be too slow to empty the queue in a bench
        go.set()
    wall = time.perf_counter() - t0
    cpu1 = cpu_seconds(args.pg_pid)
    n = sum(len(c) for c in claimed)
    if len(set().union(*claimed)) != n:
        raise RuntimeError(f"{mode}: some escalation was claimed twice")
    attempts = n + sum(conflicts)
    out: dict[str, Any] = {
        "claimed": n,
        "queue_emptied": n == args.pending,
        "claim_seconds": round(wall, 3),
        "claims_per_s": round(n / wall, 1),
        "claim_call_p50_ms": ms(pct(claim_lat, 50)),
        "claim_call_p99_ms": ms(pct(claim_lat, 99)),
        "claims_per_claimer_min": min(len(c) for c in claimed),
        "claims_per_claimer_max": max(len(c) for c in claimed),
        **cpu_window(cpu0, cpu1, wall, n, "claim"),
    }
    if mode == "list":
        out.update({
            "conflicts": sum(conflicts),
            "conflict_ratio": round(sum(conflicts) / max(1, attempts), 3),  # of claim attempts
            "available_work_calls": sum(pages),
            "available_work_p50_ms": ms(pct(list_lat, 50)),
            "available_work_p99_ms": ms(pct(list_lat, 99)),
        })
    return {f"{mode}_{k}": v for k, v in out.items()}, claimed


async def resolve_all(app: LongTail, people: list[Principal], claimed: list[list[str]], prefix: str,
                      args: argparse.Namespace) -> dict[str, Any]:
    """Each claimer resolves what it claimed, one after another; all claimers at once."""
    lat: list[float] = []
    go = anyio.Event()

    async def resolver(i: int) -> None:
        await go.wait()
        for eid in claimed[i]:
            t = time.perf_counter()
            await esc.resolve(app.db, people[i], eid, {"approved": True})
            lat.append(time.perf_counter() - t)

    cpu0 = cpu_seconds(args.pg_pid)
    async with anyio.create_task_group() as tg:
        for i in range(len(people)):
            tg.start_soon(resolver, i)
        await anyio.sleep(0.05)
        t0 = time.perf_counter()
        go.set()
    wall = time.perf_counter() - t0
    cpu1 = cpu_seconds(args.pg_pid)
    out = {
        "resolved": len(lat),
        "resolve_seconds": round(wall, 3),
        "resolves_per_s": round(len(lat) / wall, 1),
        "resolve_call_p50_ms": ms(pct(lat, 50)),
        "resolve_call_p99_ms": ms(pct(lat, 99)),
        **cpu_window(cpu0, cpu1, wall, len(lat), "resolve"),
    }
    return {f"{prefix}_{k}": v for k, v in out.items()}


# -- phase 5: resolve -> the waiting run continues -------------------------------------------------


async def first_event(events: Any, seen: list[float], arrived: anyio.Event) -> None:
    """Note when the first event of a subscription arrives."""
    async for _event in events:
        seen.append(time.perf_counter())
        arrived.set()
        return


async def resolve_to_continue(app: LongTail, reviewer: Principal, k: int, within: float, poll: float) -> dict[str, Any]:
    if k <= 0:
        return {}
    watch = await app.db.connect()
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(app.worker(poll_seconds=poll).run)
            log(f"parking {k} runs on ctx.escalate({ROLE!r}, 'approve?')")
            ids = [f"gate-{i}" for i in range(k)]
            for wid in ids:
                await app.start("bench_gate", wid, workflow_id=wid)
            await wait_until(watch, "bench_gate", "waiting", k, within)
            rows = await (await watch.execute(
                "SELECT id, workflow_id FROM escalation WHERE workflow_id = ANY(%s) AND status = 'pending'", [ids]
            )).fetchall()
            escalation_of = {r["workflow_id"]: r["id"] for r in rows}
            if len(escalation_of) != k:
                raise RuntimeError(f"expected {k} pending escalations for the parked runs, found {len(escalation_of)}")
            await anyio.sleep(0.2)  # let the worker go idle

            to_event: list[float] = []
            to_result: list[float] = []
            resolve_only: list[float] = []
            log(f"resolving {k} escalations one at a time")
            for wid in ids:
                eid = escalation_of[wid]
                await esc.claim(app.db, reviewer, eid)  # what a person does first; not timed
                arrived = anyio.Event()
                seen: list[float] = []
                # subscribe() has run LISTEN when it returns: the run's run.completed cannot be missed
                async with app.events.subscribe(["run.completed"], workflow_id=wid) as events, \
                        anyio.create_task_group() as inner:
                    inner.start_soon(first_event, events, seen, arrived)
                    await anyio.lowlevel.checkpoint()  # the listener task is waiting on its connection
                    t0 = time.perf_counter()
                    await esc.resolve(app.db, reviewer, eid, {"approved": True})
                    t1 = time.perf_counter()
                    result = await app.handle(wid).result(timeout=within)
                    t2 = time.perf_counter()
                    if result != {"approved": True}:
                        raise RuntimeError(f"{wid} returned {result!r}")
                    with anyio.fail_after(5):
                        await arrived.wait()
                resolve_only.append(t1 - t0)
                to_result.append(t2 - t0)
                to_event.append(seen[0] - t0)
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await watch.close()
    return {
        "waits": k,
        "continue_event_p50_ms": ms(pct(to_event, 50)),
        "continue_event_p99_ms": ms(pct(to_event, 99)),
        "continue_result_p50_ms": ms(pct(to_result, 50)),
        "continue_result_p99_ms": ms(pct(to_result, 99)),
        "resolve_alone_p50_ms": ms(pct(resolve_only, 50)),
        "resolve_alone_p99_ms": ms(pct(resolve_only, 99)),
    }


# -- report ----------------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "MISSED")


MODES = {"list": "available_work + claim", "next": "claim_next"}


def summary(r: dict[str, Any]) -> str:
    f = fmt

    m = r["machine"]
    b1 = r["baseline_1conn_commits_per_s"]
    lines = [
        "",
        "=== longtail_mcp human-queue benchmark ===",
        f"machine        nproc {m['nproc']}, {m['memory']}, Python {m['python']}, {m['platform']}",
        f"code           longtail_mcp at {m['code']}",
        f"postgres       {r['postgres']} ({r['server']}); fsync={r['fsync']}, "
        f"synchronous_commit={r['synchronous_commit']}, wal_sync_method={r['wal_sync_method']}",
        f"run            {r['pending']:,} pending escalations per claim phase (bulk INSERT + VACUUM ANALYZE), "
        f"{r['claimers']} claimers; pool max {r['pool_max']} connections; load avg at start {r['loadavg_start']}",
        "",
        f"baseline       {f(b1)} commits/s (1 conn), "
        f"{f(r['baseline_8conn_commits_per_s'])} commits/s (8 conns)   [1-row UPDATE, autocommit]",
    ]
    for mode in r["modes"]:
        g = {k[len(mode) + 1:]: v for k, v in r.items() if k.startswith(mode + "_")}
        how = MODES[mode] + (f" (page {r['page']}, random among first {r['spread']})" if mode == "list" else "")
        lines += [
            "",
            f"claims         {f(g['claims_per_s'])} claims/s via {how}   "
            f"target >= {CLAIMS_TARGET:,.0f}: {verdict(g['claims_target_met'])}",
            f"               {g['claimed']:,} in {g['claim_seconds']:.2f} s"
            f"{'' if g['queue_emptied'] else ' (stopped at --list-seconds; queue not emptied)'} = "
            f"{g['claims_per_s'] / b1:.2f} x the 1-conn commit rate; per claimer {g['claims_per_claimer_min']}-"
            f"{g['claims_per_claimer_max']}",
        ]
        if mode == "list":
            lines += [
                f"  conflicts    {g['conflicts']:,} ({g['conflict_ratio'] * 100:.1f}% of claim attempts); "
                f"{g['available_work_calls']:,} available_work calls, p50 {f(g['available_work_p50_ms'], ' ms')}, "
                f"p99 {f(g['available_work_p99_ms'], ' ms')}",
            ]
        lines += [
            f"  latency      {'claim' if mode == 'list' else 'claim_next'} call "
            f"p50 {f(g['claim_call_p50_ms'], ' ms')}, "
            f"p99 {f(g['claim_call_p99_ms'], ' ms')}   (incl. waiting for a pooled connection)",
            f"  cpu          Python {f(g['claim_python_cpu_util'])} cores, Postgres {f(g['claim_postgres_cpu_util'])} "
            f"cores, others {g.get('claim_other_cpu_util', 'n/a')} cores; per claim Python "
            f"{f(g['claim_python_cpu_us_per_op'], ' us')}, Postgres {f(g['claim_postgres_cpu_us_per_op'], ' us')}",
            f"resolves       {f(g['resolves_per_s'])} resolves/s  ({g['resolved']:,} in "
            f"{g['resolve_seconds']:.2f} s); resolve p50 {f(g['resolve_call_p50_ms'], ' ms')}, "
            f"p99 {f(g['resolve_call_p99_ms'], ' ms')}",
            f"  cpu          Python {f(g['resolve_python_cpu_util'])} cores, Postgres "
            f"{f(g['resolve_postgres_cpu_util'])} cores, others {g.get('resolve_other_cpu_util', 'n/a')} "
            f"cores; per resolve Python {f(g['resolve_python_cpu_us_per_op'], ' us')}, "
            f"Postgres {f(g['resolve_postgres_cpu_us_per_op'], ' us')}",
        ]
        for key in ("claim_other_cpu_util", "resolve_other_cpu_util"):
            if (g.get(key) or 0) > 0.2:
                lines.append(f"!! other processes used {g[key]} cores during this phase: figures are not clean")
    if r.get("waits"):
        lines += [
            "",
            f"resolve->run   p50 {f(r['continue_event_p50_ms'], ' ms')}, p99 {f(r['continue_event_p99_ms'], ' ms')}"
            f"   [{r['waits']} runs: resolve -> run.completed at a pre-armed subscriber]   "
            f"target p50 <= {CONTINUE_TARGET_MS:.0f} ms: {verdict(r['continue_target_met'])}",
            f"  to result()  p50 {f(r['continue_result_p50_ms'], ' ms')}, p99 {f(r['continue_result_p99_ms'], ' ms')}"
            f"   [resolve -> handle.result() returns]; the resolve call alone "
            f"p50 {f(r['resolve_alone_p50_ms'], ' ms')}",
        ]
    lines.append("")
    return "\n".join(lines)


async def main_async(admin_dsn: str, where: str, args: argparse.Namespace) -> dict[str, Any]:
    loadavg = round(os.getloadavg()[0], 2)
    modes = ["list", "next"] if args.mode == "both" else [args.mode]
    if "next" in modes and not hasattr(esc, "claim_next"):
        log("this longtail_mcp has no escalations.claim_next: measuring list-then-claim only")
        modes.remove("next")
    with anyio.fail_after(args.timeout), fresh_database(admin_dsn) as (dsn, schema):
        facts = server_facts(dsn)
        b1, b8 = await baselines(dsn, schema, args.baseline_seconds)
        app = LongTail(dsn, schema_name=schema, poll_seconds=args.poll_seconds, serve_mcp=False)

        @app.workflow("bench_gate")
        async def bench_gate(ctx: Any, item: str) -> Any:
            decision = await ctx.escalate(ROLE, "approve?", {"item": item})
            return decision

        out: dict[str, Any] = {}
        async with app:
            out["pool_max"] = app.db.pool.max_size
            log(f"setup: role {ROLE!r} and {args.claimers} member accounts")
            people = await setup_people(app, args.claimers)
            for mode in modes:
                log(f"setup: {args.pending:,} pending escalations (bulk INSERT), VACUUM ANALYZE")
                await fill_queue(app, args.pending, f"esc-{mode}")
                log(f"claim ({MODES[mode]}): {args.claimers} claimers until the queue is empty")
                figures, claimed = await claim_all(app, people, mode, args)
                out.update(figures)
                out[f"{mode}_claims_target_met"] = figures[f"{mode}_claims_per_s"] >= CLAIMS_TARGET
                n = figures[f"{mode}_claimed"]
                if mode == "next" and n != args.pending:
                    raise RuntimeError(f"claim_next returned None after {n} of {args.pending} escalations")
                log(f"claimed {n:,} of {args.pending:,} at {figures[f'{mode}_claims_per_s']:,}/s; resolving them")
                out.update(await resolve_all(app, people, claimed, mode, args))
                async with app.db.connection() as conn:  # the next mode starts from the same table state
                    await conn.execute("DELETE FROM escalation WHERE id LIKE %s", [f"esc-{mode}-%"])
            out.update(await resolve_to_continue(app, people[0], args.waits, args.phase_timeout, args.poll_seconds))
    return {
        "machine": machine(),
        **facts,
        "server": where,
        "loadavg_start": loadavg,
        "pending": args.pending,
        "claimers": args.claimers,
        "modes": modes,
        "page": args.page,
        "spread": args.spread,
        "baseline_1conn_commits_per_s": round(b1, 1),
        "baseline_8conn_commits_per_s": round(b8, 1),
        **out,
        "claims_target_per_s": CLAIMS_TARGET,
        "continue_target_p50_ms": CONTINUE_TARGET_MS,
        "continue_target_met": None if not out.get("waits") else out["continue_event_p50_ms"] <= CONTINUE_TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=10_000, help="pending escalations to claim (default 10000)")
    parser.add_argument("--claimers", type=int, default=50, help="concurrent claimers, one account each (default 50)")
    parser.add_argument("--waits", type=int, default=50, help="runs for the resolve -> continue latency (default 50)")
    parser.add_argument("--mode", choices=("list", "next", "both"), default="both",
                        help="claim by available_work + claim (list), by claim_next (next), or both in turn (default)")
    parser.add_argument("--list-seconds", type=float, default=20.0,
                        help="stop list-then-claim after this many seconds even if work is left (0: never; default 20)")
    parser.add_argument("--page", type=int, default=10, help="available_work limit per call (default 10)")
    parser.add_argument("--spread", type=int, default=5, help="pick at random among this many of a page (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the picks (default 1)")
    parser.add_argument("--baseline-seconds", type=float, default=3.0, help="length of each baseline (default 3)")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="worker poll interval (default 1.0)")
    parser.add_argument("--phase-timeout", type=float, default=60.0, help="give up waiting on runs after this (s)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on the whole run after this (s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the summary")
    args = parser.parse_args()
    if args.claimers < 1 or args.pending < 1 or args.page < 1 or not 1 <= args.spread <= args.page:
        parser.error("need --claimers, --pending, --page >= 1 and 1 <= --spread <= --page")
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    report(run_on_server(main_async, args), args.json, summary)


if __name__ == "__main__":
    main()

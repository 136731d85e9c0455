"""Pipeline benchmark: a 5-step pipeline against the same 5 tool calls made by a hand-written workflow.

    python bench/pipelines.py [--runs 200] [--latency-runs 30] [--concurrency 50] [--json]

Uses DATABASE_URL when set, else its own embedded Postgres (fsync on, synchronous_commit on) in a
temp dir, removed afterwards; every run gets a fresh database (bench/runtime.py's `server` and
`fresh_database`). Progress goes to stderr, the summary (or, with --json, the figures) to stdout.

Both sides make the same five calls of `files/read_file` on a 64-byte file, each call reading the path
the previous one returned (a chain: no step can start before the one it reads has finished):
  direct    a workflow `direct5` written in Python: five `await ctx.call_tool("files/read_file", ...)`.
  pipeline  the pipeline `read5` (five steps, step k's args `{path: "{{ steps.s<k-1>.path }}"}`), run by
            the `pipeline` workflow: the same journaled tool steps, plus loading the pinned definition,
            rendering each step's arguments and checking the output against its schema.

Phases (one in-process worker; each side's phase alternates with the other's when --rounds > 1 and
each side's median is reported):
  1. latency     `--latency-runs` runs one after the other (start, then wait for the result): p50 of
                 start -> result. Per-step overhead = (pipeline p50 - direct p50) / 5.
  2. throughput  `--runs` runs started at once (16 starters), drained by the worker at `--concurrency`:
                 runs/s from the first start to the last completion.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

# bench/ holds mcp.py, which would shadow the SDK the family's tools import: bench/ goes last on sys.path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
from runtime import fmt, fresh_database, log, machine, report, run_on_server, server_facts  # noqa: E402

from longtail_mcp import Context, LongTail  # noqa: E402
from longtail_mcp.humans.identity import SYSTEM  # noqa: E402
from longtail_mcp.pipelines import service, store  # noqa: E402

STEPS = 5
PIPELINE = "\n".join([
    "name: read5",
    "description: Read a file five times, each read following the path the previous one returned",
    "input_schema: {type: object, required: [path], properties: {path: {type: string}}}",
    "output_schema: {type: object, properties: {size: {type: integer}}}",
    "steps:",
    "  - id: s1",
    "    tool: files/read_file",
    "    args: {path: '{{ inputs.path }}'}",
    *[f"  - id: s{k}\n    tool: files/read_file\n    args: {{path: '{{{{ steps.s{k - 1}.path }}}}'}}"
      for k in range(2, STEPS + 1)],
    f"output: {{size: '{{{{ steps.s{STEPS}.size }}}}'}}",
    "",
])


def build(dsn: str, schema: str, root: Path, args: argparse.Namespace) -> LongTail:
    app = LongTail(dsn, schema_name=schema, files_root=str(root), poll_seconds=0.5, serve_mcp=False)

    @app.workflow("direct5")
    async def direct5(ctx: Context, path: str) -> dict[str, Any]:
        result: dict[str, Any] = {"path": path}
        for _ in range(STEPS):
            result = await ctx.call_tool("files/read_file", {"path": result["path"]})
        return {"size": result["size"]}

    return app


async def start(app: LongTail, side: str) -> Any:
    if side == "direct":
        return await app.start("direct5", "note.txt")
    return await service.run(app.db, SYSTEM, "read5", {"path": "note.txt"})


async def latency(app: LongTail, side: str, n: int) -> float:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        handle = await start(app, side)
        await handle.result(timeout=60)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def throughput(app: LongTail, side: str, n: int) -> float:
    began = time.perf_counter()
    handles: list[Any] = []

    async def starter(count: int) -> None:
        for _ in range(count):
            handle = await start(app, side)
            handles.append(handle)

    async with anyio.create_task_group() as tg:
        for k in range(16):
            tg.start_soon(starter, n // 16 + (1 if k < n % 16 else 0))
    for handle in handles:
        await handle.result(timeout=600)
    return n / (time.perf_counter() - began)


async def main_async(admin_dsn: str, where: str, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_database(admin_dsn) as (dsn, schema), tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "note.txt").write_text("x" * 64)
        app = build(dsn, schema, root, args)
        lat: dict[str, list[float]] = {"direct": [], "pipeline": []}
        rate: dict[str, list[float]] = {"direct": [], "pipeline": []}
        async with app, anyio.create_task_group() as tg:
            await tg.start(app.worker(concurrency=args.concurrency).run)
            info = await store.save(app.db, SYSTEM, PIPELINE, tools=await app.tool_catalog())
            await store.deploy(app.db, SYSTEM, info.name)
            await store.activate(app.db, SYSTEM, info.name, force=True)
            for side in ("direct", "pipeline"):  # warm-up: definitions cached, pools filled
                await latency(app, side, 3)
            for r in range(args.rounds):
                for side in ("direct", "pipeline") if r % 2 == 0 else ("pipeline", "direct"):
                    log(f"round {r + 1}: {side} latency, {args.latency_runs} runs")
                    lat[side].append(await latency(app, side, args.latency_runs))
                    log(f"round {r + 1}: {side} throughput, {args.runs} runs")
                    rate[side].append(await throughput(app, side, args.runs))
            tg.cancel_scope.cancel()
        facts = server_facts(dsn)
    direct_p50, pipe_p50 = (statistics.median(lat[s]) for s in ("direct", "pipeline"))
    direct_rate, pipe_rate = (statistics.median(rate[s]) for s in ("direct", "pipeline"))
    return {
        **machine(), **facts, "server": where, "steps": STEPS, "runs": args.runs, "rounds": args.rounds,
        "latency_runs": args.latency_runs, "concurrency": args.concurrency,
        "direct_p50_ms": round(direct_p50 * 1000, 2), "pipeline_p50_ms": round(pipe_p50 * 1000, 2),
        "overhead_per_step_ms": round((pipe_p50 - direct_p50) * 1000 / STEPS, 2),
        "latency_ratio": round(pipe_p50 / direct_p50, 3),
        "direct_runs_per_s": round(direct_rate, 1), "pipeline_runs_per_s": round(pipe_rate, 1),
        "throughput_ratio": round(pipe_rate / direct_rate, 3),
    }


def summary(r: dict[str, Any]) -> str:
    return "\n".join([
        "",
        "=== longtail_mcp pipelines benchmark ===",
        f"machine        nproc {r['nproc']}, {r['memory']}, Python {r['python']}, {r['platform']}",
        f"code           longtail_mcp at {r['code']}",
        f"postgres       {r['postgres']} ({r['server']}); fsync={r['fsync']}, "
        f"synchronous_commit={r['synchronous_commit']}",
        f"work           {r['steps']} chained files/read_file calls per run; {r['rounds']} round(s)",
        "",
        f"latency p50    direct {fmt(r['direct_p50_ms'], ' ms')}, pipeline {fmt(r['pipeline_p50_ms'], ' ms')} "
        f"= {r['latency_ratio']:.2f} x   [{r['latency_runs']} runs one after the other]",
        f"per step       {fmt(r['overhead_per_step_ms'], ' ms')} of pipeline overhead "
        "[(pipeline p50 - direct p50) / steps]",
        f"throughput     direct {fmt(r['direct_runs_per_s'])} runs/s, pipeline {fmt(r['pipeline_runs_per_s'])} runs/s "
        f"= {r['throughput_ratio']:.2f} x   [{r['runs']} runs at once, worker concurrency {r['concurrency']}]",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per side in the throughput phase (default 200)")
    parser.add_argument("--latency-runs", type=int, default=30, help="sequential runs per side (default 30)")
    parser.add_argument("--concurrency", type=int, default=50, help="worker concurrency (default 50)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the sides this many times (default 1)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the summary")
    report(run_on_server(main_async, parser.parse_args()), "--json" in sys.argv, summary)


if __name__ == "__main__":
    main()

"""Agent loop vs compiled pipeline: the same 5-tool task done by the agent (a model turn per tool) and by the
pipeline the closed loop compiled from it; and the router's model-free decision over 10,000 active pipelines.

    python bench/loop.py [--runs 20] [--agent-runs 2] [--turn-delay 1.0] [--pipelines 10000] [--requests 1000]
                         [--store-budget 180] [--json]

Uses DATABASE_URL when set, else its own embedded Postgres (fsync on, synchronous_commit on) in a temp dir,
removed afterwards; the run gets a fresh database (bench/runtime.py's `server` and `fresh_database`). The
model is the package's scripted Messages API server (agents/scripted.py) on 127.0.0.1, reached through the
real anthropic SDK, answering every turn after `--turn-delay` seconds (a stand-in for a real model's
latency). Progress goes to stderr, the summary (or, with --json, the figures) to stdout.

The task (5 tool calls over two of the family's servers), asked as "report the open escalations of role R to
P with a receipt":
  db-query/find_escalations(role R, pending) -> files/write_file(P, that result)
  -> files/read_file(P, length = the size the write returned) -> files/write_file(P.receipt.tmp, what was read)
  -> files/move_file(P.receipt.tmp -> P.receipt.json)
Each read-only call feeds a later one (else the compiler drops it as a dead end).

Phase 1, agent loop vs pipeline (one in-process worker, poll 0.1 s):
  compile   closed-loop policy `activate` for router `query`; one `query` request takes path "agent" (no
            pipeline yet), the agent's run is compiled, verified and activated (result["compiled"]).
  agent     `--agent-runs` direct `agent` runs of the same request: start -> result, each 6 model turns
            (one per tool call, then the answer); also the time the run spent in the model.
  pipeline  `--runs` `query` requests with other values, one after the other: each must take path
            "template" with 0 model calls, and the scripted server must receive no request at all.
            start -> result, p50 (the router's step, then the pipeline as a child run).
  The ratio agent p50 / pipeline p50 is the figure; 'without the model' subtracts the model's latency.

Phase 2, the router's first tier (no model) over `--pipelines` active templates:
  index     agents/templates.py `TemplateIndex` built from synthetic rows shaped like
            `store.active_templates` (three request shapes, random words from a 2,000-word vocabulary,
            typed slots); p50/p95 of `index.match` for `--requests` requests, each written from one of
            the templates (each must find that one). Baseline: a linear scan trying every template's
            `match`, most specific first (the same answer), over the first 200 requests. Then the index
            built again after one pipeline changed, reusing the other templates (`previous=`).
  stored    the same pipelines saved, deployed and activated through pipelines/store.py (8 at a time,
            stopped after `--store-budget` s), then `Router.by_template` (the `query` workflow's tier-1
            step, with the index read from the database and its freshness checked per request):
            the first decision (index built) and p50/p95 of its `decided_ms` over the requests.
"""

import argparse
import hashlib
import json
import random
import statistics
import string
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

# bench/ holds mcp.py, which would shadow the SDK the family's tools import: bench/ goes last on sys.path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
from runtime import fmt, fresh_database, log, machine, pct, report, run_on_server, server_facts  # noqa: E402

from longtail_mcp import LongTail  # noqa: E402
from longtail_mcp.agents import closed_loop  # noqa: E402
from longtail_mcp.agents.router import Router  # noqa: E402
from longtail_mcp.agents.scripted import ScriptedServer  # noqa: E402
from longtail_mcp.agents.templates import Template, TemplateIndex, compile_template  # noqa: E402
from longtail_mcp.humans import escalations as esc  # noqa: E402
from longtail_mcp.humans import identity as ident  # noqa: E402
from longtail_mcp.humans.identity import SYSTEM  # noqa: E402
from longtail_mcp.pipelines import store  # noqa: E402

TOOLS = 5
REQUEST = "report the open escalations of role {role} to {path} with a receipt"
ASKED = r"open escalations of role (?P<role>[\w-]+) to (?P<path>\S+) with a receipt"
# The scripted model: one rule per turn, picked by the tool whose result the conversation ends with.
SCRIPT = f"""\
model: scripted-bench
delay: 1
turns:
  - name: find
    when: {{request: '{ASKED}', last_tool: none}}
    reply:
      - text: "I'll look up the pending escalations of role ${{role}}."
      - tool: db-query__find_escalations
        input: {{role: "${{role}}", status: pending}}
  - name: save
    when: {{request: '{ASKED}', last_tool: db-query__find_escalations, error: false}}
    reply:
      - tool: files__write_file
        input: {{path: "${{path}}", content: "${{last_result}}", make_dirs: true}}
  - name: publish
    when: {{request: '{ASKED}', last_tool: files__write_file, error: false, result: '\\.receipt\\.tmp"'}}
    reply:
      - tool: files__move_file
        input: {{source: "${{path}}.receipt.tmp", destination: "${{path}}.receipt.json", overwrite: true}}
  - name: read_back
    when: {{request: '{ASKED}', last_tool: files__write_file, error: false, result: '"size":(?P<size>\\d+)'}}
    reply:
      - tool: files__read_file
        input: {{path: "${{path}}", length: {{json: "${{size}}"}}}}
  - name: receipt
    when: {{request: '{ASKED}', last_tool: files__read_file, error: false}}
    reply:
      - tool: files__write_file
        input: {{path: "${{path}}.receipt.tmp", content: "${{last_result}}"}}
  - name: done
    when: {{request: '{ASKED}', last_tool: files__move_file, error: false}}
    reply:
      - text: "Saved the open escalations of role ${{role}} to ${{path}}, with a receipt of what was read back."
  - name: give_up
    when: {{error: true}}
    reply:
      - text: "I could not do it: ${{last_result}}"
otherwise:
  reply:
    - text: "I have no script for this request."
"""


def seconds_between(start: str | None, end: str | None) -> float:
    """Seconds between two of a run's timestamps (ISO 8601, the server's clock)."""
    if start is None or end is None:
        raise RuntimeError("the run has not ended")
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def quantile(values: list[float], q: float) -> float:
    """bench/runtime.py's nearest-rank percentile of values that were measured."""
    found = pct(values, q)
    if found is None:
        raise RuntimeError("nothing was measured")
    return found


# -- phase 1: the agent loop against the pipeline compiled from it ----------------------------------------


async def seed(app: LongTail) -> None:
    await ident.create_role(app.db, SYSTEM, "reviewer")  # `approver` comes with every install
    for role, message in (("reviewer", "check invoice 7"), ("reviewer", "check invoice 9"), ("approver", "pay 7")):
        await esc.create_escalation(app.db, SYSTEM, role=role, message=message)


async def timed(app: LongTail, name: str, request: str) -> tuple[float, dict[str, Any], str]:
    began = time.perf_counter()
    handle = await app.start(name, {"request": request})
    result = await handle.result(timeout=300)
    return time.perf_counter() - began, result, handle.workflow_id


async def loop_vs_pipeline(dsn: str, schema: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    script = root.parent / "bench-loop.yaml"
    script.write_text(SCRIPT)
    out: dict[str, Any] = {}
    async with ScriptedServer(script, delay=args.turn_delay) as model:
        app = LongTail(dsn, schema_name=schema, files_root=str(root), poll_seconds=0.1, serve_mcp=False,
                       llm_provider="scripted", llm_base_url=model.url)
        async with app, anyio.create_task_group() as tg:
            await tg.start(app.worker().run)
            await seed(app)
            await closed_loop.set_policy(app.db, SYSTEM, "activate", router="query")

            log("compile: one `query` request takes the agent path; its run becomes an active pipeline")
            took, first, first_id = await timed(app, "query", REQUEST.format(role="reviewer",
                                                                            path="reports/reviewer.json"))
            compiled = first.get("compiled") or {}
            if first["path"] != "agent" or first["status"] != "completed" or compiled.get("status") != "active":
                raise RuntimeError(f"the first request was not answered by the agent and compiled: {first}")
            child = (await app.export(first["agent_run_id"])).run
            parent = (await app.export(first_id)).run
            pipeline = await store.version(app.db, compiled["pipeline"], compiled["version"])
            steps = [s["tool"] for s in (pipeline.definition or {}).get("steps", [])]
            if len(steps) != TOOLS:
                raise RuntimeError(f"the compiled pipeline has {len(steps)} steps, not {TOOLS}: {steps}")
            out.update(pipeline=compiled["pipeline"], pipeline_steps=steps, compile_llm_calls=first["llm_calls"],
                       first_request_s=round(took, 3),
                       first_agent_child_s=round(seconds_between(child.created_at, child.completed_at), 3),
                       first_after_agent_s=round(seconds_between(child.completed_at, parent.completed_at), 3))

            agent_wall, agent_model, agent_calls, agent_tools = [], [], [], []
            for i in range(args.agent_runs):
                log(f"agent: run {i + 1} of {args.agent_runs} (6 turns of {args.turn_delay} s)")
                took, result, _ = await timed(app, "agent", REQUEST.format(role="reviewer",
                                                                          path=f"reports/agent-{i}.json"))
                if result["status"] != "completed":
                    raise RuntimeError(f"the agent run did not complete: {result}")
                agent_wall.append(took)
                agent_model.append(result["model_ms"] / 1000)
                agent_calls.append(result["llm_calls"])
                agent_tools.append(result["tool_calls"])

            model.reset()
            pipe_wall = []
            log(f"pipeline: {args.runs} `query` requests with other values, one after the other")
            for i in range(args.runs):
                took, result, _ = await timed(app, "query", REQUEST.format(role="approver",
                                                                          path=f"reports/approver-{i}.json"))
                if (result["path"], result["status"], result["llm_calls"], result["pipeline"]) != (
                        "template", "completed", 0, compiled["pipeline"]):
                    raise RuntimeError(f"request {i} did not take the compiled pipeline without the model: {result}")
                pipe_wall.append(took)
            if model.requests:
                raise RuntimeError(f"the pipeline path asked the model {len(model.requests)} time(s)")
            receipt = json.loads((root / "reports" / f"approver-{args.runs - 1}.json.receipt.json").read_text())
            if "pay 7" not in receipt["content"]:
                raise RuntimeError(f"the pipeline's receipt is not what the task asks: {receipt}")
            tg.cancel_scope.cancel()

    agent_p50, pipe_p50 = statistics.median(agent_wall), statistics.median(pipe_wall)
    model_p50 = statistics.median(agent_model)
    return {
        **out,
        "agent_runs": len(agent_wall), "agent_p50_s": round(agent_p50, 3),
        "agent_wall_s": [round(t, 3) for t in agent_wall],
        "agent_model_p50_s": round(model_p50, 3), "agent_llm_calls": max(agent_calls),
        "agent_tool_calls": max(agent_tools),
        "pipeline_runs": len(pipe_wall), "pipeline_p50_ms": round(pipe_p50 * 1000, 2),
        "pipeline_min_ms": round(min(pipe_wall) * 1000, 2), "pipeline_max_ms": round(max(pipe_wall) * 1000, 2),
        "pipeline_llm_calls": 0, "pipeline_model_requests": 0,
        "ratio": round(agent_p50 / pipe_p50, 1),
        "ratio_without_model": round((agent_p50 - model_p50) / pipe_p50, 2),
    }


# -- phase 2: the router's first tier over many active pipelines -------------------------------------------

SHAPES: tuple[tuple[str, dict[str, str]], ...] = (
    ("{w0} the {w1} {w2} for {{role}} to {{path}}", {"role": "string", "path": "string"}),
    ("{w0} {w1} of account {{account}} from the last {{days}} days to {{path}}",
     {"account": "string", "days": "integer", "path": "string"}),
    ("{w0} every {w1} {w2} {w3} tagged {{tag}} into {{path}}", {"tag": "string", "path": "string"}),
)
VOCABULARY = 2000


def vocabulary(rng: random.Random, n: int) -> list[str]:
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(syllables) for _ in range(rng.choice((2, 3)))))
    return sorted(words)


def synthetic(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[str]]:
    """n template rows like `store.active_templates` gives, and the vocabulary they use."""
    rng = random.Random(seed)
    words = vocabulary(rng, VOCABULARY)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(rows) < n:
        shape, props = SHAPES[len(rows) % len(SHAPES)]
        text = shape.format(**{f"w{i}": rng.choice(words) for i in range(4)})
        if text in seen:
            continue
        seen.add(text)
        schema = {"type": "object", "required": list(props),
                  "properties": {k: {"type": t} for k, t in props.items()}}
        rows.append({"name": f"syn_{len(rows):05d}", "version": 1, "hash": hashlib.sha256(text.encode()).hexdigest(),
                     "tags": ["files"], "template": text, "input_schema": schema})
    return rows, words


def requests_for(rows: list[dict[str, Any]], words: list[str], n: int, seed: int = 11) -> list[tuple[str, str]]:
    """n (request, name of the template it was written from), templates picked at random."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        row = rng.choice(rows)
        values = {"role": rng.choice(("reviewer", "approver", "ops-lead")), "account": f"acct-{rng.randint(1, 99999)}",
                  "days": rng.randint(2, 90), "tag": rng.choice(words), "path": f"out/{rng.randint(1, 9999)}/a.json"}
        slots = {name for _, name, _, _ in string.Formatter().parse(row["template"]) if name}
        out.append((row["template"].format(**{k: v for k, v in values.items() if k in slots}), row["name"]))
    return out


def linear_match(templates: list[Template], request: str) -> tuple[Template, dict[str, Any]] | None:
    """The baseline: every template tried in turn, most specific first (what the index answers)."""
    for t in templates:
        inputs = t.match(request)
        if inputs is not None:
            return t, inputs
    return None


def time_matches(match: Any, requests: list[tuple[str, str]]) -> list[float]:
    times = []
    for request, name in requests:
        began = time.perf_counter()
        found = match(request)
        times.append(time.perf_counter() - began)
        if found is None or found[0].name != name:
            raise RuntimeError(f"{request!r} matched {found[0].name if found else None}, not {name}")
    return times


def index_only(rows: list[dict[str, Any]], requests: list[tuple[str, str]]) -> dict[str, Any]:
    began = time.perf_counter()
    index = TemplateIndex(rows)
    built = time.perf_counter() - began
    changed = [*rows[:-1], {**rows[-1], "version": rows[-1]["version"] + 1, "hash": rows[-1]["hash"] + "'"}]
    began = time.perf_counter()
    TemplateIndex(changed, previous=index)  # one pipeline activated again: what the router does on a change
    rebuilt = time.perf_counter() - began
    log(f"index: {len(requests)} requests against {index.size:,} templates")
    indexed = time_matches(index.match, requests)
    templates = sorted((t for r in rows if (t := compile_template(r)) is not None), key=lambda t: (-t.literal, t.name))
    sample = requests[:200]
    log(f"index: linear-scan baseline, {len(sample)} requests")
    linear = time_matches(lambda r: linear_match(templates, r), sample)
    return {
        "templates": index.size, "index_build_ms": round(built * 1000, 1), "index_requests": len(requests),
        "index_rebuild_ms": round(rebuilt * 1000, 1),
        "index_p50_ms": round(quantile(indexed, 50) * 1000, 3), "index_p95_ms": round(quantile(indexed, 95) * 1000, 3),
        "linear_requests": len(sample), "linear_p50_ms": round(quantile(linear, 50) * 1000, 2),
        "linear_p95_ms": round(quantile(linear, 95) * 1000, 2),
        "index_speedup": round(quantile(linear, 50) / quantile(indexed, 50), 1),
    }


def pipeline_yaml(row: dict[str, Any]) -> str:
    return "\n".join([
        f"name: {row['name']}",
        f"description: {json.dumps('Synthetic: ' + row['template'])}",
        "tags: [files]",
        f"prompt_template: {json.dumps(row['template'])}",
        f"input_schema: {json.dumps(row['input_schema'])}",
        "steps:",
        "  - id: info",
        "    tool: files/file_info",
        "    args: {path: '{{ inputs.path }}'}",
        "",
    ])


async def store_active(app: LongTail, rows: list[dict[str, Any]], budget: float) -> tuple[int, float]:
    """Save, deploy and activate the rows' pipelines, 8 at a time, until done or `budget` seconds have passed."""
    tools = await app.tool_catalog()
    began = time.perf_counter()
    done = 0
    queue = iter(rows)

    async def one_by_one() -> None:
        nonlocal done
        for row in queue:
            if time.perf_counter() - began > budget:
                return
            await store.save(app.db, SYSTEM, pipeline_yaml(row), tools=tools)
            await store.deploy(app.db, SYSTEM, row["name"])
            await store.activate(app.db, SYSTEM, row["name"], force=True)
            done += 1
            if done % 1000 == 0:
                log(f"stored: {done:,} active pipelines after {time.perf_counter() - began:.0f} s")

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(one_by_one)
    return done, time.perf_counter() - began


async def stored(dsn: str, schema: str, root: Path, rows: list[dict[str, Any]], requests: list[tuple[str, str]],
                 args: argparse.Namespace) -> dict[str, Any]:
    app = LongTail(dsn, schema_name=schema, files_root=str(root), serve_mcp=False)
    async with app:
        log(f"stored: saving, deploying and activating {len(rows):,} pipelines (budget {args.store_budget:.0f} s)")
        count, took = await store_active(app, rows, args.store_budget)
        out: dict[str, Any] = {"stored_pipelines": count, "store_wanted": len(rows), "store_s": round(took, 1),
                               "stored_per_s": round(count / took, 1)}
        if count < len(rows):
            log(f"stored: only {count:,} of {len(rows):,} within the budget; measuring the router over those")
        served = {r["name"] for r in rows[:count]}
        asked = [(q, name) for q, name in requests if name in served]
        router = Router()
        began = time.perf_counter()
        await router.by_template(app, asked[0][0], None)  # the first decision builds the index
        out["router_first_decision_ms"] = round((time.perf_counter() - began) * 1000, 1)
        decided, walls = [], []
        for request, name in asked:
            began = time.perf_counter()
            found = await router.by_template(app, request, None)
            walls.append(time.perf_counter() - began)
            if found is None or found["pipeline"] != name:
                raise RuntimeError(f"{request!r} was routed to {found and found['pipeline']}, not {name}")
            decided.append(found["decided_ms"])
        began = time.perf_counter()
        for _ in range(50):
            await store.active_stamp(app.db)
        out.update({
            "router_requests": len(asked), "router_decided_p50_ms": round(quantile(decided, 50), 3),
            "router_decided_p95_ms": round(quantile(decided, 95), 3),
            "router_call_p50_ms": round(quantile(walls, 50) * 1000, 3),
            "active_stamp_ms": round((time.perf_counter() - began) * 1000 / 50, 3),
        })
    return out


# -- the run and the report ----------------------------------------------------------------------------------


async def main_async(admin_dsn: str, where: str, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_database(admin_dsn) as (dsn, schema), tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "files"
        root.mkdir()
        phase1 = await loop_vs_pipeline(dsn, schema, root, args)
        rows, words = synthetic(args.pipelines)
        requests = requests_for(rows, words, args.requests)
        phase2 = index_only(rows, requests)
        phase3 = await stored(dsn, schema, root, rows, requests, args) if args.store_budget > 0 else {}
        facts = server_facts(dsn)
    return {**machine(), **facts, "server": where, "turn_delay_s": args.turn_delay, "tools": TOOLS,
            **phase1, **phase2, **phase3}


def summary(r: dict[str, Any]) -> str:
    lines = [
        "",
        "=== longtail_mcp agent loop vs compiled pipeline ===",
        f"machine        nproc {r['nproc']}, {r['memory']}, Python {r['python']}, {r['platform']}",
        f"code           longtail_mcp at {r['code']}",
        f"postgres       {r['postgres']} ({r['server']}); fsync={r['fsync']}, "
        f"synchronous_commit={r['synchronous_commit']}",
        f"task           {r['tools']} tool calls: {' -> '.join(r['pipeline_steps'])}",
        f"model          scripted, {r['turn_delay_s']} s per turn",
        "",
        f"compile        first request {fmt(r['first_request_s'], ' s')} "
        f"(agent run {fmt(r['first_agent_child_s'], ' s')}"
        f", then compile + verify + activate {fmt(r['first_after_agent_s'], ' s')}) -> {r['pipeline']}",
        f"agent          p50 {fmt(r['agent_p50_s'], ' s')} over {r['agent_runs']} run(s) "
        f"{r['agent_wall_s']}, {r['agent_llm_calls']} model calls, {r['agent_tool_calls']} tool calls; "
        f"{fmt(r['agent_model_p50_s'], ' s')} of it in the model",
        f"pipeline       p50 {fmt(r['pipeline_p50_ms'], ' ms')} (min {fmt(r['pipeline_min_ms'], ' ms')}, "
        f"max {fmt(r['pipeline_max_ms'], ' ms')}) over {r['pipeline_runs']} `query` requests, path template, "
        f"{r['pipeline_llm_calls']} model calls, {r['pipeline_model_requests']} requests at the model server",
        f"agent/pipeline compiled {r['ratio']:.0f}x faster   [goal >= 100x; baseline: the agent run above]; "
        f"without the model's time {fmt(r['ratio_without_model'])} x",
        f"model calls    agent {r['agent_llm_calls']} vs pipeline {r['pipeline_llm_calls']}   [goal >= 6 vs 0]",
        "",
        f"index          {r['templates']:,} templates, built in {fmt(r['index_build_ms'], ' ms')}; match p50 "
        f"{fmt(r['index_p50_ms'], ' ms')}, p95 {fmt(r['index_p95_ms'], ' ms')} over {r['index_requests']:,} "
        "requests   [goal <= 10 ms p50]",
        f"index rebuild  after one pipeline changed, reusing the others' compiled templates: "
        f"{fmt(r['index_rebuild_ms'], ' ms')}   [baseline: the build from nothing above]",
        f"linear scan    p50 {fmt(r['linear_p50_ms'], ' ms')}, p95 {fmt(r['linear_p95_ms'], ' ms')} over "
        f"{r['linear_requests']} requests: the index is {fmt(r['index_speedup'])} x faster",
    ]
    if "stored_pipelines" in r:
        lines += [
            f"stored         {r['stored_pipelines']:,} pipelines saved + deployed + activated in "
            f"{fmt(r['store_s'], ' s')} ({fmt(r['stored_per_s'])}/s, 8 at a time)"
            + (f"; only these of {r['store_wanted']:,}: the --store-budget ran out"
               if r["stored_pipelines"] < r["store_wanted"] else ""),
            f"router tier 1  first decision {fmt(r['router_first_decision_ms'], ' ms')} (index read and built); "
            f"decided_ms p50 {fmt(r['router_decided_p50_ms'], ' ms')}, p95 {fmt(r['router_decided_p95_ms'], ' ms')}"
            f" over {r['router_requests']:,} requests (active_stamp query alone {fmt(r['active_stamp_ms'], ' ms')})",
        ]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="pipeline-path `query` requests (default 20)")
    parser.add_argument("--agent-runs", type=int, default=2, help="direct `agent` runs (default 2)")
    parser.add_argument("--turn-delay", type=float, default=1.0, help="seconds per model turn (default 1.0)")
    parser.add_argument("--pipelines", type=int, default=10_000, help="active templates in phase 2 (default 10000)")
    parser.add_argument("--requests", type=int, default=1000, help="router requests in phase 2 (default 1000)")
    parser.add_argument("--store-budget", type=float, default=180.0,
                        help="seconds allowed for storing the pipelines; 0 skips the stored measurement (default 180)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the summary")
    report(run_on_server(main_async, parser.parse_args()), "--json" in sys.argv, summary)


if __name__ == "__main__":
    main()

"""`longtail-mcp demo`: the closed loop end to end, offline — an agent answers a request (the package's
scripted model, through the real anthropic SDK), its run compiles into a pipeline that is verified and
published as an MCP tool, and the same kind of request then runs that pipeline with no model call.

Runs on a throwaway embedded Postgres in a temp directory (or on DATABASE_URL when set), with a temp files
root; needs no key and nothing else running.
"""

import argparse
import json
import logging
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from longtail_mcp.agents import closed_loop
from longtail_mcp.app import LongTail
from longtail_mcp.cli.people import safe
from longtail_mcp.config import load_settings
from longtail_mcp.db import keeper
from longtail_mcp.humans import escalations, identity
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.pipelines import store

SCRIPT = Path(__file__).resolve().parents[1] / "agents" / "scripts" / "report.yaml"
FIRST = "save a report of open escalations for role reviewer to reports/reviewer.json"
SECOND = "save a report of open escalations for role approver to reports/approver.json"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _short(value: Any, limit: int = 90) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str) if not isinstance(value, str) else value
    return safe(text if len(text) <= limit else text[:limit - 1] + "…")


async def cmd_demo(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="longtail-demo-"))
    options: dict[str, Any] = {"files_root": str(work / "files"), "llm_provider": "scripted",
                               "llm_script": str(SCRIPT), "llm_delay": args.turn_delay, "poll_seconds": 0.2}
    if load_settings().database_url is None:
        options.update(home=str(work / "home"), pg_port=_port())
    app = LongTail(**options)
    # Stopping the in-process worker cancels its poll mid-query; psycopg logs that as a warning.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    where = "DATABASE_URL" if "home" not in options else f"a throwaway embedded Postgres in {work}"
    print(f"longtail-mcp demo: the closed loop, offline (scripted model, {args.turn_delay:g} s a turn; {where})")
    try:
        await _demo(app)
    finally:
        if "home" in options:  # the throwaway database goes now, not after the idle time
            await anyio.to_thread.run_sync(lambda: keeper.stop(app.settings, force=True))
        cluster = work / "home" / "pgdata"
        if cluster.is_symlink():
            shutil.rmtree(cluster.resolve().parent, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


async def _demo(app: LongTail) -> None:
    from mcp import Client as McpClient

    from longtail_mcp.mcp_glue.server import fixed_principal
    from system_servers.workflows import server as workflows

    async with app, anyio.create_task_group() as tg:
        await tg.start(app.worker().run)
        await identity.create_role(app.db, SYSTEM, "reviewer")
        for role, message in (("reviewer", "check invoice 7"), ("reviewer", "check invoice 9"),
                              ("approver", "pay invoice 7")):
            await escalations.create_escalation(app.db, SYSTEM, role=role, message=message)
        await closed_loop.set_policy(app.db, SYSTEM, "activate", router="query")
        files = Path(app.settings.files_dir)

        print(f"\n1. the agent: no pipeline answers {FIRST!r} yet")
        began = time.perf_counter()
        first = await (await app.start("query", {"request": FIRST})).result(timeout=300)
        agent_seconds = time.perf_counter() - began
        for step in (await app.export(first["agent_run_id"])).steps:
            if step.name == "llm":
                asked = [f"{u['name']} {_short(u.get('input'), 60)}" for u in step.output["content"]
                         if u.get("type") == "tool_use"]
                print(f"   llm   {step.output['tokens_in']:>5} tokens in, {step.output['latency_ms']:>7.0f} ms -> "
                      + (", ".join(asked) or f"answer: {_short(step.output['content'][-1].get('text', ''), 60)}"))
            elif step.kind == "tool":
                print(f"   tool  {step.name} -> {_short(step.output, 70)}")
        report = json.loads((files / "reports/reviewer.json").read_text())["escalations"]
        print(f"   {first['path']}: {first['llm_calls']} LLM calls, {agent_seconds:.2f} s; "
              f"reports/reviewer.json holds {sorted(e['message'] for e in report)}")

        compiled = first["compiled"]
        version = await store.version(app.db, compiled["pipeline"], compiled["version"])
        print(f"\n2. compiled {compiled['pipeline']} v{compiled['version']}: verified {compiled['verified']}, "
              f"{compiled['status']}")
        print("   " + (version.yaml or "").rstrip().replace("\n", "\n   "))

        async with McpClient(workflows.build(app, fixed_principal(SYSTEM))) as client:
            tool = next(t for t in (await client.list_tools()).tools if t.name == compiled["pipeline"])
        print(f"\n3. the new MCP tool {tool.name} (workflows server, tools/list): inputs "
              f"{', '.join(tool.input_schema.get('required', []))}")

        print(f"\n4. the same kind of request: {SECOND!r}")
        began = time.perf_counter()
        second = await (await app.start("query", {"request": SECOND})).result(timeout=300)
        routed_seconds = time.perf_counter() - began
        saved = json.loads((files / "reports/approver.json").read_text())["escalations"]
        print(f"   {second['path']}: pipeline {second['pipeline']} v{second['version']}, "
              f"{second['llm_calls']} LLM calls, {routed_seconds * 1000:.0f} ms; "
              f"reports/approver.json holds {sorted(e['message'] for e in saved)}")
        print(f"   answer: {second['output']['answer']}")
        print(f"\ncompiled {agent_seconds / routed_seconds:.0f}x faster ({agent_seconds:.2f} s with the model, "
              f"{routed_seconds * 1000:.0f} ms without), {first['llm_calls']} LLM calls vs {second['llm_calls']}")
        tg.cancel_scope.cancel()

"""`longtail-mcp query`, `agents` and the model figures of `runs show`, run as a user runs them: as
subprocesses, with the scripted model started by the CLI itself from LONGTAIL_LLM_SCRIPT (no key, offline)."""

import json
from pathlib import Path

import pytest

from longtail_mcp import LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from tests.test_cli import cli_env, run_cli_async

pytestmark = pytest.mark.anyio
SCRIPT = Path(__file__).resolve().parents[2] / "longtail_mcp" / "agents" / "scripts" / "report.yaml"


@pytest.mark.slow
async def test_query_runs_the_agent_then_the_compiled_pipeline_and_runs_show_counts_model_calls(
        dsn: str, tmp_path: Path) -> None:
    files = tmp_path / "files"
    env = {**cli_env(tmp_path / "home", database_url=dsn), "LONGTAIL_LLM_PROVIDER": "scripted",
           "LONGTAIL_LLM_SCRIPT": str(SCRIPT), "LONGTAIL_FILES_ROOT": str(files)}
    async with LongTail(dsn) as app:
        await ident.create_role(app.db, SYSTEM, "reviewer")
        await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="check invoice 7")

    bad = await run_cli_async("agents", "set", "sometimes", "--router", "query", env=env)
    assert bad.returncode == 2 and "invalid choice: 'sometimes'" in bad.stderr
    policy = await run_cli_async("agents", "set", "activate", "--router", "query", "--json", env=env)
    assert policy.returncode == 0, policy.stderr
    assert json.loads(policy.stdout)["auto_compile"] == "activate"

    first = await run_cli_async("query", "save a report of open escalations for role reviewer to out/r.json",
                                env=env)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("path     agent: no template matches") and "4 model call(s)" in lines[1], first.stdout
    assert "compiled save_report_open_escalations_role v1 (active)" in first.stdout
    assert json.loads((files / "out" / "r.json").read_text())["escalations"][0]["message"] == "check invoice 7"

    second = await run_cli_async("query", "save a report of open escalations for role reviewer to out/s.json",
                                 "--json", env=env)
    run = json.loads(second.stdout)
    assert run["result"]["path"] == "template" and run["result"]["llm_calls"] == 0, run
    assert (files / "out" / "s.json").exists()

    agent_run = json.loads((await run_cli_async("runs", "list", "--name", "agent", "--json",
                                                         env=env)).stdout)[0]["id"]
    shown = await run_cli_async("runs", "show", agent_run, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "llm           4 calls" in shown.stdout and "(scripted-demo)" in shown.stdout, shown.stdout
    as_json = json.loads((await run_cli_async("runs", "show", agent_run, "--json", env=env)).stdout)
    assert as_json["llm"]["llm_calls"] == 4 and as_json["llm"]["tokens_in"] > 0
    routed = json.loads((await run_cli_async("runs", "show", run["id"], "--json", env=env)).stdout)
    assert routed["llm"] is None, "the routed request made no model call"

    listed = json.loads((await run_cli_async("agents", "list", "--json", env=env)).stdout)
    assert [(p["scope"], p["auto_compile"]) for p in listed] == [("router:query", "activate")]
    cleared = await run_cli_async("agents", "clear", "--router", "query", env=env)
    assert cleared.stdout.strip() == "policy for router:query cleared"


@pytest.mark.slow
async def test_escalations_triage_history_and_strategies_from_the_shell(dsn: str, tmp_path: Path) -> None:
    files = tmp_path / "files"
    env = {**cli_env(tmp_path / "home", database_url=dsn), "LONGTAIL_LLM_PROVIDER": "scripted",
           "LONGTAIL_LLM_SCRIPT": str(SCRIPT), "LONGTAIL_FILES_ROOT": str(files)}
    async with LongTail(dsn) as app:
        for role in ("ops", "finance"):
            await ident.create_role(app.db, SYSTEM, role)
        item = await esc.create_escalation(app.db, SYSTEM, role="ops", message=(
            "please save a report of open escalations for role ops to out/ops.json"))

    unknown = await run_cli_async("agents", "strategy", "finance", "refund_bot", env=env)
    assert unknown.returncode != 0 and "unknown strategy 'refund_bot'" in unknown.stderr
    assert (await run_cli_async("agents", "strategy", "finance", "triage", env=env)).returncode == 0
    listed = json.loads((await run_cli_async("agents", "strategies", "--json", env=env)).stdout)
    assert {(s["role"], s["strategy"]) for s in listed} >= {("finance", "triage"), ("ops", "default")}

    triaged = await run_cli_async("escalations", "triage", item.id, env=env)
    assert triaged.returncode == 0, triaged.stderr
    assert triaged.stdout.startswith("decision resolved") and "path     agent:" in triaged.stdout, triaged.stdout
    assert 'resolution {"saved":"out/ops.json"}' in triaged.stdout
    assert json.loads((files / "out" / "ops.json").read_text())["escalations"][0]["id"] == item.id

    history = await run_cli_async("escalations", "history", item.id, env=env)
    actions = [line.split()[3] for line in history.stdout.splitlines()]
    assert actions == ["escalation.create", "escalation.resolve"], history.stdout
    assert "triaged by run triage-" in history.stdout


@pytest.mark.slow
async def test_demo_runs_the_closed_loop_offline_and_the_routed_request_makes_no_model_call(
        dsn: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", database_url=dsn)
    done = await run_cli_async("demo", "--turn-delay", "0.2", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "1. the agent:" in out and "tool  db-query/find_escalations ->" in out and "tool  files/write_file ->" in out
    assert "agent: 4 LLM calls" in out and "reports/reviewer.json holds ['check invoice 7', 'check invoice 9']" in out
    assert "2. compiled save_report_open_escalations_role v1: verified True, active" in out
    assert "content: '{{ steps.find_escalations | tojson }}'" in out
    assert "3. the new MCP tool save_report_open_escalations_role (workflows server, tools/list): inputs role, path" \
        in out
    assert "template: pipeline save_report_open_escalations_role v1, 0 LLM calls" in out
    assert "reports/approver.json holds ['pay invoice 7']" in out
    assert "x faster (" in out and "4 LLM calls vs 0" in out
    assert "WARNING" not in done.stderr and "Traceback" not in done.stderr

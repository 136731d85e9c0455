"""The closed loop, offline: a request the router cannot match runs the agent (the scripted model, reached
through the real anthropic SDK over HTTP), the run compiles into a pipeline that is verified, activated and
announced to a connected MCP client, and the same kind of request then takes the pipeline with no model
call at all. A routed pipeline that fails hands the rest to the agent without redoing what it did."""

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client as McpClient

from longtail_mcp import LongTail
from longtail_mcp.agents import closed_loop
from longtail_mcp.agents.scripted import ScriptedServer
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.mcp_glue.server import ListChanged, fixed_principal
from longtail_mcp.pipelines import store
from system_servers.workflows import server as workflows
from tests.conftest import running
from tests.pipelines.helpers import ToolsChanged, files_app

pytestmark = pytest.mark.anyio

SCRIPT = Path(__file__).resolve().parents[2] / "longtail_mcp" / "agents" / "scripts" / "report.yaml"
FIRST = "save a report of open escalations for role reviewer to reports/reviewer.json"
SECOND = "save a report of open escalations for role approver to reports/approver.json"


@pytest.fixture
def model() -> Any:
    with ScriptedServer(SCRIPT) as server:
        yield server


@pytest.fixture
def app(dsn: str, tmp_path: Path, model: ScriptedServer) -> LongTail:
    return files_app(dsn, tmp_path / "files", llm_provider="scripted", llm_base_url=model.url,
                     tool_wait_seconds=120)


async def escalations(app: LongTail) -> None:
    await ident.create_role(app.db, SYSTEM, "reviewer")  # `approver` comes with every install
    for role, message in (("reviewer", "check invoice 7"), ("reviewer", "check invoice 9"), ("approver", "pay 7")):
        await esc.create_escalation(app.db, SYSTEM, role=role, message=message)


def report(app: LongTail, path: str) -> list[str]:
    data = json.loads((Path(app.settings.files_dir) / path).read_text())
    return sorted(e["message"] for e in data["escalations"])


async def test_an_agent_run_becomes_a_tool_and_the_same_request_then_needs_no_model(
        app: LongTail, model: ScriptedServer) -> None:
    changed = ToolsChanged()
    list_changed = ListChanged()
    async with running(app), anyio.create_task_group() as tg:
        await tg.start(list_changed.watch, app.events)
        await escalations(app)
        await closed_loop.set_policy(app.db, SYSTEM, "activate", router="query")
        server = workflows.build(app, fixed_principal(SYSTEM), list_changed)
        async with McpClient(server, mode="legacy", message_handler=changed) as client:
            before = {t.name for t in (await client.list_tools()).tools}
            first = await client.call_tool("query", {"request": FIRST})
            assert not first.is_error, first.content[0].text
            result = first.structured_content["result"]
            assert result["path"] == "agent" and result["status"] == "completed", result
            assert result["llm_calls"] == 4 and len(model.requests) == 4, result
            assert report(app, "reports/reviewer.json") == ["check invoice 7", "check invoice 9"]
            compiled = result["compiled"]
            assert compiled["status"] == "active" and compiled["verified"] is True, compiled
            await changed.wait()
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) - before == {compiled["pipeline"]}
            assert set(tools[compiled["pipeline"]].input_schema["required"]) >= {"role", "path"}

            model.reset()
            second = await client.call_tool("query", {"request": SECOND})
            result = second.structured_content["result"]
            assert result["path"] == "template" and result["pipeline"] == compiled["pipeline"], result
            assert result["llm_calls"] == 0 and model.requests == [], "the routed request asked the model nothing"
            assert report(app, "reports/approver.json") == ["pay 7"]
        tg.cancel_scope.cancel()
    assert changed.got, "the new tool was announced"


async def test_a_routed_pipeline_that_fails_hands_the_rest_to_the_agent_without_redoing_its_steps(
        app: LongTail, model: ScriptedServer) -> None:
    failing = """
name: reviewer_report
description: Save a report of escalations
prompt_template: "save a report of {status} escalations for role {role} to {path}"
input_schema:
  type: object
  required: [status, role, path]
  properties: {status: {type: string}, role: {type: string}, path: {type: string}}
steps:
  - id: mark
    tool: files/write_file
    args: {path: "reports/started.txt", content: "started {{ inputs.role }}", create_only: true, make_dirs: true}
  - id: save
    tool: files/write_file
    needs: [mark]
    args: {path: "{{ inputs.path }}", content: "{{ inputs.role }}", create_only: true}
"""
    async with running(app):
        await escalations(app)
        await closed_loop.set_policy(app.db, SYSTEM, "draft", router="query")
        info = await store.save(app.db, SYSTEM, failing, tools=await app.tool_catalog())
        await store.deploy(app.db, SYSTEM, info.name)
        await store.activate(app.db, SYSTEM, info.name, force=True)
        (Path(app.settings.files_dir) / "reports").mkdir(parents=True)
        (Path(app.settings.files_dir) / "reports" / "reviewer.json").write_text("old")  # `save` fails: it exists
        handle = await app.start("query", {"request": FIRST})
        result = await handle.result(timeout=60)
        assert result["path"] == "fallback" and result["status"] == "completed", result
        assert "1 finished step" in result["why"] and "already exists" in result["why"]
        routed = [(s.name, s.status) for s in (await app.export(result["run_id"])).steps if s.kind == "tool"]
        agent = [(s.name, s.input) for s in (await app.export(result["agent_run_id"])).steps if s.kind == "tool"]
        assert routed == [("files/write_file", "completed"), ("files/write_file", "failed")]
        assert all("started.txt" not in json.dumps(args) for _, args in agent), "the agent did not redo `mark`"
        first_turn = model.requests[0]["messages"][0]["content"]
        assert "Already done" in first_turn and "reports/started.txt" in first_turn
        assert (Path(app.settings.files_dir) / "reports" / "started.txt").read_text() == "started reviewer"
        assert report(app, "reports/reviewer.json") == ["check invoice 7", "check invoice 9"]
        compiled = result["compiled"]
        assert (compiled["pipeline"], compiled["version"], compiled["status"]) == ("reviewer_report", 2, "active")
        assert (await store.get(app.db, "reviewer_report")).active_version == 1, "the new version waits for review"
        second = await store.definition(app.db, "reviewer_report", 2)
        assert set(second.input_schema["required"]) == {"role", "path"}, "inputs come from the request alone"


async def test_a_tags_policy_wins_over_its_routers_and_a_read_only_draft_is_verified_at_once(
        app: LongTail, tmp_path: Path) -> None:
    counting = tmp_path / "counting.yaml"
    counting.write_text("""\
model: scripted
turns:
  - name: look
    when: {request: "open escalations of role (?P<role>\\\\w+)", last_tool: none}
    reply:
      - tool: db-query__find_escalations
        input: {role: "${role}", status: pending}
  - name: answer
    when: {last_tool: db-query__find_escalations}
    reply:
      - text: "Here they are: ${last_result}"
""")
    with ScriptedServer(counting) as other:
        app.settings.llm_base_url = other.url
        async with running(app):
            await escalations(app)
            await closed_loop.set_policy(app.db, SYSTEM, "activate", router="query")
            await closed_loop.set_policy(app.db, SYSTEM, "draft", tag="db-query")
            handle = await app.start("query", {"request": "list the open escalations of role reviewer",
                                               "tags": ["db-query"]})
            result = await handle.result(timeout=60)
            assert "pipeline" in (result["compiled"] or {}), result
            info = await store.get(app.db, result["compiled"]["pipeline"])
    assert result["path"] == "agent" and result["compiled"]["verified"] is True, result
    assert info.status == "draft" and info.read_only and info.verified_version == 1, "verified, not published"

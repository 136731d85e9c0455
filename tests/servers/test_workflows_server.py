"""The workflows server through a real MCP client session: in process (direct and JSON-RPC)."""

import json
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client as McpClient

from longtail_mcp import LongTail
from longtail_mcp.events.feed import feed_of
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.mcp_glue.server import fixed_principal
from system_servers.workflows import server as workflows
from tests.conftest import running
from tests.runtime.helpers import until, wait_status
from tests.servers.sessions import (
    TRANSPORTS,
    Report,
    call_with_progress,
    cancel_after_progress,
    fast_progress,
    growing,
    http_server,
    loud,
    session,
)

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])  # direct dispatch, and JSON-RPC over memory streams


def register(app: LongTail) -> None:
    @app.workflow()
    async def greet(ctx, who):
        await ctx.run(str.upper, who)
        return f"hello {who}"

    @app.workflow()
    async def gate(ctx):
        return await ctx.wait_for_signal("open", timeout=30)


async def call(c: McpClient, tool: str, args: dict[str, Any]) -> Any:
    result = await c.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_workflows_tool_works_over_every_transport(app: LongTail, transport: str) -> None:
    register(app)
    async with running(app), AsyncExitStack() as stack:
        base = await stack.enter_async_context(http_server(app)) if transport in ("http", "sse") else None
        c = await stack.enter_async_context(session(transport, app, "workflows", base=base))
        names = {t.name for t in (await c.list_tools()).tools}
        assert names >= {t.name for t in workflows.TOOLS}
        types = await call(c, "list_workflow_types", {})
        built_in = {"pipeline", "agent", "query", "triage", "design"}
        assert {t["name"] for t in types["workflow_types"]} == {"greet", "gate"} | built_in

        started = await call(c, "start_workflow", {"name": "greet", "input": "ada", "workflow_id": "g1"})
        assert started["workflow_id"] == "g1" and started["created"] is True
        again = await call(c, "start_workflow", {"name": "greet", "input": "bob", "workflow_id": "g1"})
        assert again["created"] is False
        done = await call(c, "wait_for_run", {"workflow_id": "g1", "timeout_seconds": 10})
        assert done["done"] is True and done["run"]["result"] == "hello ada"
        run = await call(c, "get_run", {"workflow_id": "g1"})
        assert run["status"] == "completed" and run["input"] == "ada"
        history = await call(c, "export_run", {"workflow_id": "g1"})
        assert [s["kind"] for s in history["steps"]] == ["step"]

        await call(c, "start_workflow", {"name": "gate", "workflow_id": "w1"})
        await wait_status(app.handle("w1"), "waiting")
        pending = await call(c, "wait_for_run", {"workflow_id": "w1", "timeout_seconds": 0.3})
        assert pending["done"] is False and pending["run"]["status"] == "waiting"
        assert (await call(c, "signal_run", {"workflow_id": "w1", "name": "open", "payload": {"k": 1}}))["delivered"]
        waited = await call(c, "wait_for_run", {"workflow_id": "w1", "timeout_seconds": 10})
        assert waited["run"]["result"] == {"k": 1}

        await call(c, "start_workflow", {"name": "gate", "workflow_id": "w2"})
        await wait_status(app.handle("w2"), "waiting")
        assert (await call(c, "cancel_run", {"workflow_id": "w2", "reason": "no"}))["cancelled"] == ["w2"]
        listed = await call(c, "list_runs", {"name": "gate"})
        assert {r["id"]: r["status"] for r in listed["runs"]} == {"w1": "completed", "w2": "cancelled"}

        registered = await call(c, "register_mcp_server", {
            "name": "echo", "command": [sys.executable, "-m", "tests.apps.echo_server"],
            "env": {"PYTHONPATH": str(ROOT)}, "tags": ["testing"]})
        assert sorted(registered["tools"]) == ["add", "boom", "echo", "environ"]
        servers = {s["name"]: s["tools"] for s in (await call(c, "list_mcp_servers", {}))["servers"]}
        assert servers["echo"] == 4
        found = await call(c, "find_tools", {"query": "repeat text", "tags": ["testing"]})
        assert found["tools"][0]["qualified"] == "echo/echo"


@MODES
async def test_bad_arguments_are_tool_errors_and_change_nothing(app: LongTail, mode: str) -> None:
    register(app)
    async with running(app), McpClient(workflows.build(app, fixed_principal(SYSTEM)), mode=mode) as c:
        cases = [
            ("start_workflow", {"name": ""}, "name"),
            ("start_workflow", {"name": "greet", "surprise": 1}, "surprise"),
            ("start_workflow", {"name": "greet", "workflow_id": "x" * 201}, "workflow_id"),
            ("wait_for_run", {"workflow_id": "g", "timeout_seconds": 51}, "timeout_seconds"),
            ("list_runs", {"limit": 0}, "limit"),
            ("list_runs", {"status": "sleeping"}, "status"),
            ("signal_run", {"workflow_id": "missing", "name": "x"}, "no run with id"),
            ("get_run", {}, "workflow_id"),
        ]
        for tool, args, mentions in cases:
            result = await c.call_tool(tool, args)
            assert result.is_error, (tool, args)
            assert mentions in result.content[0].text, result.content[0].text
        assert (await c.call_tool("no_such_tool", {})).is_error
        assert await app.list_runs() == [], "nothing was started by a refused call"


async def test_a_read_scope_principal_sees_and_calls_only_read_only_tools(app: LongTail) -> None:
    register(app)
    reader = Principal("viewer", scope="read")
    async with running(app), McpClient(workflows.build(app, fixed_principal(reader))) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert names == {t.name for t in workflows.TOOLS if t.read_only}
        assert "start_workflow" not in names and "list_runs" in names
        refused = await c.call_tool("start_workflow", {"name": "greet"})
        assert refused.is_error and "read scope" in refused.content[0].text
        assert await app.list_runs() == []


async def test_runs_started_over_mcp_act_for_the_calling_principal(app: LongTail) -> None:
    register(app)
    rita = Principal("rita", "Rita", roles={"reviewer": "member"})
    async with running(app), McpClient(workflows.build(app, fixed_principal(rita))) as c:
        started = await call(c, "start_workflow", {"name": "greet", "input": "x"})
        info = await app.get_run(started["workflow_id"])
    assert info["principal"]["id"] == "rita"


async def test_start_workflow_accepts_types_any_live_worker_runs_and_refuses_unknown_ones(app: LongTail) -> None:
    from longtail_mcp import Client

    register(app)
    async with (
        running(app),
        Client(app.settings.database_url) as plain,  # no workflow code of its own
        McpClient(workflows.build(plain, fixed_principal(SYSTEM))) as c,
    ):
        ok = await c.call_tool("start_workflow", {"name": "greet", "input": "x"})
        assert not ok.is_error, ok.content[0].text
        typo = await c.call_tool("start_workflow", {"name": "greeet"})
        assert typo.is_error and "no live worker runs workflow type 'greeet'" in typo.content[0].text
        assert "greet" in typo.content[0].text.split("known types:")[1]


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_wait_for_run_reports_progress_while_the_run_waits_then_answers(
        app: LongTail, transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    register(app)
    fast_progress(monkeypatch)
    async with running(app), session(transport, app, "workflows") as c:
        await call(c, "start_workflow", {"name": "gate", "workflow_id": "w1"})
        await wait_status(app.handle("w1"), "waiting")

        async def open_after_two(report: Report, reports: list[Report]) -> None:
            if len(reports) == 2:
                await app.handle("w1").signal("open", "now")

        result, reports = await call_with_progress(c, "wait_for_run", {"workflow_id": "w1", "timeout_seconds": 20},
                                                   open_after_two)
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["done"] is True and result.structured_content["run"]["result"] == "now"
    assert len(reports) >= 2 and growing(reports), reports
    progress, total, message = reports[0]
    assert 0 < progress < 20 and total == 20
    assert message == "run w1 is waiting for the signal 'open'", message


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_a_cancelled_wait_for_run_stops_waiting_and_the_run_goes_on(
        app: LongTail, transport: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    register(app)
    fast_progress(monkeypatch)
    async with running(app), session(transport, app, "workflows") as c:
        await call(c, "start_workflow", {"name": "gate", "workflow_id": "w1"})
        await wait_status(app.handle("w1"), "waiting")
        feed = feed_of(app.db)
        idle = feed.subscribers  # the worker's wake-ups

        async def waiting() -> None:
            assert feed.subscribers == idle + 1, "wait_for_run follows the run's end events"

        await cancel_after_progress(c, "wait_for_run", {"workflow_id": "w1", "timeout_seconds": 50}, before=waiting)
        await until(lambda: feed.subscribers == idle, within=3)  # the server stopped waiting, not just the client
        assert (await app.handle("w1").status()) == "waiting", "cancelling the call does not cancel the run"
        await app.handle("w1").signal("open", 1)
        with anyio.fail_after(10):
            assert await app.handle("w1").result() == 1
        assert (await call(c, "get_run", {"workflow_id": "w1"}))["status"] == "completed", "the session goes on"
    assert loud(caplog.records) == []


async def test_a_long_history_is_exported_in_pages_a_client_can_take(app: LongTail) -> None:
    """export_run (and the run resource) answer at most about 512 KiB of journal at a time, so a long run does
    not exceed what a client accepts in one message (about 1 MiB); the pages together are the whole journal."""
    @app.step()
    async def chunk(i: int) -> str:
        return f"{i}:" + "x" * 100_000

    @app.workflow()
    async def big(ctx):
        got = await ctx.wait_for_signal("go")
        return [len(await ctx.run(chunk, i)) for i in range(12)] + [got]

    async with running(app), session("memory", app, "workflows") as c:
        handle = await app.start("big", workflow_id="big-1")
        await wait_status(handle, "waiting")
        await app.signal("big-1", "go", "now")
        await handle.result(timeout=30)
        whole = await app.export("big-1")
        pages, offset = [], 0
        while offset is not None:
            result = await c.call_tool("export_run", {"workflow_id": "big-1", "offset": offset})
            assert not result.is_error and len(result.content[0].text) < 1024 * 1024, "one page fits a message"
            pages.append(result.structured_content)
            offset = pages[-1]["next_offset"]
        assert len(pages) >= 3 and all(p["steps_total"] == len(whole.steps) for p in pages)
        assert [s["seq"] for p in pages for s in p["steps"]] == [s.seq for s in whole.steps]
        assert [s["name"] for s in pages[0]["signals"]] == ["go"] and all(p["signals"] == [] for p in pages[1:])
        assert all(p["run"]["id"] == "big-1" for p in pages)
        read = await c.read_resource("longtail://runs/big-1")
        first = json.loads(read.contents[0].text)
        assert first["next_offset"] == pages[0]["next_offset"] and first["steps"] == pages[0]["steps"]
        beyond = await c.call_tool("export_run", {"workflow_id": "big-1", "offset": 999})
        assert beyond.structured_content["steps"] == [] and beyond.structured_content["next_offset"] is None

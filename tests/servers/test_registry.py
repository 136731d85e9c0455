"""External MCP servers: registered, discovered by find_tools, called as durable steps and via the gateway."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client as McpClient

from longtail_mcp import LongTail, WorkflowFailed
from longtail_mcp.errors import Forbidden, Unavailable
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.mcp_glue.server import ListChanged, fixed_principal
from longtail_mcp.tools import registry
from system_servers import gateway, publish_manifests
from system_servers.workflows import server as workflows
from tests.conftest import running
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
ECHO = [sys.executable, "-m", "tests.apps.echo_server"]


async def register_echo(app: LongTail, log: Path | None = None) -> dict[str, Any]:
    env = {"PYTHONPATH": str(ROOT), **({"ECHO_LOG": str(log)} if log else {})}
    return await registry.register_server(app.db, SYSTEM, "echo", command=ECHO, env=env, tags=["testing", "text"],
                                          description="echo test server")


async def test_register_discover_and_list_an_external_server_through_mcp(app: LongTail) -> None:
    async with app, McpClient(workflows.build(app, fixed_principal(SYSTEM))) as c:
        await publish_manifests(app)
        result = await c.call_tool("register_mcp_server", {
            "name": "echo", "command": ECHO, "env": {"PYTHONPATH": str(ROOT), "SECRET_TOKEN": "s3cr3t"},
            "tags": ["testing", "text"], "description": "echo test server"})
        assert not result.is_error, result.content[0].text
        assert sorted(result.structured_content["tools"]) == ["add", "boom", "echo", "environ"]
        servers = {s["name"]: s for s in (await c.call_tool("list_mcp_servers", {})).structured_content["servers"]}
        assert servers["echo"]["tools"] == 4 and servers["echo"]["transport"] == "stdio"
        assert sorted(servers["echo"]["env_keys"]) == ["PYTHONPATH", "SECRET_TOKEN"]
        assert "s3cr3t" not in str(servers), "environment values are never shown"
        assert servers["workflows"]["transport"] == "builtin" and servers["workflows"]["tools"] == len(workflows.TOOLS)

        found = (await c.call_tool("find_tools", {"query": "repeat text"})).structured_content["tools"]
        assert found[0]["qualified"] == "echo/echo"
        by_arg = (await c.call_tool("find_tools", {"query": "workflow_id"})).structured_content["tools"]
        assert {t["qualified"] for t in by_arg} >= {"workflows/get_run", "workflows/wait_for_run"}
        prefix = (await c.call_tool("find_tools", {"query": "escal"})).structured_content["tools"]
        assert prefix and prefix[0]["server"] == "human-queue"
        assert {"escalate_to_human", "find_escalations"} <= {t["name"] for t in prefix}
        tagged = (await c.call_tool("find_tools", {"tags": ["testing"]})).structured_content["tools"]
        assert {t["name"] for t in tagged} == {"add", "boom", "echo", "environ"}


async def test_only_superadmins_register_and_an_unreachable_server_stores_nothing(app: LongTail) -> None:
    async with app:
        with pytest.raises(Forbidden):
            await registry.register_server(app.db, Principal("rita"), "echo", command=ECHO)
        with pytest.raises(Unavailable, match="cannot connect"):
            await registry.register_server(app.db, SYSTEM, "ghost", command=["/nonexistent/binary"])
        assert await registry.list_servers(app.db) == []


async def test_find_tools_ranks_well_among_more_than_a_thousand_tools(app: LongTail) -> None:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    manifests = [{"name": f"tool_{i}", "description": f"{words[i % 10]} {words[(i // 10) % 10]} processing of records",
                  "input_schema": {"type": "object", "properties": {f"field_{i % 7}": {"type": "string"}}},
                  "output_schema": None, "annotations": {}, "tags": ["bulk"]} for i in range(1200)]
    manifests.append({"name": "render_invoice_pdf", "description": "Render an invoice as a PDF document",
                      "input_schema": {"type": "object", "properties": {"invoice_id": {"type": "string"}}},
                      "output_schema": None, "annotations": {"readOnlyHint": True}, "tags": ["documents"]})
    async with app:
        await registry.register_builtin(app.db, "bulk", manifests, description="many tools", tags=["bulk"])
        found = await registry.find_tools(app.db, "invoice pdf")
        assert found[0]["qualified"] == "bulk/render_invoice_pdf"
        assert (await registry.find_tools(app.db, "invoice_id"))[0]["name"] == "render_invoice_pdf"
        assert len(await registry.find_tools(app.db, "alpha records", limit=50)) == 50


async def test_a_workflow_calls_a_registered_tool_as_a_step_and_a_tool_error_fails_it(app: LongTail,
                                                                                       tmp_path: Path) -> None:
    @app.workflow()
    async def add_up(ctx, pair):
        total = await ctx.call_tool("echo/add", {"a": pair[0], "b": pair[1]})
        return total

    @app.workflow()
    async def explode(ctx):
        await ctx.call_tool("echo/boom", {"reason": "testing"})

    async with running(app):
        await register_echo(app)
        handle = await app.start("add_up", [2, 40])
        assert await handle.result(timeout=30) == {"result": 42}
        (step,) = (await handle.export())["steps"]
        assert (step["kind"], step["name"], step["input"]) == (
            "tool", "echo/add", {"args": [{"a": 2, "b": 40}], "kwargs": {}})
        with pytest.raises(WorkflowFailed) as info:
            await (await app.start("explode")).result(timeout=30)
        assert "boom: testing" in info.value.error["message"]
        failed = (await app.export(info.value.workflow_id))["steps"][0]
        assert failed["attempts"] == 1, "a tool's own error is not retried"


async def test_registered_tools_appear_in_the_gateway_as_server__tool(app: LongTail) -> None:
    async with app:
        await register_echo(app)
        async with McpClient(gateway(app, fixed_principal(SYSTEM))) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert {"echo__echo", "echo__add", "start_workflow", "claim_escalation"} <= names
            called = await c.call_tool("echo__add", {"a": 1, "b": 2})
            assert not called.is_error and called.structured_content == {"result": 3}
            failed = await c.call_tool("echo__boom", {"reason": "x"})
            assert failed.is_error and "boom: x" in failed.content[0].text
        async with McpClient(gateway(app, fixed_principal(Principal("viewer", scope="read")))) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert not {n for n in names if n.startswith("echo__")}, "nobody but superadmins until granted"
            refused = await c.call_tool("echo__echo", {"text": "x"})
            assert refused.is_error and "may not call the tools of MCP server 'echo'" in refused.content[0].text


@pytest.mark.slow
async def test_a_tool_step_survives_a_worker_crash_and_is_not_called_again(app: LongTail, dsn: str,
                                                                            tmp_path: Path) -> None:
    log = tmp_path / "echo.log"
    async with app:
        await register_echo(app, log)
    env = {**os.environ, "DATABASE_URL": dsn, "LONGTAIL_LEASE_SECONDS": "1", "LONGTAIL_POLL_SECONDS": "0.2"}
    cmd = [sys.executable, "-m", "longtail_mcp", "worker", "--app", "tests.apps.tool_app:app"]

    def worker() -> subprocess.Popen[str]:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().startswith("longtail-mcp worker ready")
        return proc

    first = worker()
    try:
        async with app:
            from tests.apps.tool_app import relay

            app.registry.add_workflow(relay, "relay")
            handle = await app.start("relay", ["one", "two"], workflow_id="relay-1")
            await wait_status(handle, "waiting", within=30)
            first.send_signal(signal.SIGKILL)
            first.communicate()
            second = worker()
            try:
                await handle.signal("go")
                assert await handle.result(timeout=30) == [{"result": "one"}, {"result": "two"}]
            finally:
                second.send_signal(signal.SIGINT)
                second.communicate(timeout=15)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert log.read_text().splitlines() == ["one", "two"], "the committed tool call was replayed, not repeated"


async def test_escalate_and_wait_called_from_a_run_suspends_it_durably(app: LongTail) -> None:
    from longtail_mcp.humans import escalations as esc
    from longtail_mcp.humans import identity as ident

    @app.workflow()
    async def ask(ctx):
        return await ctx.call_tool("human-queue/escalate_and_wait",
                                   {"role": "reviewer", "message": "ok to ship?", "wait_seconds": 1})

    async with running(app):
        await ident.create_role(app.db, SYSTEM, "reviewer")
        handle = await app.start("ask")
        info = await wait_status(handle, "waiting")
        assert info["waiting_for"].startswith("escalation:"), "a durable wait, not a 50 s poll"
        (item,) = await inbox.find_escalations(app.db, SYSTEM, status="pending")
        await esc.resolve(app.db, SYSTEM, item["id"], {"ship": True})
        assert await handle.result(timeout=10) == {"escalation_id": item["id"], "status": "resolved",
                                                   "resolution": {"ship": True}}


async def test_serve_start_refreshes_registered_servers_and_records_failures(app: LongTail) -> None:
    async with app:
        await register_echo(app)
        async with app.db.connection() as conn:
            await conn.execute("DELETE FROM tool_manifest WHERE server = 'echo'")
            await conn.execute("""INSERT INTO mcp_server (name, transport, command) VALUES ('gone', 'stdio',
                                  ARRAY['/nonexistent/binary'])""")
        await publish_manifests(app)
        servers = {s["name"]: s for s in await registry.list_servers(app.db)}
    assert servers["echo"]["tools"] == 4 and servers["echo"]["last_error"] is None
    assert servers["gone"]["tools"] == 0 and "cannot connect" in servers["gone"]["last_error"]


async def test_registering_a_server_tells_gateway_clients_their_tools_changed(app: LongTail) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ServerNotification) and message.method == "notifications/tools/list_changed":
            changed.set()

    list_changed = ListChanged()
    async with app, anyio.create_task_group() as tg:
        await tg.start(list_changed.watch, app.events)
        async with McpClient(gateway(app, fixed_principal(SYSTEM), list_changed), mode="legacy",
                             message_handler=on_message) as c:
            assert c.server_capabilities.tools is not None and c.server_capabilities.tools.list_changed
            assert not any(t.name.startswith("echo__") for t in (await c.list_tools()).tools)
            await register_echo(app)
            with anyio.fail_after(10):
                await changed.wait()
            assert any(t.name.startswith("echo__") for t in (await c.list_tools()).tools)
        tg.cancel_scope.cancel()


async def test_registering_a_server_reads_every_page_of_its_tools(app: LongTail) -> None:
    async with app:
        registered = await registry.register_server(
            app.db, SYSTEM, "paged", command=[sys.executable, "-m", "tests.apps.paged_server"],
            env={"PYTHONPATH": str(ROOT)}, description="tools in pages of two")
    assert registered["tools"] == [f"tool_{n}" for n in range(5)], "nextCursor was followed to the last page"

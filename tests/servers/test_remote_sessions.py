"""Sessions to registered servers: one stdio process per server, shared by calls and by concurrent
callers, stopped when idle or when the app closes, started again after it died."""

import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client as McpClient

from longtail_mcp import LongTail
from longtail_mcp.db.embedded import pid_alive
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.mcp_glue.server import fixed_principal
from longtail_mcp.tools import registry
from system_servers import gateway
from tests.conftest import running

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
PIDS = [sys.executable, "-m", "tests.apps.pid_server"]


async def register_pids(app: LongTail, **env: str) -> None:
    await registry.register_server(app.db, SYSTEM, "pids", command=PIDS, env={"PYTHONPATH": str(ROOT), **env},
                                   description="answers with its process id")


async def call(c: McpClient, tool: str, args: dict[str, Any] | None = None) -> Any:
    result = await c.call_tool(f"pids__{tool}", args or {})
    assert not result.is_error, result.content[0].text
    return result.structured_content["result"]




async def until_gone(pid: int) -> None:
    with anyio.fail_after(10):
        while pid_alive(pid):  # noqa: ASYNC110 - a process exit offers no event to wait on
            await anyio.sleep(0.02)


async def test_calls_share_one_server_process_until_it_has_been_idle(dsn: str) -> None:
    app = LongTail(dsn, remote_idle_seconds=0.5)
    async with app, McpClient(gateway(app, fixed_principal(SYSTEM))) as c:
        await register_pids(app)
        first = await call(c, "pid")
        assert await call(c, "pid") == first, "the second call reused the first call's process"
        assert app.remote_sessions.servers() == ["pids"]
        await until_gone(first)  # idle for 0.5 s: the session closed and the process exited
        assert app.remote_sessions.servers() == []
        later = await call(c, "pid")
        assert later != first and pid_alive(later)


async def test_concurrent_calls_are_multiplexed_on_one_session(app: LongTail) -> None:
    async with app, McpClient(gateway(app, fixed_principal(SYSTEM))) as c:
        await register_pids(app)
        pids: list[int] = []

        async def gather() -> None:
            pids.append(await call(c, "gather", {"n": 5}))

        with anyio.fail_after(30):  # each call answers only once all five are in flight in one process
            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(gather)
        assert len(pids) == 5 and len(set(pids)) == 1


async def test_a_killed_server_is_started_again_and_only_safe_calls_are_repeated(app: LongTail,
                                                                                 tmp_path: Path) -> None:
    async with app, McpClient(gateway(app, fixed_principal(SYSTEM))) as c:
        await register_pids(app)
        first = await call(c, "pid")
        os.kill(first, signal.SIGKILL)
        second = await call(c, "pid")
        assert second != first, "the next call got a fresh process"

        crashed = await c.call_tool("pids__crash", {})  # dies during a call not marked read-only or idempotent
        assert crashed.is_error
        text = crashed.content[0].text
        assert text.startswith("[unavailable]") and "died" in text and "was not repeated" in text, text
        third = await call(c, "pid")
        assert third not in (first, second), "the call after the crash started the server again"

        marker = tmp_path / "crashed-once"  # a read-only call whose process dies is sent again, transparently
        fourth = await call(c, "flaky_pid", {"marker": str(marker)})
        assert marker.exists() and fourth not in (first, second, third)
        for pid in (first, second, third):
            await until_gone(pid)


async def test_runs_share_the_session_and_closing_the_app_stops_the_server(app: LongTail) -> None:
    @app.workflow()
    async def twice(ctx):
        return [await ctx.call_tool("pids/pid", {}), await ctx.call_tool("pids/pid", {})]

    async with running(app):
        await register_pids(app)
        async with McpClient(gateway(app, fixed_principal(SYSTEM))) as c:
            pid = await call(c, "pid")
        result = await (await app.start("twice")).result(timeout=30)
        assert result == [{"result": pid}, {"result": pid}], "steps in a run use the gateway's session"
        assert pid_alive(pid)
    assert not pid_alive(pid), "closing the app stopped the server it started"


async def test_a_call_from_a_run_carries_its_steps_idempotency_key_in_meta(app: LongTail) -> None:
    @app.workflow()
    async def keyed(ctx):
        first = await ctx.call_tool("pids/idempotency_key", {})
        return [first, await ctx.call_tool("pids/idempotency_key", {}, key="again")]

    async with running(app):
        await register_pids(app)
        async with McpClient(gateway(app, fixed_principal(SYSTEM))) as c:
            assert await call(c, "idempotency_key") is None, "a call from a client is not a step: no key"
        result = await (await app.start("keyed", workflow_id="keyed-1")).result(timeout=30)
    # `<workflow id>:<seq>`, or `:<key>` for a keyed call: what the step keeps across retries and replays
    assert result == [{"result": "keyed-1:1"}, {"result": "keyed-1:again"}]


async def test_registering_again_with_other_details_starts_a_new_session(app: LongTail) -> None:
    async with app, McpClient(gateway(app, fixed_principal(SYSTEM))) as c:
        await register_pids(app)
        first = await call(c, "pid")
        await register_pids(app, GREETING="hello")
        second = await call(c, "pid")
        assert second != first, "the new environment needs a new process"
        await until_gone(first)  # the replaced session closed once its calls were done

        async with app.db.connection() as conn:  # now it cannot be started
            await conn.execute("UPDATE mcp_server SET command = ARRAY['/nonexistent/binary'] WHERE name = 'pids'")
        failed = await c.call_tool("pids__pid", {})
        assert failed.is_error
        assert failed.content[0].text.startswith("[unavailable] cannot connect to MCP server 'pids'")
        await until_gone(second)
        assert app.remote_sessions.servers() == []


async def test_a_registered_servers_progress_reaches_the_gateways_caller(app: LongTail) -> None:
    async with app, McpClient(gateway(app, fixed_principal(SYSTEM))) as c:
        await register_pids(app)
        reports: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            reports.append((progress, total, message))

        result = await c.call_tool("pids__count", {"n": 3}, progress_callback=on_progress)
        assert not result.is_error and result.structured_content == {"result": 3}
        assert reports == [(1, 3, "counted 1 of 3"), (2, 3, "counted 2 of 3"), (3, 3, "counted 3 of 3")]
        unknown = await c.call_tool("pids__nope", {})
        assert unknown.is_error and "nope" in unknown.content[0].text

"""The whole family behind one HTTP endpoint: streamable HTTP at /mcp, legacy SSE at /sse, API keys."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client as McpClient
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from longtail_mcp import LongTail
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from system_servers import SERVERS
from tests.conftest import running
from tests.servers.sessions import http_server

pytestmark = pytest.mark.anyio
ALL_TOOLS = {spec.name for module in SERVERS.values() for spec in module.TOOLS}
READ_TOOLS = {spec.name for module in SERVERS.values() for spec in module.TOOLS if spec.read_only}


@asynccontextmanager
async def streamable(base: str, key: str | None, mode: str = "auto") -> AsyncIterator[McpClient]:
    """An MCP session over streamable HTTP (the transport leaves a given HTTP client open: we close it)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
            McpClient(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as session:
        yield session


async def keys(app: LongTail) -> tuple[str, str]:
    await ident.create_account(app.db, SYSTEM, "ops")
    full = await ident.create_key(app.db, SYSTEM, "ops", scope="full")
    read = await ident.create_key(app.db, SYSTEM, "ops", scope="read")
    return full["key"], read["key"]


def register(app: LongTail) -> None:
    @app.workflow()
    async def echo(ctx, value):
        return value


async def test_http_requires_an_api_key_and_read_keys_see_read_only_tools(app: LongTail) -> None:
    register(app)
    async with running(app), http_server(app) as base:
        full, read = await keys(app)
        async with httpx2.AsyncClient() as http:
            anonymous = await http.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            wrong = await http.post(f"{base}/mcp", headers={"Authorization": "Bearer ltk_nope_nope"}, json={})
        assert anonymous.status_code == 401 and "API key" in anonymous.json()["error"]
        assert wrong.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"

        async with streamable(base, read) as c:
            assert {t.name for t in (await c.list_tools()).tools} == READ_TOOLS
            refused = await c.call_tool("start_workflow", {"name": "echo", "input": 1})
            assert refused.is_error and "read scope" in refused.content[0].text
        async with streamable(base, full) as c:
            assert {t.name for t in (await c.list_tools()).tools} == ALL_TOOLS
            started = await c.call_tool("start_workflow", {"name": "echo", "input": {"a": 1}, "workflow_id": "h1"})
            assert not started.is_error, started.content[0].text
            done = await c.call_tool("wait_for_run", {"workflow_id": "h1", "timeout_seconds": 10})
            assert done.structured_content["run"]["result"] == {"a": 1}
        assert (await app.get_run("h1"))["principal"]["id"] == "ops", "the run acts for the key's account"


async def test_a_revoked_key_is_refused(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        full, _ = await keys(app)
        key_id = full.split("_")[1]
        await ident.revoke_key(app.db, SYSTEM, key_id)
        async with httpx2.AsyncClient() as http:
            refused = await http.post(f"{base}/mcp", headers={"Authorization": f"Bearer {full}"}, json={})
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]


async def test_legacy_sse_transport_serves_the_same_tools(app: LongTail) -> None:
    register(app)
    async with running(app), http_server(app) as base:
        full, _ = await keys(app)
        async with McpClient(sse_client(f"{base}/sse", headers={"Authorization": f"Bearer {full}"})) as c:
            assert {t.name for t in (await c.list_tools()).tools} == ALL_TOOLS
            started = await c.call_tool("start_workflow", {"name": "echo", "input": 5})
            assert not started.is_error, started.content[0].text
            run = await c.call_tool("wait_for_run", {"workflow_id": started.structured_content["workflow_id"],
                                                     "timeout_seconds": 10})
            assert run.structured_content["run"]["result"] == 5


async def test_dev_mode_on_loopback_needs_no_key(app: LongTail) -> None:
    register(app)
    async with running(app), http_server(app, dev=True) as base, streamable(base, None) as c:
        started = await c.call_tool("start_workflow", {"name": "echo", "input": "dev"})
        assert not started.is_error
        assert (await app.get_run(started.structured_content["workflow_id"]))["principal"]["id"] == "system"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_both_protocol_eras_are_served_at_mcp(app: LongTail, mode: str) -> None:
    register(app)
    async with running(app), http_server(app) as base:
        full, _ = await keys(app)
        async with streamable(base, full, mode=mode) as c:
            started = await c.call_tool("start_workflow", {"name": "echo", "input": mode})
            assert not started.is_error, started.content[0].text
            done = await c.call_tool("wait_for_run", {"workflow_id": started.structured_content["workflow_id"],
                                                      "timeout_seconds": 10})
            assert done.structured_content["run"]["result"] == mode


async def test_a_verified_key_is_remembered_briefly_and_a_revocation_applies_after_that(app: LongTail) -> None:
    from starlette.responses import PlainTextResponse

    from longtail_mcp.mcp_glue.http import BearerAuth

    async def whoami(scope, receive, send):  # the principal the middleware attached
        await PlainTextResponse(scope["state"]["principal"].id)(scope, receive, send)

    now = [1000.0]  # a clock the test moves: the cache period passes without waiting it out
    async with app:
        full, _ = await keys(app)
        guarded = BearerAuth(whoami, app, dev=False, cache_seconds=5, clock=lambda: now[0])
        transport = httpx2.ASGITransport(app=guarded)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            headers = {"Authorization": f"Bearer {full}"}
            assert (await http.get("/", headers=headers)).text == "ops"
            await ident.revoke_key(app.db, SYSTEM, full.split("_")[1])
            now[0] += 4.9
            assert (await http.get("/", headers=headers)).status_code == 200, "within the cache period"
            now[0] += 0.2
            refused = await http.get("/", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]

"""Each server runs alone over stdio, as Claude Desktop starts it (`longtail-mcp stdio <server>`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client as McpClient
from mcp import StdioServerParameters

from longtail_mcp import LongTail
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def params(dsn: str, server: str, *extra: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGTAIL_")}
    env.update(DATABASE_URL=dsn, PYTHONPATH=str(ROOT))
    return StdioServerParameters(command=sys.executable, args=["-m", "longtail_mcp", "stdio", server, *extra],
                                 env=env, cwd=str(ROOT))


async def test_the_workflows_server_over_stdio_starts_and_waits_for_a_run(app: LongTail, dsn: str) -> None:
    @app.workflow()
    async def square(ctx, n):
        return n * n

    async with running(app), McpClient(params(dsn, "workflows")) as c:
        assert "start_workflow" in {t.name for t in (await c.list_tools()).tools}
        started = await c.call_tool("start_workflow", {"name": "square", "input": 7})
        assert not started.is_error, started.content[0].text
        done = await c.call_tool("wait_for_run", {"workflow_id": started.structured_content["workflow_id"],
                                                  "timeout_seconds": 20})
        assert done.structured_content["run"]["result"] == 49
        bad = await c.call_tool("start_workflow", {"input": 1})
        assert bad.is_error and "name" in bad.content[0].text
        info = await app.get_run(started.structured_content["workflow_id"])
    assert info["principal"]["id"] == "system", "stdio acts as the configured local principal"


async def test_the_human_queue_server_over_stdio_acts_as_the_configured_account(app: LongTail, dsn: str) -> None:
    async with app:
        await ident.create_role(app.db, SYSTEM, "reviewer")
        await ident.create_account(app.db, SYSTEM, "rita")
        await ident.set_membership(app.db, SYSTEM, "reviewer", "rita")
    async with McpClient(params(dsn, "human-queue", "--as", "rita")) as c:
        opened = await c.call_tool("escalate_to_human", {"role": "reviewer", "message": "look"})
        assert not opened.is_error and opened.structured_content["created_by"] == "rita"
        claimed = await c.call_tool("claim_escalation", {"escalation_id": opened.structured_content["id"]})
        assert claimed.structured_content["assigned_to"] == "rita"


def test_config_claude_prints_one_stdio_entry_per_server() -> None:
    out = subprocess.run([sys.executable, "-m", "longtail_mcp", "config", "claude", "--as", "rita"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    servers = json.loads(out)["mcpServers"]
    assert set(servers) == {"longtail-workflows", "longtail-human-queue", "longtail-compiler", "longtail-db-query",
                            "longtail-files", "longtail-http-fetch"}
    assert servers["longtail-workflows"]["args"] == ["-m", "longtail_mcp", "stdio", "workflows", "--as", "rita"]
    assert servers["longtail-workflows"]["command"] == sys.executable

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


def config(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    return subprocess.run([sys.executable, "-m", "longtail_mcp", "config", *args], cwd=cwd, capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}).stdout


def test_config_claude_prints_the_gateway_and_with_split_one_entry_per_server() -> None:
    servers = json.loads(config("claude", "--as", "rita"))["mcpServers"]
    assert servers == {"longtail": {"command": sys.executable,
                                    "args": ["-m", "longtail_mcp", "stdio", "gateway", "--as", "rita"]}}
    split = json.loads(config("claude", "--split", "--database-url", "postgresql://db/x"))["mcpServers"]
    assert set(split) == {"longtail-workflows", "longtail-human-queue", "longtail-compiler", "longtail-db-query",
                          "longtail-files", "longtail-http-fetch"}
    assert split["longtail-files"]["args"] == ["-m", "longtail_mcp", "stdio", "files"]
    assert split["longtail-files"]["env"] == {"DATABASE_URL": "postgresql://db/x"}
    http = json.loads(config("claude", "--http", "--key", "ltk_abc"))["mcpServers"]["longtail"]
    assert http == {"type": "http", "url": "http://127.0.0.1:8420/mcp",
                    "headers": {"Authorization": "Bearer ltk_abc"}}


def test_config_install_merges_into_claude_desktops_file_keeping_other_servers(tmp_path: Path) -> None:
    home = tmp_path / "user"
    existing = home / ".config" / "Claude" / "claude_desktop_config.json"
    existing.parent.mkdir(parents=True)
    existing.write_text(json.dumps({"mcpServers": {"filesystem": {"command": "npx", "args": ["fs"]}},
                                    "theme": "dark"}))
    out = config("claude", "--install", env={"HOME": str(home), "XDG_CONFIG_HOME": ""})
    merged = json.loads(existing.read_text())
    assert set(merged["mcpServers"]) == {"filesystem", "longtail"} and merged["theme"] == "dark"
    backups = list(existing.parent.glob("claude_desktop_config.json.*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text())["mcpServers"] == {
        "filesystem": {"command": "npx", "args": ["fs"]}}
    assert f"wrote longtail into {existing}" in out
    existing.write_text("{not json")
    broken = subprocess.run([sys.executable, "-m", "longtail_mcp", "config", "claude", "--install"], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "HOME": str(home),
                                                                 "XDG_CONFIG_HOME": "", "PYTHONPATH": str(ROOT)})
    assert broken.returncode == 3 and "is not JSON" in broken.stderr and existing.read_text() == "{not json"


def test_config_claude_code_and_vscode(tmp_path: Path) -> None:
    line = config("claude-code", "--as", "rita").strip()
    assert line == f"claude mcp add longtail -- {sys.executable} -m longtail_mcp stdio gateway --as rita"
    http = config("claude-code", "--http", "https://lt.example/", "--key", "ltk_1").strip()
    assert http == ("claude mcp add --transport http longtail https://lt.example/mcp "
                    "--header 'Authorization: Bearer ltk_1'")
    config("claude-code", "--write", cwd=tmp_path)
    assert json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]["longtail"]["args"][-1] == "gateway"
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode" / "mcp.json").write_text(json.dumps({"servers": {"other": {"type": "http", "url": "x"}}}))
    config("vscode", cwd=tmp_path)
    servers = json.loads((tmp_path / ".vscode" / "mcp.json").read_text())["servers"]
    assert set(servers) == {"other", "longtail"} and servers["longtail"]["type"] == "stdio"
    assert json.loads(config("vscode", "--print", "--http"))["servers"]["longtail"]["type"] == "http"


async def test_the_gateway_over_stdio_serves_every_servers_tools(app: LongTail, dsn: str) -> None:
    @app.workflow()
    async def double(ctx, n):
        return 2 * n

    async with running(app), McpClient(params(dsn, "gateway")) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"start_workflow", "claim_escalation", "compile_run", "read_file", "run_sql", "fetch_text",
                "query"} <= names
        started = await c.call_tool("start_workflow", {"name": "double", "input": 21})
        done = await c.call_tool("wait_for_run", {"workflow_id": started.structured_content["workflow_id"],
                                                  "timeout_seconds": 20})
    assert done.structured_content["run"]["result"] == 42

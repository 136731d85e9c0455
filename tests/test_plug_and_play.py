"""Plug and play: the Claude Desktop entry `config claude` prints works in a fresh home with nothing running.

The first stdio server starts the home's embedded Postgres (through its detached keeper), a second one
attaches to the same database, either may close first, and once both are gone the database stops by
itself after the idle time (docs/clients.md, db/keeper.py).
"""

import json
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client as McpClient
from mcp import StdioServerParameters

from longtail_mcp.db.embedded import pid_alive
from tests.test_cli import Serve, cli_env, run_cli, run_cli_async

pytestmark = pytest.mark.anyio
IDLE = 3


def idle_env(home: Path) -> dict[str, str]:
    env = cli_env(home)
    env["LONGTAIL_PG_IDLE_SECONDS"] = str(IDLE)
    return env


def db_status(env: dict[str, str]) -> dict[str, Any]:
    done = run_cli("db", "status", "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def wait_stopped(env: dict[str, str], within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        status = db_status(env)
        if not status["running"] or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def wait_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not pid_alive(pid)


@asynccontextmanager
async def claude_desktop(entry: dict[str, Any], env: dict[str, str], cwd: Path) -> AsyncIterator[Any]:
    """What Claude Desktop does with an `mcpServers` entry: run its command with its args and env."""
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env={**env, **entry.get("env", {})},
                                   cwd=str(cwd))
    async with McpClient(params) as client:
        yield client


class Held:
    """A client session held open by its own task, so sessions can close in any order."""

    def __init__(self) -> None:
        self.client: Any = None
        self.ready = anyio.Event()
        self.close = anyio.Event()
        self.closed = anyio.Event()

    @classmethod
    async def open(cls, tg: Any, entry: dict[str, Any], env: dict[str, str], cwd: Path) -> "Held":
        held = cls()

        async def hold() -> None:
            try:
                async with claude_desktop(entry, env, cwd) as client:
                    held.client = client
                    held.ready.set()
                    await held.close.wait()
            finally:
                held.closed.set()
                held.ready.set()

        tg.start_soon(hold)
        await held.ready.wait()
        assert held.client is not None, "the client did not start"
        return held

    async def aclose(self) -> None:
        self.close.set()
        await self.closed.wait()


def tools_of(listed: Any) -> set[str]:
    return {t.name for t in listed.tools}


async def test_the_printed_claude_desktop_entry_works_in_a_fresh_home_and_the_database_stops_when_idle(
        home: Path) -> None:
    env = idle_env(home)
    printed = json.loads((await run_cli_async("config", "claude", env=env)).stdout)
    assert list(printed["mcpServers"]) == ["longtail"]
    entry = printed["mcpServers"]["longtail"]
    assert not db_status(env)["running"], "nothing runs before the client starts"

    with anyio.fail_after(180):
        async with anyio.create_task_group() as tg:
            held = await Held.open(tg, entry, env, home)
            first = held.client
            names = tools_of(await first.list_tools())
            assert {"start_workflow", "wait_for_run", "health_snapshot", "read_file"} <= names
            # A shipped pipeline is a tool: calling it starts a run that this stdio server's worker executes.
            done = await first.call_tool("health_snapshot", {"path": "snapshots/first.json"})
            assert not done.is_error, done.content[0].text
            assert done.structured_content["status"] == "completed", done.structured_content
            wid = done.structured_content["workflow_id"]
            # start_workflow + wait_for_run, the workflow tools' own path, completes too
            started = await first.call_tool("start_workflow", {"name": "pipeline", "input": {
                "pipeline": "health_snapshot", "inputs": {"path": "snapshots/second.json"}}})
            assert not started.is_error, started.content[0].text
            waited = await first.call_tool("wait_for_run", {"workflow_id": started.structured_content["workflow_id"],
                                                            "timeout_seconds": 30})
            assert waited.structured_content["run"]["status"] == "completed", waited.structured_content

            other = await Held.open(tg, entry, env, home)
            second = other.client
            seen = await second.call_tool("get_run", {"workflow_id": wid})
            assert seen.structured_content["status"] == "completed", "the second client shares the database"
            status = db_status(env)
            apps = {c["application"]: c["connections"] for c in status["clients"]}
            assert apps.get("longtail-mcp stdio gateway", 0) >= 4, apps  # two processes' pools
            keeper, postgres = status["keeper"], status["pid"]
            # the client that started the database closes first: the other one keeps working
            await held.aclose()
            again = await second.call_tool("health_snapshot", {"path": "snapshots/third.json"})
            assert again.structured_content["status"] == "completed", again.structured_content
            assert pid_alive(keeper) and pid_alive(postgres)
            await other.aclose()
    assert (home / "files" / "snapshots" / "third.json").exists()

    stopped = wait_stopped(env, within=IDLE + 15)
    assert not stopped["running"], f"still running {IDLE + 15}s after the last client left: {stopped}"
    assert not pid_alive(postgres)
    assert wait_gone(keeper, within=10), "the keeper exits right after Postgres"
    assert "no client for 3s: stopping PostgreSQL" in (home / "keeper.log").read_text()


def test_db_status_start_and_stop(home: Path) -> None:
    env = idle_env(home)
    env["LONGTAIL_PG_IDLE_SECONDS"] = "0"  # never by itself: only `db stop` ends it
    assert run_cli("db", env=env).stdout.startswith("embedded Postgres, not running")
    assert run_cli("db", "start", env=env).returncode == 0
    status = db_status(env)
    assert status["running"] and status["keeper"] and status["idle_seconds"] == 0
    assert run_cli("runs", "list", env=env).returncode == 0, "a read-only verb attaches to it"
    pid = status["pid"]
    with Serve(env) as serve:
        serve.ready()
        assert serve.interrupt() == 0, serve.stderr
    assert db_status(env)["running"], "serve leaves the shared database to its keeper"
    # a connected process makes `db stop` refuse, naming it; --force disconnects it
    with Serve(env) as serve:
        serve.ready()
        refused = run_cli("db", "stop", env=env)
        assert refused.returncode == 5 and "longtail-mcp serve" in refused.stderr, refused.stderr
        assert db_status(env)["running"]
        stopped = run_cli("db", "stop", "--force", "--json", env=env)
        assert json.loads(stopped.stdout) == {"stopped": True}, stopped.stderr
    status = db_status(env)
    assert not status["running"] and not pid_alive(pid)
    assert json.loads(run_cli("db", "stop", "--json", env=env).stdout) == {"stopped": False}


def test_a_killed_keeper_takes_its_postgres_down_and_the_next_client_starts_afresh(home: Path) -> None:
    env = idle_env(home)
    assert run_cli("db", "start", env=env).returncode == 0
    first = db_status(env)
    os.kill(first["keeper"], signal.SIGKILL)
    assert wait_gone(first["pid"], within=30), "Postgres follows its keeper (no orphan server)"
    assert run_cli("runs", "list", env=env).returncode == 7, "read-only: says none is running"
    assert run_cli("db", "start", env=env).returncode == 0
    again = db_status(env)
    assert again["running"] and again["keeper"] != first["keeper"]
    assert run_cli("db", "stop", env=env).returncode == 0


def test_a_server_found_without_a_keeper_is_adopted_and_stopped_when_idle(home: Path) -> None:
    from longtail_mcp.db.embedded import EmbeddedPostgres

    env = idle_env(home)
    server = EmbeddedPostgres.for_home(home, port=int(env["LONGTAIL_PG_PORT"]))
    server.start()  # e.g. left by an older version: nobody would ever stop it
    try:
        listed = run_cli("runs", "list", env=env)
        assert listed.returncode == 0, listed.stderr
        status = db_status(env)
        assert status["keeper"] and status["pid"] == server.process.pid  # type: ignore[union-attr]
        assert not wait_stopped(env, within=IDLE + 15)["running"]
        assert server.process.wait(10) == 0  # type: ignore[union-attr]  # a clean shutdown
        assert not (home / "keeper.json").exists()
    finally:
        server.stop()


async def test_an_entry_printed_with_app_runs_that_apps_workflows_in_the_stdio_server(dsn: str, home: Path) -> None:
    env = cli_env(home, database_url=dsn)
    printed = json.loads((await run_cli_async("config", "claude", "--app", "tests.apps.cli_app:app", env=env)).stdout)
    entry = printed["mcpServers"]["longtail"]
    assert entry["args"][-2:] == ["--app", "tests.apps.cli_app:app"] and entry["env"]["PYTHONPATH"]
    with anyio.fail_after(120):
        async with claude_desktop(entry, env, home) as client:  # started elsewhere than the app's directory
            started = await client.call_tool("start_workflow", {"name": "tally", "input": 3})
            assert not started.is_error, started.content[0].text
            done = await client.call_tool("wait_for_run", {"workflow_id": started.structured_content["workflow_id"],
                                                           "timeout_seconds": 30})
    assert done.structured_content["run"]["result"] == {"n": 3, "doubled": 6, "squared": 36}

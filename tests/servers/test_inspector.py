"""The MCP Inspector CLI (npm, the reference client) against our stdio server and `serve`'s HTTP endpoint.

The pinned inspector is installed once with `npm install --prefix` into a cache directory
(`~/.cache/longtail-mcp-test-npm`, or under `$XDG_CACHE_HOME`) and reused by later runs; it is run
with `npx --no-install`, offline, with HOME set to a temp dir. Without node/npx, or when the install
fails (npm registry unreachable), these tests are skipped with the reason.
"""

import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from system_servers import SERVERS
from tests.test_cli import APP, Serve, cli_env, run_cli

ROOT = Path(__file__).resolve().parents[2]
VERSION = "2.12.0"
PACKAGE = f"@modelcontextprotocol/inspector@{VERSION}"
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "longtail-mcp-test-npm"
CACHE = CACHE_ROOT / f"inspector-{VERSION}"
INSTALL_LOG = CACHE_ROOT / f"inspector-{VERSION}-install.log"
NPX = shutil.which("npx")

WORKFLOW_TOOLS = {spec.name for spec in SERVERS["workflows"].TOOLS}
FAMILY_TOOLS = {spec.name for module in SERVERS.values() for spec in module.TOOLS}
READ_TOOLS = {spec.name for module in SERVERS.values() for spec in module.TOOLS if spec.read_only}


def _npm_env(**more: str) -> dict[str, str]:
    """npm settings that keep it quiet and off the network except for the one install."""
    return {"npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false",
            "NO_COLOR": "1", **more}


def _hermetic_env(home: Path) -> dict[str, str]:
    """The environment of an `npx --no-install` run: PATH, a temp HOME, no registry access."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
            **_npm_env(npm_config_offline="true", npm_config_cache=str(home / ".npm"))}


def _installed() -> bool:
    manifest = CACHE / "node_modules" / "@modelcontextprotocol" / "inspector" / "package.json"
    try:
        version = json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(version == VERSION and (CACHE / "node_modules" / ".bin" / "mcp-inspector").exists())


def _install() -> str | None:
    """Install the pinned inspector into CACHE (atomically: a temp dir renamed); the reason if it failed."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not on PATH"
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time; the others then find it installed
        if _installed():
            return None
        staging = Path(tempfile.mkdtemp(prefix=f".inspector-{VERSION}-", dir=CACHE_ROOT))
        try:
            env = {**os.environ, **_npm_env(npm_config_cache=str(CACHE_ROOT / "npm-cache"))}
            try:
                done = subprocess.run([npm, "install", "--prefix", str(staging), "--ignore-scripts", "--no-audit",
                                       "--no-fund", PACKAGE], env=env, stdin=subprocess.DEVNULL,
                                      capture_output=True, text=True, timeout=300, check=False)
                output, failed = done.stdout + done.stderr, done.returncode != 0
            except subprocess.TimeoutExpired:
                output, failed = "npm install timed out after 300 s", True
            INSTALL_LOG.write_text(output)
            if failed:
                return f"`npm install {PACKAGE}` failed (npm registry unreachable?); its output: {INSTALL_LOG}"
            shutil.rmtree(CACHE, ignore_errors=True)  # a stale or partial copy of this version
            staging.rename(CACHE)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return None if _installed() else f"{PACKAGE} is not in {CACHE} after npm install; see {INSTALL_LOG}"


@functools.cache
def inspector_problem() -> str | None:
    """Why the pinned inspector cannot run here (None when it can): installs it once, then checks it runs."""
    if NPX is None or shutil.which("node") is None:
        return "node and npx are not on PATH"
    if not _installed() and (problem := _install()) is not None:
        return problem
    with tempfile.TemporaryDirectory(prefix="lt-inspector-home-") as home:
        try:
            probe = subprocess.run([NPX, "--no-install", "mcp-inspector", "--version"], cwd=CACHE,
                                   env=_hermetic_env(Path(home)), stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            return "`mcp-inspector --version` did not answer within 60 s"
    if probe.returncode != 0 or VERSION not in probe.stdout:
        return f"`mcp-inspector --version` failed ({probe.returncode}): {(probe.stdout + probe.stderr)[-500:]}"
    return None


pytestmark = [
    pytest.mark.skipif(NPX is None or shutil.which("node") is None, reason="node and npx are not on PATH"),
    # A string condition is evaluated when the first test of this file is set up, not at import:
    # collecting the suite never runs npm.
    pytest.mark.skipif("inspector_problem() is not None",
                       reason=f"the MCP Inspector CLI could not be installed or run: `npm install --prefix {CACHE} "
                              f"{PACKAGE}` failed (npm registry unreachable?) or the CLI did not start; "
                              f"npm's output is in {INSTALL_LOG}"),
]


@dataclass
class Inspector:
    """`npx --no-install mcp-inspector --cli --format json ARGS`, run hermetically."""

    home: Path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert NPX is not None
        return subprocess.run([NPX, "--no-install", "mcp-inspector", "--cli", "--format", "json", *args],
                              cwd=CACHE, env=_hermetic_env(self.home), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, check=False)

    def result(self, *args: str) -> Any:
        """The `result` of a call that must succeed (exit 0)."""
        done = self(*args)
        assert done.returncode == 0, f"inspector exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        return json.loads(done.stdout)["result"]


@pytest.fixture(scope="session")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Inspector:
    assert inspector_problem() is None  # installed by the skip condition, cached for the session
    return Inspector(tmp_path_factory.mktemp("inspector-home"))


def call(tool: str, arguments: dict[str, Any]) -> list[str]:
    return ["--method", "tools/call", "--tool-name", tool, "--tool-args-json", json.dumps(arguments)]


def test_the_inspector_lists_and_calls_the_workflows_server_over_stdio(inspector: Inspector, dsn: str) -> None:
    # The inspector passes a stdio server only PATH, HOME and a few others: the rest goes in with -e.
    server = ["-e", f"DATABASE_URL={dsn}", "-e", f"PYTHONPATH={ROOT}", "--cwd", str(ROOT),
              "--", sys.executable, "-m", "longtail_mcp", "stdio", "workflows"]

    tools = {t["name"]: t for t in inspector.result("--method", "tools/list", *server)["tools"]}
    assert set(tools) >= WORKFLOW_TOOLS
    assert tools["list_runs"]["annotations"]["readOnlyHint"] is True
    assert tools["start_workflow"]["inputSchema"]["required"] == ["name"]
    assert tools["start_workflow"]["inputSchema"]["additionalProperties"] is False

    with psycopg.connect(dsn, autocommit=True) as conn:  # a worker elsewhere serves `tally` (none runs here)
        conn.execute("INSERT INTO longtail.worker (id, host, pid, workflows, concurrency) "
                     "VALUES ('remote', 'elsewhere', 1, '{tally}', 1)")
    started = inspector.result(*call("start_workflow", {"name": "tally", "input": {"n": 2}, "workflow_id": "i-1"}),
                               *server)
    assert started["isError"] is False
    assert started["structuredContent"] == {"workflow_id": "i-1", "created": True, "status": "pending"}

    runs = inspector.result(*call("list_runs", {}), *server)
    assert json.loads(runs["content"][0]["text"]) == runs["structuredContent"]
    assert [(r["id"], r["status"]) for r in runs["structuredContent"]["runs"]] == [("i-1", "pending")], \
        "the stdio server records the run; workers (none here) execute it"

    bad = inspector(*call("start_workflow", {"input": 1}), *server)
    assert bad.returncode == 5, bad.stderr  # the inspector's exit code for a tool error result
    assert json.loads(bad.stdout)["result"]["content"][0]["text"].startswith("[invalid_input] start_workflow: name")



def test_the_inspector_reads_the_gateways_resources_and_prompts_over_stdio(inspector: Inspector, dsn: str) -> None:
    server = ["-e", f"DATABASE_URL={dsn}", "-e", f"PYTHONPATH={ROOT}", "--cwd", str(ROOT),
              "--", sys.executable, "-m", "longtail_mcp", "stdio", "gateway"]
    templates = inspector.result("--method", "resources/templates/list", *server)["resourceTemplates"]
    assert {"longtail://runs/{id}", "longtail://files/{+path}"} <= {t["uriTemplate"] for t in templates}
    (table,) = inspector.result("--method", "resources/read", "--uri", "longtail://schema/workflow",
                                *server)["contents"]
    assert table["mimeType"] == "application/json" and json.loads(table["text"])["tables"][0]["table"] == "workflow"
    missing = inspector("--method", "resources/read", "--uri", "longtail://runs/nope", *server)
    assert missing.returncode != 0 and "[not_found] no run with id 'nope'" in missing.stdout + missing.stderr
    prompt = inspector.result("--method", "prompts/get", "--prompt-name", "explain_denial",
                              "--prompt-args", "error=[denied] outside_root", *server)
    assert "[denied] outside_root" in prompt["messages"][0]["content"]["text"]


@contextlib.contextmanager
def serving(dsn: str) -> Iterator[tuple[str, str, str]]:
    """`longtail-mcp serve` on DATABASE_URL with the test app: (base URL, first admin key, a read key)."""
    home = Path(tempfile.mkdtemp(prefix="lt-inspector-serve-"))
    env = cli_env(home, database_url=dsn)
    try:
        with Serve(env, "--app", APP) as serve:
            url, _ = serve.ready()
            first = serve.lines.get(timeout=10)
            assert first is not None and first.startswith("first admin API key"), first
            created = run_cli("keys", "create", "admin", "--scope", "read", "--json", env=env)
            assert created.returncode == 0, created.stderr
            yield url, first.split()[-1], json.loads(created.stdout)["key"]
            assert serve.interrupt() == 0, serve.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_the_inspector_reaches_serve_over_http_and_sse_with_bearer_keys(inspector: Inspector, dsn: str) -> None:
    with serving(dsn) as (url, full, read):
        def auth(key: str) -> list[str]:
            return ["--header", f"Authorization: Bearer {key}"]

        for era in ("modern", "legacy"):
            listed = inspector.result(f"{url}/mcp", *auth(full), "--protocol-era", era, "--method", "tools/list")
            assert {t["name"] for t in listed["tools"]} >= FAMILY_TOOLS, era

        listed = inspector.result(f"{url}/mcp", *auth(read), "--protocol-era", "modern", "--method", "tools/list")
        tools = listed["tools"]
        assert {t["name"] for t in tools} >= READ_TOOLS
        assert not {t["name"] for t in tools} & (FAMILY_TOOLS - READ_TOOLS), "a read key sees no write tool"
        assert all(t["annotations"]["readOnlyHint"] for t in tools)
        refused = inspector(f"{url}/mcp", *auth(read), *call("start_workflow", {"name": "tally", "input": 1}))
        assert refused.returncode != 0 and "start_workflow" in refused.stderr

        started = inspector.result(f"{url}/mcp", *auth(full), "--protocol-era", "modern",
                                   *call("start_workflow", {"name": "tally", "input": 4, "workflow_id": "i-http"}))
        assert started["structuredContent"]["created"] is True
        waited = inspector.result(f"{url}/sse", *auth(full),
                                  *call("wait_for_run", {"workflow_id": "i-http", "timeout_seconds": 20}))
        assert waited["structuredContent"]["done"] is True
        assert waited["structuredContent"]["run"]["result"] == {"n": 4, "doubled": 8, "squared": 64}

        for headers in ([], auth("ltk_nope_nope")):
            anonymous = inspector(f"{url}/mcp", *headers, "--stored-auth-only", "--method", "tools/list")
            assert anonymous.returncode != 0, anonymous.stdout
            assert '"code":"auth_required"' in anonymous.stderr.replace(" ", "")

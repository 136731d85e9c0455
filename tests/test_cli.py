"""The `longtail-mcp` command, run the way users run it: as a subprocess."""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import anyio
import psycopg
import pytest

from longtail_mcp import LongTail
from longtail_mcp.db.embedded import pid_alive
from longtail_mcp.db.migrate import available, latest_version
from tests.apps.cli_app import tally
from tests.conftest import free_port, running

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "longtail_mcp"]
APP = "tests.apps.cli_app:app"
READY = re.compile(r"^longtail-mcp ready: (http://127\.0\.0\.1:\d+)  data: (.+)$")


def cli_env(home: Path, *, database_url: str | None = None) -> dict[str, str]:
    """The caller's environment without any longtail or database settings, plus these."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("LONGTAIL_")}
    env["LONGTAIL_HOME"] = str(home)
    env["LONGTAIL_PG_PORT"] = str(free_port())
    env["LONGTAIL_PG_IDLE_SECONDS"] = "2"  # a home's embedded Postgres does not outlive its test by much
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


async def run_cli_async(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    with anyio.fail_after(60):
        result = await anyio.run_process([*CLI, *args], cwd=ROOT, env=env, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


class Serve:
    """A `longtail-mcp serve --port 0` subprocess whose output is read by threads."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--port", "0", *args], cwd=ROOT, env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, False), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: IO[str], into: list[str], announce: bool) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            if announce:
                self.lines.put(line.rstrip("\n"))
        if announce:
            self.lines.put(None)

    def ready(self, timeout: float = 60) -> tuple[str, str]:
        """(base url, data description) from the first line, which must be the ready line."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"serve printed nothing within {timeout}s; stderr: {self.stderr}")
        if line is None:
            self.proc.wait(10)
            self._join()
            pytest.fail(f"serve exited ({self.proc.returncode}) before ready; stderr:\n" + "\n".join(self.stderr))
        match = READY.match(line)
        assert match, f"first line is not the ready line: {line!r}"
        return match.group(1), match.group(2)

    def interrupt(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        self._join()
        return code

    def _join(self) -> None:
        for reader in self.readers:
            reader.join(10)

    def __enter__(self) -> "Serve":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._join()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def test_serve_on_a_fresh_home_is_healthy_and_its_postgres_stops_once_idle_after_sigint(home: Path) -> None:
    env = cli_env(home)
    with Serve(env) as serve:
        url, data = serve.ready()
        assert data == str(home / "pgdata")
        status, health = get_json(f"{url}/health")
        assert status == 200, health
        assert health["status"] == "ok"
        assert health["database"] == "ok"
        assert health["migration"] == health["migrations_latest"] == latest_version()
        assert health["worker"]["alive"] is True
        assert health["workers_alive"] >= 1
        postmaster = home / "pgdata" / "postmaster.pid"
        pg_pid = int(postmaster.read_text().splitlines()[0])
        assert pid_alive(pg_pid)
        status = json.loads(run_cli("status", "--json", env=env).stdout)
        assert status["database"]["running"] and status["database"]["pid"] == pg_pid
        assert [s["url"] for s in status["serves"]] == [url] and len(status["workers"]) >= 1
        text = run_cli("status", env=env).stdout
        assert f"serve     {url} (pid " in text and "embedded Postgres, running (pid" in text

        assert serve.interrupt() == 0, serve.stderr
    assert [line for line in serve.stdout if line.startswith("longtail-mcp ready:")] == [serve.stdout[0]]
    assert serve.stdout[-1] == "longtail-mcp stopped"
    after = json.loads(run_cli("status", "--json", env=env).stdout)
    assert after["serves"] == [] and after["workers"] == []
    deadline = time.monotonic() + 20  # the home's keeper stops it once nobody is connected (2 s here)
    while pid_alive(pg_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not postmaster.exists() and not pid_alive(pg_pid)
    assert json.loads(run_cli("status", "--json", env=env).stdout)["database"]["running"] is False


def test_a_second_serve_on_the_same_home_shares_its_database(home: Path) -> None:
    env = cli_env(home)
    with Serve(env) as first, Serve(env) as second:
        url, _ = first.ready()
        other, _ = second.ready()
        assert other != url
        status = json.loads(run_cli("status", "--json", env=env).stdout)
        assert sorted(s["url"] for s in status["serves"]) == sorted([url, other])
        assert len(status["workers"]) == 2
        assert second.interrupt() == 0, second.stderr
        code, health = get_json(f"{url}/health")  # the first one is unharmed
        assert code == 200 and health["database"] == "ok", health
        assert first.interrupt() == 0, first.stderr


async def test_serve_with_database_url_uses_it_without_starting_postgres(dsn: str, app: LongTail) -> None:
    home = Path(tempfile.mkdtemp(prefix="lt-cli-url-"))
    try:
        with Serve(cli_env(home, database_url=dsn), "--app", APP) as serve:
            url, data = serve.ready()
            assert "DATABASE_URL" in data
            status, health = get_json(f"{url}/health")
            assert status == 200, health
            assert health["database"] == "ok"
            served_worker = health["worker"]["id"]

            # A run started from Python is executed by the served worker (this process runs none).
            app.workflow()(tally)
            async with app:
                handle = await app.start("tally", 4)
                assert await handle.result(timeout=20) == {"n": 4, "doubled": 8, "squared": 64}
                history = await handle.export()
            assert {step["worker"] for step in history["steps"]} == {served_worker}

            assert serve.interrupt() == 0, serve.stderr
        assert not (home / "pgdata").exists()
        assert not (home / "pg-password").exists()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_migrate_prints_the_versions_it_applied_and_none_the_second_time(empty_dsn: str, home: Path) -> None:
    env = cli_env(home, database_url=empty_dsn)
    everything = [version for version, _, _ in available()]

    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert f"migrations applied: {everything};" in first.stdout
    assert f"at {latest_version()} of {latest_version()}" in first.stdout
    with psycopg.connect(empty_dsn) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM longtail.migration ORDER BY version")] == everything

    second = run_cli("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "migrations applied: none;" in second.stdout
    assert f"at {latest_version()} of {latest_version()}" in second.stdout
    assert not (home / "pgdata").exists()


async def test_runs_list_show_and_export_report_runs_made_with_the_python_api(
    dsn: str, app: LongTail, home: Path
) -> None:
    app.workflow()(tally)
    async with running(app):
        first = await app.start("tally", 3, workflow_id="tally-first")
        assert await first.result(timeout=10) == {"n": 3, "doubled": 6, "squared": 36}
        second = await app.start("tally", 5, workflow_id="tally-second")
        assert await second.result(timeout=10) == {"n": 5, "doubled": 10, "squared": 100}
    env = cli_env(home, database_url=dsn)

    listed = await run_cli_async("runs", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["name"], r["status"]) for r in rows] == [
        ("tally-second", "tally", "completed"),  # newest first
        ("tally-first", "tally", "completed"),
    ]

    shown = await run_cli_async("runs", "show", "tally-first", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert (info["id"], info["status"], info["input"]) == ("tally-first", "completed", 3)
    assert info["result"] == {"n": 3, "doubled": 6, "squared": 36}
    assert info["completed_at"] is not None

    exported = await run_cli_async("runs", "export", "tally-second", env=env)
    assert exported.returncode == 0, exported.stderr
    history = json.loads(exported.stdout)
    assert history["run"]["id"] == "tally-second"
    assert history["run"]["result"] == {"n": 5, "doubled": 10, "squared": 100}
    assert [(s["seq"], s["kind"], s["name"], s["status"], s["output"]) for s in history["steps"]] == [
        (1, "step", "double", "completed", 10),
        (2, "step", "square", "completed", 100),
    ]
    assert history["steps"][0]["input"] == {"args": [5], "kwargs": {}}
    assert history["signals"] == []


def test_runs_show_of_an_unknown_id_fails_with_a_message_not_a_traceback(dsn: str, home: Path) -> None:
    result = run_cli("runs", "show", "no-such-run", env=cli_env(home, database_url=dsn))
    assert result.returncode != 0
    assert "no run with id 'no-such-run'" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_read_only_commands_never_start_a_database_they_say_none_is_running(home: Path) -> None:
    env = cli_env(home)
    for verb in (["runs"], ["runs", "list"], ["escalations", "list"], ["pipelines", "list"], ["audit", "export"]):
        done = run_cli(*verb, env=env)
        assert done.returncode == 7, (verb, done.stderr)
        assert done.stderr.startswith("longtail-mcp: no longtail-mcp database is running") and "Traceback" not in \
            done.stderr, done.stderr
    assert not list(home.rglob("PG_VERSION")) and not list(Path(home / "pgdata").resolve().glob("*")), "no initdb"


def test_the_stdio_server_names_the_cli_offers_are_the_familys() -> None:
    from longtail_mcp.cli import SERVER_NAMES
    from system_servers import SERVERS

    assert sorted(SERVERS) == SERVER_NAMES


HEAVY = ("anthropic", "mcp", "system_servers", "longtail_mcp.app", "longtail_mcp.runtime", "longtail_mcp.agents",
         "longtail_mcp.pipelines", "longtail_mcp.humans")


@pytest.mark.parametrize("argv", [["--help"], ["status"], ["db", "status"], ["config", "claude"], ["runs"],
                                  ["escalations", "list"]])
def test_the_command_line_answers_help_and_status_without_loading_the_runtime(argv: list[str], home: Path) -> None:
    code = ("import sys, runpy\n"
            f"sys.argv = ['longtail-mcp', *{argv!r}]\n"
            "try:\n    runpy.run_module('longtail_mcp', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(home), capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stderr.strip().splitlines()[-1] == "LOADED []", \
        "these answer in well under 0.5 s only without the runtime and the SDKs (bench/cli.py)"


def test_the_parsers_choices_are_the_cores() -> None:
    from longtail_mcp.agents import closed_loop
    from longtail_mcp.cli import parsers
    from longtail_mcp.humans import identity, inbox

    assert parsers.POLICIES == closed_loop.POLICIES and parsers.ROUTERS == closed_loop.ROUTERS
    assert parsers.MEMBERSHIPS == identity.MEMBERSHIPS and parsers.ESCALATION_STATUSES == inbox.STATUSES


def test_every_option_has_help_and_every_command_an_example() -> None:
    import argparse

    from longtail_mcp.cli import build_parser

    missing, commands = [], {}

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if not path:
                        commands[name] = sub
                    walk(sub, [*path, name])
            elif not action.help:
                missing.append(f"{' '.join(path)} {action.dest}")

    walk(build_parser(), [])
    assert missing == []
    assert [n for n, sub in commands.items() if not (sub.epilog or "").startswith("example:")] == []
    help_text = subprocess.run([*CLI, "pipelines", "--help"], cwd=ROOT, capture_output=True, text=True,
                               timeout=60, check=True).stdout
    assert "example:\n  longtail-mcp pipelines create note.yaml" in help_text

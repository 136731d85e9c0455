"""One embedded Postgres per home, shared by every longtail-mcp process, and the keeper that stops it.

The first process that needs the database (a `serve`, a `stdio` server Claude Desktop started, a
`worker`, a Python `LongTail()`) starts a *keeper*: a small detached process (`python -m
longtail_mcp.db.keeper`) that starts Postgres and outlives whoever started it. Every later process
attaches to that server, whatever order they start and stop in. When no client has been connected
for `pg_idle_seconds` (default 300), the keeper stops Postgres and exits; the next process that
needs it starts a new one. `longtail-mcp db status|stop` shows and stops it.

A lock file (`home/embedded.lock`) serializes starting, attaching and stopping. Attaching also
touches it, and the keeper counts a touch as activity, so a process that attached but has not yet
opened its pool is never stopped under it. If the keeper dies (on Linux, Postgres follows it:
see `embedded._die_with_parent`) or a server is found without one, the next process to attach
starts a keeper that adopts the running server.
"""

import argparse
import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from longtail_mcp.config import Settings
from longtail_mcp.db.embedded import EmbeddedPostgres, pid_alive
from longtail_mcp.errors import ConfigurationError, Conflict

logger = logging.getLogger(__name__)

LOCK = "embedded.lock"
KEEPER = "keeper.json"
KEEPER_LOG = "keeper.log"
START_TIMEOUT = 120.0  # initdb on a slow disk, then start-up
CLIENTS = """SELECT coalesce(nullif(application_name, ''), '(unnamed)') AS application, count(*) AS connections
             FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
               AND application_name IS DISTINCT FROM 'longtail-mcp keeper'
             GROUP BY 1 ORDER BY 1"""


@contextlib.contextmanager
def locked(home: Path) -> Iterator[Path]:
    """Hold the home's lock (exclusive, across processes) while starting, attaching or stopping."""
    import fcntl  # POSIX, like the embedded server itself

    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)  # releases the lock


def _last_attach(home: Path) -> float:
    try:
        return (home / LOCK).stat().st_mtime
    except OSError:
        return 0.0


def keeper_info(home: Path) -> dict[str, Any] | None:
    """What the live keeper of `home` wrote about itself, or None when there is none."""
    try:
        info: dict[str, Any] = json.loads((home / KEEPER).read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if pid_alive(pid) else None


def not_running(server: EmbeddedPostgres) -> ConfigurationError:
    return ConfigurationError(
        f"no longtail-mcp database is running for {server.data_dir}; any command that needs one starts it "
        "(`longtail-mcp serve`, `longtail-mcp stdio gateway`, `longtail-mcp db start`), or set DATABASE_URL"
    )


def attach(settings: Settings, *, start: bool = True) -> str:
    """A DSN of the home's running embedded Postgres, starting it (with its keeper) when `start` allows.

    Raises:
        ConfigurationError: none is running and `start` is False; or it could not be started (the
            message says why: port taken, initdb failed...), or the running one refuses us.
    """
    server = EmbeddedPostgres.for_settings(settings)
    with locked(settings.home) as lock:
        if server.running_pid() is None:
            if not start:
                raise not_running(server)
            _spawn_keeper(settings, adopt=False)
        elif keeper_info(settings.home) is None:
            _spawn_keeper(settings, adopt=True)
        server.port = server.running_port() or server.port
        dsn = server.dsn()
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            raise ConfigurationError(
                f"a PostgreSQL server (pid {server.running_pid()}) holds {server.data_dir} but does not accept our "
                f"connection on port {server.port}: {str(exc).strip()}"
            ) from None
        os.utime(lock)  # an attach is activity: the keeper waits a whole idle time from here
    return dsn


def _spawn_keeper(settings: Settings, *, adopt: bool) -> None:
    """Start the detached keeper and wait for its one line: `ready`, or `error: why`."""
    home = settings.home
    args = [sys.executable, "-m", "longtail_mcp.db.keeper", "--home", str(home), "--port", str(settings.pg_port),
            "--idle", str(settings.pg_idle_seconds)]
    if settings.pg_user:
        args += ["--pg-user", settings.pg_user]
    if adopt:
        args.append("--adopt")
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # importable from a source checkout too
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    log_path = home / KEEPER_LOG
    with log_path.open("ab") as log:  # handed to the child as its stderr
        # Nothing of ours is inherited (stdin/stdout may be an MCP client's pipes), and the keeper has its
        # own session, so it outlives us and no terminal signal reaches it.
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, cwd="/",
                                env=env, close_fds=True, start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    line = b""
    with proc.stdout:
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
                proc.kill()
                raise ConfigurationError(f"the embedded Postgres did not start within {START_TIMEOUT:.0f}s; "
                                         f"see {log_path}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
    text = line.decode(errors="replace").strip()
    if text != "ready":
        proc.wait(10)
        why = text.removeprefix("error: ") or f"the keeper exited with status {proc.returncode}; see {log_path}"
        raise ConfigurationError(why)


def status(settings: Settings) -> dict[str, Any]:
    """The embedded Postgres of this home: running or not, its keeper, who is connected, idle since."""
    server = EmbeddedPostgres.for_settings(settings)
    pid = server.running_pid()
    keeper = keeper_info(settings.home)
    report: dict[str, Any] = {
        "kind": "embedded", "data_dir": str(server.data_dir), "port": server.running_port() or settings.pg_port,
        "running": pid is not None, "pid": pid, "keeper": keeper["pid"] if keeper else None,
        "idle_seconds": keeper["idle_seconds"] if keeper else settings.pg_idle_seconds,
        "clients": [], "last_attach": None,
    }
    if pid is None:
        return report
    stamp = _last_attach(settings.home)
    report["last_attach"] = datetime.fromtimestamp(stamp, UTC).isoformat() if stamp else None
    server.port = report["port"]
    try:
        with psycopg.connect(server.dsn("postgres"), connect_timeout=5, autocommit=True,
                             application_name="longtail-mcp db status") as conn:
            report["clients"] = [{"application": a, "connections": n} for a, n in conn.execute(CLIENTS).fetchall()]
    except psycopg.OperationalError as exc:
        report["error"] = str(exc).strip().splitlines()[0]
    return report


def stop(settings: Settings, *, force: bool = False, timeout: float = 60.0) -> bool:
    """Stop the home's embedded Postgres now (and its keeper); False when none was running.

    Raises:
        Conflict: processes are connected and `force` is not given (the message names them).
    """
    report = status(settings)
    if not report["running"]:
        return False
    if report["clients"] and not force:
        who = ", ".join(f"{c['application']} ({c['connections']})" for c in report["clients"])
        raise Conflict(f"the database is in use by {who}; stop those first, or use --force to disconnect them")
    keeper = report["keeper"]
    pid = int(report["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(keeper if keeper else pid, signal.SIGTERM if keeper else signal.SIGINT)
    server = EmbeddedPostgres.for_settings(settings)
    if not _wait_gone(server, pid, timeout):
        raise ConfigurationError(f"PostgreSQL (pid {pid}) did not stop within {timeout:.0f}s")
    deadline = time.monotonic() + 10
    while keeper and keeper_info(settings.home) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def _wait_gone(server: EmbeddedPostgres, pid: int, timeout: float) -> bool:
    """Wait until the server has shut down: its lock file removed (a process that started it may hold its
    exited process unreaped), or its process gone."""
    deadline = time.monotonic() + timeout
    while (server.data_dir / "postmaster.pid").exists() and pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- the keeper process ------------------------------------------------------------------------------


class Keeper:
    """Watches one server's client connections and stops it after `idle` seconds without any."""

    def __init__(self, server: EmbeddedPostgres, home: Path, idle: float, pid: int) -> None:
        self.server = server
        self.home = home
        self.idle = idle
        self.pid = pid
        self.stopping = threading.Event()
        self.poll = min(2.0, max(0.2, idle / 4)) if idle else 2.0
        self._conn: psycopg.Connection[Any] | None = None

    def clients(self) -> int | None:
        """Client connections other than ours, or None when the server cannot be asked."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.server.dsn("postgres"), connect_timeout=5, autocommit=True,
                                             application_name="longtail-mcp keeper")
            return sum(int(n) for _, n in self._conn.execute(CLIENTS).fetchall())
        except psycopg.Error:
            self._conn = None
            return None

    def alive(self) -> bool:
        if self.server.process is not None:
            return self.server.process.poll() is None
        return pid_alive(self.pid)

    def run(self) -> None:
        last_busy = time.time()
        while not self.stopping.wait(self.poll):
            if not self.alive():
                logger.info("PostgreSQL (pid %s) exited by itself", self.pid)
                return
            connected = self.clients()
            if connected != 0:  # busy, or cannot tell: either way not idle
                last_busy = time.time()
                continue
            if not self.idle or time.time() - max(last_busy, _last_attach(self.home)) < self.idle:
                continue
            with locked(self.home):  # nobody attaches while we decide and stop
                if self.clients() == 0 and time.time() - max(last_busy, _last_attach(self.home)) >= self.idle:
                    logger.info("no client for %.0fs: stopping PostgreSQL (pid %s)", self.idle, self.pid)
                    self.shutdown()
                    return
        with locked(self.home):
            logger.info("asked to stop: stopping PostgreSQL (pid %s)", self.pid)
            self.shutdown()

    def shutdown(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        if self.server.process is not None:
            self.server.stop()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)  # fast shutdown
            _wait_gone(self.server, self.pid, 60)
        with contextlib.suppress(OSError):
            (self.home / KEEPER).unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m longtail_mcp.db.keeper",
                                     description="Start (or adopt) a home's embedded Postgres; stop it when idle.")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle", type=float, required=True, help="seconds without clients before stopping; 0: never")
    parser.add_argument("--pg-user")
    parser.add_argument("--adopt", action="store_true", help="watch the server already running on the home")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s keeper[%(process)d] %(levelname)s %(message)s")
    ready = os.fdopen(os.dup(1), "w")  # the one line for whoever started us; stdout goes nowhere after
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    server = EmbeddedPostgres.for_home(args.home, port=args.port, pg_user=args.pg_user)
    keeper: Keeper | None = None

    def asked_to_stop(*_: object) -> None:
        if keeper is not None:
            keeper.stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, asked_to_stop)
    with ready:
        try:
            if args.adopt:
                pid = server.running_pid()
                if pid is None:
                    raise ConfigurationError(f"no PostgreSQL is running on {server.data_dir} to adopt")
                server.port = server.running_port() or server.port
            else:
                server.start()  # from our main thread: Postgres gets SIGINT if we die
                assert server.process is not None
                pid = server.process.pid
        except ConfigurationError as exc:
            ready.write(f"error: {exc}\n")
            return 1
        keeper = Keeper(server, args.home, args.idle, pid)
        (args.home / KEEPER).write_text(json.dumps({
            "pid": os.getpid(), "postgres_pid": pid, "port": server.port, "data_dir": str(server.data_dir),
            "idle_seconds": args.idle, "adopted": args.adopt, "started_at": datetime.now(UTC).isoformat()}))
        logger.info("%s PostgreSQL pid %s on port %s; stopping after %ss without clients",
                    "adopted" if args.adopt else "started", pid, server.port, args.idle or "never")
        ready.write("ready\n")
    keeper.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

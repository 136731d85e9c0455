"""The embedded Postgres launcher: each test runs its own throwaway cluster (fsync off)."""

import os
import shutil
import socket
import stat
from pathlib import Path

import psycopg
import pytest

from longtail_mcp.db.embedded import SYSTEM_DIR, EmbeddedPostgres, RunAs, can_traverse, cluster_dir, postgres_user
from longtail_mcp.errors import ConfigurationError
from tests.conftest import free_port

NOBODY = RunAs("nobody", 65534, 65534)


@pytest.fixture
def root(traversable_dir: Path) -> Path:
    return traversable_dir


def server_in(root: Path, port: int | None = None) -> EmbeddedPostgres:
    return EmbeddedPostgres(root / "pgdata", port=port or free_port(), password_file=root / "pw",
                            run_as=postgres_user(), fsync=False)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_server_starts_with_a_generated_password_and_stops_cleanly(root: Path) -> None:
    server = server_in(root)
    try:
        dsn = server.start()
        pid = server.running_pid()
        assert pid is not None
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("longtail",)
            # The generated password is stored as a SCRAM verifier, never in clear or md5.
            verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").fetchone()
            assert verifier is not None and verifier[0].startswith("SCRAM-SHA-256$")
        assert stat.S_IMODE((root / "pw").stat().st_mode) == 0o600
        assert len((root / "pw").read_text().strip()) >= 24
        wrong = psycopg.conninfo.make_conninfo(dsn, password="not-the-password")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong, connect_timeout=5)
    finally:
        server.stop()
    assert not (root / "pgdata" / "postmaster.pid").exists()
    assert not pid_alive(pid)
    assert server.running_pid() is None


def test_restarting_the_same_data_directory_keeps_its_data(root: Path) -> None:
    first = server_in(root)
    try:
        with psycopg.connect(first.start()) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
    finally:
        first.stop()
    again = server_in(root)
    try:
        with psycopg.connect(again.start()) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("still here",)]
    finally:
        again.stop()


def test_a_second_server_on_a_data_directory_in_use_is_refused(root: Path) -> None:
    first = server_in(root)
    try:
        dsn = first.start()
        pid = first.running_pid()
        second = server_in(root)
        with pytest.raises(ConfigurationError, match="is in use") as caught:
            second.start()
        assert str(root / "pgdata") in caught.value.message
        assert f"pid {pid}" in caught.value.message
        with psycopg.connect(dsn) as conn:  # the first server is untouched
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        first.stop()


def test_a_taken_port_is_refused_with_a_message_naming_it(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = server_in(root, port=port)
        try:
            with pytest.raises(ConfigurationError, match=f"port {port} ") as caught:
                server.start()
            assert "LONGTAIL_PG_PORT" in caught.value.message
        finally:
            server.stop()
    assert server.running_pid() is None


def test_attaching_to_a_running_server_shares_it_and_leaves_it_running(root: Path) -> None:
    first = server_in(root)
    try:
        first.start()
        pid = first.running_pid()
        attached = server_in(root, port=first.port)
        dsn = attached.start(attach=True)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT pg_backend_pid() > 0, current_database()").fetchone() == (True, "longtail")
        attached.stop()
        assert first.running_pid() == pid
        with psycopg.connect(first.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        first.stop()
    assert first.running_pid() is None


def test_can_traverse_requires_search_permission_on_every_ancestor(root: Path) -> None:
    private = root / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    inside = private / "home" / "pgdata"
    assert not can_traverse(private, NOBODY)
    assert not can_traverse(inside, NOBODY)
    private.chmod(0o755)
    assert can_traverse(private, NOBODY)
    assert can_traverse(inside, NOBODY)


@pytest.mark.skipif(os.geteuid() != 0, reason="the system cluster directory is only used when running as root")
def test_as_root_a_home_the_service_user_cannot_reach_gets_a_linked_system_cluster(root: Path) -> None:
    private = root / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    home = private / "home"
    who = postgres_user()
    link = home / "pgdata"
    real: Path | None = None
    server: EmbeddedPostgres | None = None
    try:
        real = cluster_dir(home, who)
        assert real.parent.parent == SYSTEM_DIR / "clusters"
        assert link.is_symlink() and link.resolve() == real
        assert stat.S_IMODE(private.stat().st_mode) == 0o700  # nobody's home permissions are loosened
        assert cluster_dir(home, who) == real  # found again through the link
        # And the service user can really run the cluster there.
        server = EmbeddedPostgres(real, port=free_port(), password_file=home / "pg-password", run_as=who, fsync=False)
        with psycopg.connect(server.start()) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        assert real.stat().st_uid == who.uid
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
    finally:
        if server is not None:
            server.stop()
        if real is None and link.is_symlink():
            real = link.resolve()
        if real is not None and real.parent.parent == SYSTEM_DIR / "clusters":
            shutil.rmtree(real.parent, ignore_errors=True)


def test_a_cluster_whose_password_file_is_gone_fails_at_once_with_a_hint(root: Path) -> None:
    server = server_in(root)
    server.start()
    server.stop()
    (root / "pw").unlink()
    again = server_in(root)
    with pytest.raises(ConfigurationError, match=r"password file .* is gone"):
        again.start()
    assert again.process is None, "nothing was started"

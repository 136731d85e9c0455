"""Shared fixtures: a real Postgres (embedded, fsync off, or DATABASE_URL), one fresh database per test."""

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from psycopg import sql

from longtail_mcp import LongTail
from longtail_mcp.db.embedded import EmbeddedPostgres, postgres_user
from longtail_mcp.db.migrate import migrate
from longtail_mcp.db.pool import Database

TEMPLATE = "lt_template"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def traversable_tmpdir(prefix: str) -> Path:
    """A temp dir the unprivileged Postgres user can reach when the tests run as root."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture
def traversable_dir() -> Iterator[Path]:
    """A temp dir the unprivileged Postgres user can reach, removed after the test."""
    path = traversable_tmpdir("lt-test-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def home(traversable_dir: Path) -> Path:
    """A fresh LONGTAIL_HOME the unprivileged Postgres user can reach (so the cluster stays inside it)."""
    return traversable_dir


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """DSN of a maintenance database on the test server (the `postgres` db)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    root = traversable_tmpdir("lt-test-pg-")
    who = postgres_user()
    server = EmbeddedPostgres(root / "pgdata", port=free_port(), password_file=root / "pw", run_as=who,
                              fsync=False, database="postgres")
    server.start()
    try:
        yield server.dsn("postgres")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _with_db(dsn: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_template(pg_admin_dsn: str) -> str:
    """A database with every migration applied, cloned for each test."""
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))

    async def apply() -> None:
        db = Database(_with_db(pg_admin_dsn, TEMPLATE), min_size=1, max_size=2)
        await db.open()
        try:
            await migrate(db)
        finally:
            await db.close()

    anyio.run(apply)
    return TEMPLATE


@contextmanager
def scratch_database(admin_dsn: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database (a copy of `template`, if given), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield _with_db(admin_dsn, name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def dsn(pg_admin_dsn: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    with scratch_database(pg_admin_dsn, "t", pg_template) as url:
        yield url


@pytest.fixture
def empty_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh database with no migrations applied."""
    with scratch_database(pg_admin_dsn, "e") as url:
        yield url


@pytest.fixture
def app(dsn: str) -> LongTail:
    """An unopened app on the test database; tests register workflows on it, then open it."""
    return LongTail(dsn, poll_seconds=0.2, lease_seconds=5)


@asynccontextmanager
async def running(app: LongTail, **worker_options: Any) -> AsyncIterator[Any]:
    """Open the app and run one worker in this process for the duration of the block."""
    async with app, anyio.create_task_group() as tg:
        worker = await tg.start(app.worker(**worker_options).run)
        try:
            yield worker
        finally:
            tg.cancel_scope.cancel()

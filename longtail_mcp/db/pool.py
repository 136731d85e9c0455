"""One async connection pool per process, with explicit short transactions."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from longtail_mcp.db.errors import translate
from longtail_mcp.db.queries import load
from longtail_mcp.errors import ConfigurationError, LongtailError

Conn = psycopg.AsyncConnection[DictRow]  # every connection here is made with row_factory=dict_row
Pool = AsyncConnectionPool[Conn]
N = load("notify")


def expect_row(row: DictRow | None, query: str) -> DictRow:
    """The row of a query that always returns one (an aggregate, or a row this transaction holds).

    Raises:
        LongtailError: it returned none after all, which is a bug rather than the caller's mistake.
    """
    if row is None:
        raise LongtailError(f"query {query} returned no row")
    return row


class Database:
    """A pool bound to one schema (via search_path). Build one per process, in a lifespan."""

    def __init__(self, dsn: str, *, schema: str = "longtail", min_size: int = 2, max_size: int = 16) -> None:
        self.dsn = dsn
        self.schema = schema
        self.pool: Pool = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=self._configure,
            name=f"longtail-{schema}",
        )
        self._logins: dict[str, Pool] = {}  # run_sql's reader and writer pools, opened on first use
        self.wake_channel = f"{schema}_wake"
        self.events_channel = f"{schema}_events"

    async def _configure(self, conn: Conn) -> None:
        await conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema)))
        if not conn.autocommit:
            await conn.commit()  # leave the pool's connection idle, not in a transaction

    async def open(self) -> None:
        try:
            await self.pool.open(wait=True, timeout=30)
        except Exception as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        for pool in self._logins.values():
            await pool.close()
        self._logins.clear()
        await self.pool.close()

    async def _reset_login(self, conn: Conn) -> None:
        # Whatever a statement left on the session (advisory locks, LISTEN, prepared statements, temp
        # tables, settings) goes before the next caller gets the connection.
        await conn.set_autocommit(True)
        await conn.execute("DISCARD ALL")
        await conn.set_autocommit(False)
        await self._configure(conn)

    async def _login_pool(self, kind: str) -> Pool:
        """The small pool of connections logged in as the `reader` or `writer` role (migrations 0005, 0006)."""
        pool = self._logins.get(kind)
        if pool is not None:
            return pool
        table = sql.Identifier(f"sql_{kind}")
        async with self.connection() as conn:
            row = await (await conn.execute(sql.SQL("SELECT role_name, password FROM {}").format(table))).fetchone()
        if row is None:
            raise ConfigurationError(f"run_sql needs the database {kind} role, which the migrations could not "
                                     "create (the database user lacks CREATEROLE); see docs/security.md")
        dsn = psycopg.conninfo.make_conninfo(self.dsn, user=row["role_name"], password=row["password"])
        pool = AsyncConnectionPool(
            dsn, min_size=0, max_size=4, open=False, configure=self._configure, reset=self._reset_login,
            kwargs={"autocommit": False, "row_factory": dict_row}, name=f"longtail-{self.schema}-{kind}",
        )
        await pool.open(wait=False)
        if kind in self._logins:  # another task opened one meanwhile
            await pool.close()
        else:
            self._logins[kind] = pool
        return self._logins[kind]

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Conn]:
        """A connection logged in as the reader role (no write grants; migration 0005), read-only,
        outside any transaction. For untrusted SQL: see longtail_mcp/sql.

        Raises:
            ConfigurationError: the migrations could not create the reader role (no CREATEROLE).
        """
        pool = await self._login_pool("reader")
        try:
            async with pool.connection() as conn:
                await conn.set_read_only(True)
                yield conn
        except psycopg.OperationalError as exc:
            raise translate(exc) from exc

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[Conn]:
        """A connection logged in as the writer role (migration 0006: reads and writes the schema's rows,
        no superuser, no role or database creation, no DDL, no secrets), outside any transaction. For a
        statement an approver allowed once.

        Raises:
            ConfigurationError: the migrations could not create the writer role (no CREATEROLE).
        """
        pool = await self._login_pool("writer")
        try:
            async with pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise translate(exc) from exc

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled connection in autocommit mode."""
        try:
            async with self.pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise translate(exc) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A pooled connection inside one transaction: committed on exit, rolled back on error."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def wake(self, conn: Conn) -> None:
        """Notify the workers (on `conn`'s transaction, delivered at commit) that a run may be due now."""
        await conn.execute(N["notify_wake"], {"channel": self.wake_channel})

    async def connect(self) -> Conn:
        """A dedicated connection outside the pool (for LISTEN); the caller closes it."""
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, row_factory=dict_row)
        await self._configure(conn)
        return conn

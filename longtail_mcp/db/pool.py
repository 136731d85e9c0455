"""One async connection pool per process, with explicit short transactions."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from longtail_mcp.db.errors import translate
from longtail_mcp.errors import ConfigurationError

Conn = psycopg.AsyncConnection[dict]  # type: ignore[type-arg]


class Database:
    """A pool bound to one schema (via search_path). Build one per process, in a lifespan."""

    def __init__(self, dsn: str, *, schema: str = "longtail", min_size: int = 2, max_size: int = 16) -> None:
        self.dsn = dsn
        self.schema = schema
        self.pool = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=self._configure,
            name=f"longtail-{schema}",
        )
        self._reader: AsyncConnectionPool | None = None  # db-query's run_sql, opened on first use
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
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        await self.pool.close()

    async def _reset_reader(self, conn: Conn) -> None:
        # Whatever a statement left on the session (advisory locks, LISTEN, prepared statements, temp
        # tables, settings) goes before the next caller gets the connection.
        await conn.set_autocommit(True)
        await conn.execute("DISCARD ALL")
        await conn.set_autocommit(False)
        await self._configure(conn)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Conn]:
        """A connection logged in as the reader role (no write grants; migration 0005), read-only,
        outside any transaction. For untrusted SQL: see longtail_mcp/sql.

        Raises:
            ConfigurationError: the migrations could not create the reader role (no CREATEROLE).
        """
        if self._reader is None:
            async with self.connection() as conn:
                row = await (await conn.execute("SELECT role_name, password FROM sql_reader")).fetchone()
            if row is None:
                raise ConfigurationError("run_sql needs the database reader role, which the migrations could not "
                                         "create (the database user lacks CREATEROLE); see docs/security.md")
            dsn = psycopg.conninfo.make_conninfo(self.dsn, user=row["role_name"], password=row["password"])
            pool: AsyncConnectionPool = AsyncConnectionPool(
                dsn, min_size=0, max_size=4, open=False, configure=self._configure, reset=self._reset_reader,
                kwargs={"autocommit": False, "row_factory": dict_row}, name=f"longtail-{self.schema}-reader",
            )
            await pool.open(wait=False)
            if self._reader is None:
                self._reader = pool
            else:  # another task opened one meanwhile
                await pool.close()
        try:
            async with self._reader.connection() as conn:
                await conn.set_read_only(True)
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

    async def connect(self) -> Conn:
        """A dedicated connection outside the pool (for LISTEN); the caller closes it."""
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, row_factory=dict_row)
        await self._configure(conn)
        return conn

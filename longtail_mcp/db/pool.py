"""One async connection pool per process, with explicit short transactions."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from longtail_mcp.db.errors import translate

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
        self.wake_channel = f"{schema}_wake"
        self.events_channel = f"{schema}_events"

    async def _configure(self, conn: Conn) -> None:
        await conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema)))

    async def open(self) -> None:
        try:
            await self.pool.open(wait=True, timeout=30)
        except Exception as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        await self.pool.close()

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

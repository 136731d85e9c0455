"""Migrations: applied once each, to an empty database, under concurrency, per schema."""

import anyio
import psycopg
import pytest
from psycopg import sql

from longtail_mcp.db.migrate import available, current_version, latest_version, migrate
from longtail_mcp.db.pool import Database

pytestmark = pytest.mark.anyio

RUNTIME_TABLES = {"workflow", "step", "message", "worker", "migration"}


def tables_in(dsn: str, schema: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]).fetchall()
    return {r[0] for r in rows}


def recorded_versions(dsn: str, schema: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        query = sql.SQL("SELECT version FROM {}.migration ORDER BY version").format(sql.Identifier(schema))
        return [r[0] for r in conn.execute(query).fetchall()]


async def test_migrations_create_the_runtime_tables_in_an_empty_database(empty_dsn: str) -> None:
    db = Database(empty_dsn, min_size=1, max_size=2)
    await db.open()
    try:
        assert await current_version(db) == 0
        applied = await migrate(db)
        assert applied == [version for version, _, _ in available()]
        assert await current_version(db) == latest_version()
    finally:
        await db.close()
    assert tables_in(empty_dsn, "longtail") >= RUNTIME_TABLES
    assert recorded_versions(empty_dsn, "longtail") == applied


async def test_running_migrations_again_applies_nothing(empty_dsn: str) -> None:
    db = Database(empty_dsn, min_size=1, max_size=2)
    await db.open()
    try:
        first = await migrate(db)
        assert first
        assert await migrate(db) == []
        assert await current_version(db) == latest_version()
    finally:
        await db.close()
    assert recorded_versions(empty_dsn, "longtail") == first


async def test_two_concurrent_migrations_both_succeed_and_apply_each_version_once(empty_dsn: str) -> None:
    dbs = [Database(empty_dsn, min_size=1, max_size=2) for _ in range(2)]
    results: list[list[int]] = []
    for db in dbs:
        await db.open()
    try:

        async def run(db: Database) -> None:
            results.append(await migrate(db))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for db in dbs:
                    tg.start_soon(run, db)
    finally:
        for db in dbs:
            await db.close()
    everything = [version for version, _, _ in available()]
    assert len(results) == 2
    # The advisory lock serialises the two: one applies everything, the other finds nothing to do.
    assert sorted(results, key=len) == [[], everything]
    assert recorded_versions(empty_dsn, "longtail") == everything


async def test_a_non_default_schema_gets_its_own_tables(dsn: str) -> None:
    # `dsn` is already migrated in schema longtail: "other" must not be fooled by that.
    before = recorded_versions(dsn, "longtail")
    db = Database(dsn, schema="other", min_size=1, max_size=2)
    await db.open()
    try:
        assert await current_version(db) == 0
        assert await migrate(db) == [version for version, _, _ in available()]
        assert await current_version(db) == latest_version()
        async with db.connection() as conn:
            await conn.execute("INSERT INTO workflow (id, name) VALUES ('only-in-other', 'x')")
    finally:
        await db.close()
    assert tables_in(dsn, "other") >= RUNTIME_TABLES
    assert recorded_versions(dsn, "longtail") == before
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM longtail.workflow WHERE id = 'only-in-other'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM other.workflow WHERE id = 'only-in-other'").fetchone() == (1,)

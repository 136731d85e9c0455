"""Numbered .sql migrations, applied once each, under an advisory lock."""

import re
from pathlib import Path

from psycopg import sql

from longtail_mcp.db.pool import Database

MIGRATIONS = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def available() -> list[tuple[int, str, Path]]:
    """(version, name, path) of every shipped migration, in order."""
    found = []
    for path in MIGRATIONS.iterdir():
        m = _NAME.match(path.name)
        if m:
            found.append((int(m.group(1)), m.group(2), path))
    return sorted(found)


def latest_version() -> int:
    return available()[-1][0]


async def current_version(db: Database) -> int:
    """The highest applied migration (0 when none)."""
    async with db.connection() as conn:
        exists = await (await conn.execute(
            "SELECT to_regclass(format('%%I.migration', %s::text)) AS t", [db.schema]
        )).fetchone()
        if not exists or exists["t"] is None:
            return 0
        row = await (await conn.execute("SELECT coalesce(max(version), 0) AS v FROM migration")).fetchone()
        return int(row["v"]) if row else 0


async def migrate(db: Database) -> list[int]:
    """Apply every pending migration; returns the versions applied by this call.

    Two processes may call this at once: a session advisory lock serialises them and the
    second finds nothing left to do.
    """
    applied: list[int] = []
    async with db.connection() as conn:
        key = f"longtail:migrate:{db.schema}"
        await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
        try:
            found = await (await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [db.schema])).fetchone()
            if found is None:  # CREATE SCHEMA needs CREATE on the database; a pre-made schema does not
                await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(db.schema)))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS migration ("
                " version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = await (await conn.execute("SELECT version FROM migration")).fetchall()
            done = {r["version"] for r in rows}
            for version, name, path in available():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())  # shipped file, no parameters
                    await conn.execute("INSERT INTO migration (version, name) VALUES (%s, %s)", [version, name])
                applied.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])
    return applied

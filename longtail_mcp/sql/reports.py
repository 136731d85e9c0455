"""Reports for db-query: runs, escalations, process summaries, system health, the schema.

Each report applies the caller's RBAC: a superadmin sees everything; anyone else sees the runs they
started or that asked one of their roles, and the escalations of their roles (or claimed by them).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from longtail_mcp.db.pool import Database, expect_row
from longtail_mcp.db.queries import load
from longtail_mcp.errors import InvalidInput
from longtail_mcp.humans.identity import Principal
from longtail_mcp.humans.runs import visibility
from longtail_mcp.records import iso
from longtail_mcp.runtime import service
from longtail_mcp.runtime.models import FoundRun
from longtail_mcp.tools import registry

Q = load("reports")


def _rbac_params(actor: Principal) -> dict[str, Any]:
    who, roles = visibility(actor) or (None, [])
    return {"who": who, "roles": roles}


async def find_runs(db: Database, actor: Principal, **filters: Any) -> list[FoundRun]:
    """service.find_runs (state containment, jsonpath, status, name) limited to the runs `actor` may see."""
    return await service.find_runs(db, visible_to=visibility(actor), **filters)


async def process_summary(db: Database, actor: Principal, *, name: str | None = None,
                          since_hours: float = 24 * 7) -> list[dict[str, Any]]:
    """Per workflow type: runs, runs by status, and average/p50/p95 seconds of the completed ones."""
    if since_hours <= 0:
        raise InvalidInput("since_hours must be positive")
    since = datetime.now(UTC) - timedelta(hours=since_hours)
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["process_summary"], {"since": since, "name": name,
                                                                  **_rbac_params(actor)})).fetchall()
    return [iso({**r, "by_status": r["by_status"] or {}}) for r in rows]


async def system_health(db: Database, actor: Principal, *, stale_seconds: float = 60.0) -> dict[str, Any]:
    """Runs, tasks and escalations by status (as `actor` may see them), live workers, MCP servers with
    their tool counts, pipelines by status."""
    async with db.connection() as conn:
        counts = await (await conn.execute(Q["health_counts"], {"stale": stale_seconds,
                                                                **_rbac_params(actor)})).fetchone()
        pipelines: dict[str, int] = {}
        if expect_row(await (await conn.execute(Q["pipeline_table"])).fetchone(), "pipeline_table")["present"]:
            counted = await (await conn.execute(Q["pipeline_counts"])).fetchone()
            pipelines = expect_row(counted, "pipeline_counts")["pipelines"]
    servers = [{"name": s["name"], "transport": s["transport"], "tools": s["tools"], "last_error": s["last_error"]}
               for s in await registry.list_servers(db, actor)]
    return {**dict(counts or {}), "servers": servers, "pipelines": pipelines}


async def describe_schema(db: Database, *, table: str | None = None) -> list[dict[str, Any]]:
    """Tables and views of the runtime's schema: columns (name, type, nullable, default), estimated rows,
    and whether run_sql can read them.

    Raises:
        InvalidInput: `table` names no table of the schema.
    """
    async with db.connection() as conn:
        reader = expect_row(await (await conn.execute(Q["reader_role"])).fetchone(), "reader_role")["role_name"]
        rows = await (await conn.execute(Q["describe_tables"], {"reader": reader, "table": table})).fetchall()
    if table is not None and not rows:
        raise InvalidInput(f"no table {table!r} in schema {db.schema!r}; "
                           "call describe_schema without a table to list them")
    return list(rows)

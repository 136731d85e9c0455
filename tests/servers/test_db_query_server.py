"""The db-query server as people and agents use it: reports that respect RBAC, and read-only SQL."""

from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import anyio
import pytest
from mcp import Client as McpClient

from longtail_mcp import LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans.identity import SYSTEM
from system_servers import publish_manifests
from tests.humans.helpers import make_roles, person, sql_exec
from tests.runtime.helpers import until
from tests.servers.sessions import (
    call_with_progress,
    cancel_after_progress,
    fast_progress,
    growing,
    http_server,
    loud,
    session,
)

pytestmark = pytest.mark.anyio


async def call(c: McpClient, tool: str, args: dict[str, Any] | None = None) -> Any:
    result = await c.call_tool(tool, args or {})
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def world(app: LongTail) -> None:
    """rita (reviewer) started r1; r2 asked the reviewers; r3 (sam's) asked finance; r4 is the system's."""
    await make_roles(app.db, "reviewer", "finance")
    await person(app.db, "rita", {"reviewer": "member"})
    await person(app.db, "sam", {"finance": "member"})
    await sql_exec(app.db, """
        INSERT INTO workflow (id, name, status, state, principal, created_at, completed_at) VALUES
          ('r1', 'order', 'completed', '{"total": 120}', '{"id": "rita"}', now() - interval '10 s', now()),
          ('r2', 'order', 'waiting', '{"total": 80}', NULL, now(), NULL),
          ('r3', 'refund', 'waiting', '{"total": 500}', '{"id": "sam"}', now(), NULL),
          ('r4', 'refund', 'failed', '{"total": 9}', NULL, now(), now())""")
    await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="check r2", escalation_id="e2",
                                workflow_id="r2")
    await esc.create_escalation(app.db, SYSTEM, role="finance", message="check r3", escalation_id="e3",
                                workflow_id="r3")


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_find_runs_shows_a_person_only_their_runs_and_their_roles_runs(app: LongTail, transport: str) -> None:
    async with app:
        await world(app)
        async with session(transport, app, "db-query", "rita") as c:
            mine = await call(c, "find_runs")
            big = await call(c, "find_runs", {"path": "$.total ? (@ > 100)"})
        async with session(transport, app, "db-query") as c:
            everything = await call(c, "find_runs", {"state": {"total": 9}})
        assert sorted(r["id"] for r in mine["runs"]) == ["r1", "r2"]
        assert [r["id"] for r in big["runs"]] == ["r1"]  # r3 matches too, but is not hers to see
        assert [r["id"] for r in everything["runs"]] == ["r4"]


async def test_escalation_queries_and_stats_keep_other_roles_hidden(app: LongTail) -> None:
    async with app:
        await world(app)
        async with session("memory", app, "db-query", "rita") as c:
            found = await call(c, "find_escalations", {"status": "pending"})
            stats = await call(c, "get_escalation_stats")
            other = await c.call_tool("find_escalations", {"role": "finance"})
        assert [e["id"] for e in found["escalations"]] == ["e2"]
        assert stats["by_status"] == {"pending": 1} and set(stats["by_role"]) == {"reviewer"}
        assert other.is_error and "[forbidden]" in other.content[0].text


async def test_process_summary_counts_runs_by_type_and_times_the_completed_ones(app: LongTail) -> None:
    async with app:
        await world(app)
        async with session("memory", app, "db-query") as c:
            summary = {s["name"]: s for s in (await call(c, "get_process_summary"))["workflow_types"]}
        async with session("memory", app, "db-query", "sam") as c:
            sams = await call(c, "get_process_summary", {"name": "order"})
        assert summary["order"]["runs"] == 2 and summary["order"]["by_status"] == {"completed": 1, "waiting": 1}
        assert summary["order"]["p50_seconds"] == pytest.approx(10, abs=1)
        assert summary["refund"]["by_status"] == {"waiting": 1, "failed": 1}
        assert summary["refund"]["avg_seconds"] is None  # nothing completed
        assert sams["workflow_types"] == []  # no order run is his to see


async def test_system_health_reports_runs_escalations_workers_and_servers(app: LongTail) -> None:
    async with app:
        await world(app)
        await publish_manifests(app, refresh_registered=False)
        async with session("memory", app, "db-query") as c:
            health = await call(c, "get_system_health")
        async with session("memory", app, "db-query", "rita") as c:
            hers = await call(c, "get_system_health")
        assert health["runs"] == {"completed": 1, "waiting": 2, "failed": 1}
        assert health["escalations"] == {"pending": 2}
        servers = {s["name"]: s["tools"] for s in health["servers"]}
        assert servers["db-query"] == 7 and servers["workflows"] > 0 and servers["files"] > 0
        assert health["pipelines"] == {} and health["workers_alive"] == 0
        assert hers["runs"] == {"completed": 1, "waiting": 1} and hers["escalations"] == {"pending": 1}


async def test_describe_schema_lists_tables_columns_and_what_run_sql_may_read(app: LongTail) -> None:
    async with app:
        async with session("memory", app, "db-query") as c:
            tables = {t["table"]: t for t in (await call(c, "describe_schema"))["tables"]}
            one = await call(c, "describe_schema", {"table": "escalation"})
            missing = await c.call_tool("describe_schema", {"table": "nope"})
        columns = {col["name"]: col for col in tables["workflow"]["columns"]}
        assert columns["state"]["type"] == "jsonb" and columns["id"]["nullable"] is False
        assert tables["workflow"]["readable_by_run_sql"] is True
        assert tables["api_key"]["readable_by_run_sql"] is False
        assert [t["table"] for t in one["tables"]] == ["escalation"]
        assert missing.is_error and "describe_schema without a table" in missing.content[0].text


async def test_run_sql_returns_typed_columns_and_json_rows(app: LongTail) -> None:
    async with app:
        await world(app)
        async with session("memory", app, "db-query") as c:
            out = await call(c, "run_sql", {"sql": "SELECT id, state, created_at, 1.50::numeric AS price, "
                                                   "'\\x00ff'::bytea AS raw FROM workflow WHERE id = 'r1'"})
            capped = await call(c, "run_sql", {"sql": "SELECT id FROM workflow ORDER BY id", "max_rows": 2})
            bad = await c.call_tool("run_sql", {"sql": "SELEC 1"})
            extra = await c.call_tool("run_sql", {"sql": "SELECT 1", "rows": 3})
        assert [col["type"] for col in out["columns"]] == ["text", "jsonb", "timestamptz", "numeric", "bytea"]
        row = out["rows"][0]
        assert row[0] == "r1" and row[1] == {"total": 120} and row[3] == "1.50" and row[4] == "AP8="
        assert row[2].startswith("20")  # ISO 8601
        assert capped["rows"] == [["r1"], ["r2"]] and capped["truncated"] is True
        assert bad.is_error and bad.content[0].text.startswith("[invalid_input] the database rejected the statement")
        assert extra.is_error and "[invalid_input]" in extra.content[0].text  # schema checked: nothing ran


async def test_the_server_s_limits_cap_what_a_caller_asks(dsn: str) -> None:
    app = LongTail(dsn, sql_max_rows=3)
    async with app:
        async with session("memory", app, "db-query") as c:
            out = await call(c, "run_sql", {"sql": "SELECT generate_series(1, 10)", "max_rows": 100})
        assert len(out["rows"]) == 3 and out["truncated"] is True


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_a_long_statement_reports_its_progress_then_its_rows(app: LongTail, transport: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fast_progress(monkeypatch)
    async with app, session(transport, app, "db-query") as c:
        result, reports = await call_with_progress(c, "run_sql", {"sql": "SELECT pg_sleep(1.2), 7 AS n"})
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["rows"] == [["", 7]]
    assert len(reports) >= 3 and growing(reports), reports
    assert all(total == 5 and message == "the statement is running (statement timeout 5 s)"
               for _, total, message in reports), reports


async def _backends(app: LongTail, where: str, value: Any) -> list[Any]:
    async with app.db.connection() as conn:
        query = {"sleeping": "SELECT pid, state FROM pg_stat_activity WHERE query = %(v)s AND state = 'active'",
                 "pid": "SELECT pid, state FROM pg_stat_activity WHERE pid = %(v)s"}[where]
        return await (await conn.execute(query, {"v": value})).fetchall()


@pytest.mark.parametrize("transport", ["memory", "jsonrpc", "http"])
async def test_a_cancelled_run_sql_stops_the_statement_in_the_server_and_keeps_the_connection(
        dsn: str, transport: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    fast_progress(monkeypatch)
    app = LongTail(dsn, sql_timeout_ms=60_000)  # only the cancellation can end it within the test
    sleeper: list[int] = []
    async with app, AsyncExitStack() as stack:
        base = await stack.enter_async_context(http_server(app)) if transport == "http" else None
        c = await stack.enter_async_context(session(transport, app, "db-query", base=base))

        async def running() -> None:  # the first report comes on a timer: the statement may still be starting
            (row,) = await until(partial(_backends, app, "sleeping", "SELECT pg_sleep(30)"))
            sleeper.append(row["pid"])

        with anyio.fail_after(10):
            await cancel_after_progress(c, "run_sql", {"sql": "SELECT pg_sleep(30)", "timeout_ms": 60_000},
                                        before=running)

            async def stopped() -> bool:
                return await _backends(app, "sleeping", "SELECT pg_sleep(30)") == []

            await until(stopped, within=3)

            # The same backend is still connected, idle outside any transaction: back in its pool, clean
            # (over JSON-RPC the client stops waiting before the server has rolled back: wait for that).
            async def clean() -> bool:
                return [r["state"] for r in await _backends(app, "pid", sleeper[0])] == ["idle"]

            await until(clean, within=3)
        again = await call(c, "run_sql", {"sql": "SELECT 1 AS one"})
    assert again["rows"] == [[1]]
    assert loud(caplog.records) == []

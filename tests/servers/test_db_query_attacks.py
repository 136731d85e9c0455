"""db-query run_sql under attack: every statement below is refused by the database itself (or is harmless),
comes back as a tool error a person can act on, and leaves the database exactly as it was."""

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from longtail_mcp import LongTail
from tests.humans.helpers import sql_exec, sql_one
from tests.servers.sessions import session

pytestmark = pytest.mark.anyio
MARKER = Path(tempfile.gettempdir()) / f"longtail-pwned-{os.getpid()}"


async def fingerprint(app: LongTail) -> dict[str, Any]:
    """Every table's contents (hashed), the cluster's roles and databases, and the marker file."""
    async with app.db.connection() as conn:
        tables = [r["relname"] for r in await (await conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'"
        )).fetchall()]
        out: dict[str, Any] = {}
        for table in tables:
            row = await (await conn.execute(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) AS h "  # noqa: S608  # catalogue names
                f'FROM "{table}" t'
            )).fetchone()
            out[table] = (row["n"], row["h"])
        out["roles"] = [r["rolname"] for r in await (await conn.execute(
            "SELECT rolname FROM pg_roles ORDER BY 1")).fetchall()]
        out["relations"] = [r["relname"] for r in await (await conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace ORDER BY 1")).fetchall()]
    out["marker"] = MARKER.exists()
    return out


async def seeded(app: LongTail) -> None:
    await sql_exec(app.db, "INSERT INTO workflow (id, name, status) VALUES ('w1', 'order', 'completed'), "
                           "('w2', 'order', 'waiting')")
    await sql_exec(app.db, "CREATE PROCEDURE wipe() LANGUAGE sql AS $$ DELETE FROM workflow $$")


ATTACKS = {
    "commit_then_delete": "COMMIT; DELETE FROM workflow",
    "rollback_then_delete": "ROLLBACK; DELETE FROM workflow",
    "two_selects": "SELECT 1; SELECT 2",
    "trailing_statement_after_comment": "SELECT 1 /* ; */ ; DELETE FROM workflow",
    "set_transaction_read_write": "SET TRANSACTION READ WRITE",
    "do_block_delete": "DO $$ BEGIN DELETE FROM workflow; END $$",
    "copy_to_program": f"COPY workflow TO PROGRAM 'touch {MARKER}'",
    "copy_from_file": "COPY workflow FROM '/etc/passwd'",
    "create_temp_table": "CREATE TEMP TABLE t AS SELECT * FROM workflow",
    "create_table": "CREATE TABLE evil (x int)",
    "lo_import": "SELECT lo_import('/etc/passwd')",
    "pg_read_file": "SELECT pg_read_file('/etc/passwd')",
    "set_config_role": "SELECT set_config('role', (SELECT rolname FROM pg_roles WHERE rolsuper LIMIT 1), false)",
    "set_config_read_write": "SELECT set_config('transaction_read_only', 'off', true), (SELECT count(*) FROM workflow)",
    "set_role": "SET ROLE postgres",
    "set_session_authorization": "SET SESSION AUTHORIZATION postgres",
    "select_for_update": "SELECT * FROM workflow FOR UPDATE",
    "writable_cte": "WITH gone AS (DELETE FROM workflow RETURNING id) SELECT * FROM gone",
    "explain_analyze_delete": "EXPLAIN ANALYZE DELETE FROM workflow",
    "insert": "INSERT INTO workflow (id, name) VALUES ('evil', 'x')",
    "update": "UPDATE workflow SET status = 'failed'",
    "delete": "DELETE FROM workflow",
    "truncate": "TRUNCATE workflow CASCADE",
    "drop_table": "DROP TABLE workflow CASCADE",
    "call_procedure": "CALL wipe()",
    "prepare_delete": "PREPARE p AS DELETE FROM workflow",
    "execute_prepared": "EXECUTE p",
    "listen": "LISTEN longtail_wake",
    "create_role": "CREATE ROLE evil SUPERUSER LOGIN",
    "alter_own_role": "ALTER ROLE CURRENT_USER SUPERUSER",
    "grant": "GRANT ALL ON workflow TO PUBLIC",
    "vacuum": "VACUUM workflow",
    "lock_table": "LOCK TABLE workflow IN ACCESS EXCLUSIVE MODE",
    "alter_system": "ALTER SYSTEM SET fsync = off",
    "create_extension": "CREATE EXTENSION IF NOT EXISTS dblink",
    "read_api_key_hashes": "SELECT * FROM api_key",
    "read_reader_password": "SELECT * FROM sql_reader",
    "sequence_nextval": "SELECT nextval('audit_id_seq')",
}


@pytest.mark.parametrize("statement", list(ATTACKS.values()), ids=list(ATTACKS))
async def test_attack_is_refused_and_changes_nothing(app: LongTail, statement: str) -> None:
    async with app:
        await seeded(app)
        before = await fingerprint(app)
        async with session("memory", app, "db-query") as c:
            result = await c.call_tool("run_sql", {"sql": statement})
        assert result.is_error, f"{statement!r} was allowed: {result.structured_content}"
        text = result.content[0].text
        assert text.startswith(("[denied]", "[invalid_input]")), text
        assert await fingerprint(app) == before


async def test_terminating_the_runtime_s_own_backend_is_refused(app: LongTail) -> None:
    async with app, app.db.connection() as conn:
        pid = (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]
        async with session("memory", app, "db-query") as c:
            result = await c.call_tool("run_sql", {"sql": f"SELECT pg_terminate_backend({pid})"})
            cancel = await c.call_tool("run_sql", {"sql": f"SELECT pg_cancel_backend({pid})"})
        assert result.is_error and "[denied]" in result.content[0].text
        assert cancel.is_error and "[denied]" in cancel.content[0].text
        assert (await (await conn.execute("SELECT 1 AS ok")).fetchone())["ok"] == 1  # still connected


async def test_a_notify_from_a_statement_is_never_delivered(app: LongTail) -> None:
    import anyio

    async with app:
        listener = await app.db.connect()
        try:
            await listener.execute("LISTEN lt_attack")
            async with session("memory", app, "db-query") as c:
                sent = await c.call_tool("run_sql", {"sql": "SELECT pg_notify('lt_attack', 'from run_sql')"})
            assert not sent.is_error  # allowed, but its transaction is rolled back: nothing is sent
            await sql_exec(app.db, "SELECT pg_notify('lt_attack', 'marker')")
            with anyio.fail_after(5):
                first = await anext(listener.notifies())
            assert first.payload == "marker"
        finally:
            await listener.close()


async def test_an_advisory_lock_taken_by_a_statement_is_released_with_it(app: LongTail) -> None:
    async with app:
        async with session("memory", app, "db-query") as c:
            taken = await c.call_tool("run_sql",
                                      {"sql": "SELECT pg_advisory_lock(hashtext('longtail:migrate:longtail'))"})
        assert not taken.is_error
        free = await sql_one(app.db, "SELECT pg_try_advisory_lock(hashtext('longtail:migrate:longtail')) AS ok")
        assert free["ok"] is True
        await sql_exec(app.db, "SELECT pg_advisory_unlock_all()")


async def test_a_slow_statement_stops_at_the_timeout(app: LongTail) -> None:
    async with app:
        before = await fingerprint(app)
        async with session("memory", app, "db-query") as c:
            result = await c.call_tool("run_sql", {"sql": "SELECT pg_sleep(30)", "timeout_ms": 200})
        assert result.is_error and "200 ms statement timeout" in result.content[0].text
        assert await fingerprint(app) == before


async def test_a_very_long_query_is_refused_before_it_reaches_the_database(app: LongTail) -> None:
    async with app:
        before = await fingerprint(app)
        async with session("memory", app, "db-query") as c:
            result = await c.call_tool("run_sql", {"sql": "SELECT 1" + " " * 200_000})
            near_limit = await c.call_tool("run_sql", {"sql": "SELECT length('" + "x" * 90_000 + "')"})
        assert result.is_error and "[invalid_input]" in result.content[0].text
        assert not near_limit.is_error and near_limit.structured_content["rows"] == [[90_000]]
        assert await fingerprint(app) == before


async def test_a_huge_result_is_capped_not_loaded(app: LongTail) -> None:
    async with app:
        async with session("memory", app, "db-query") as c:
            # tens of millions of rows, produced as they are read: the cap stops the statement early
            result = await c.call_tool("run_sql", {"sql": "SELECT a.oid::int FROM pg_class a, pg_class b, pg_class c",
                                                   "max_rows": 5})
        assert not result.is_error, result.content[0].text
        assert len(result.structured_content["rows"]) == 5
        assert result.structured_content["truncated"] is True


async def test_the_reader_role_has_no_write_grant_anywhere(app: LongTail) -> None:
    async with app:
        reader = (await sql_one(app.db, "SELECT role_name FROM sql_reader"))["role_name"]
        row = await sql_one(app.db, """
            SELECT count(*) FILTER (WHERE has_table_privilege(%(r)s, c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE'))
                   AS writable,
                   bool_or(r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls) AS powerful
            FROM pg_class c, pg_roles r
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND r.rolname = %(r)s
        """, {"r": reader})
        assert row["writable"] == 0 and row["powerful"] is False


async def test_only_superadmins_may_run_sql(app: LongTail) -> None:
    from tests.humans.helpers import person

    async with app:
        await person(app.db, "rita")
        async with session("memory", app, "db-query", "rita") as c:
            result = await c.call_tool("run_sql", {"sql": "SELECT count(*) FROM escalation"})
        assert result.is_error and "[forbidden]" in result.content[0].text

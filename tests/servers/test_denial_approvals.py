"""Denial -> approval: a call refused by a safety policy becomes an escalation to the approver role, bound
to that exact call; approved, the call goes through once, for the caller who asked, and never again."""

from typing import Any

import pytest

from longtail_mcp import Context, Forbidden, InvalidInput, LongTail, PolicyDenied, WorkflowFailed
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.humans.helpers import eventually, person, sql_one
from tests.runtime.helpers import wait_status
from tests.servers.sessions import session

pytestmark = pytest.mark.anyio
WRITE = "UPDATE role SET description = 'approved change' WHERE name = 'approver' RETURNING name"


async def description(app: LongTail) -> str:
    return (await sql_one(app.db, "SELECT description FROM role WHERE name = 'approver'"))["description"]  # type: ignore[no-any-return]


def escalation_id(text: str) -> str:
    return text.split("approval_id='")[1].split("'")[0]


async def test_a_refusal_says_why_and_how_to_ask_for_approval(app: LongTail) -> None:
    async with app:
        before = await description(app)
        async with session("memory", app, "db-query") as c:
            refused = await c.call_tool("run_sql", {"sql": WRITE})
        assert refused.is_error
        text = refused.content[0].text
        assert text.startswith("[denied] the database refused the statement") and "request_approval: true" in text
        assert await inbox.find_escalations(app.db, SYSTEM, role="approver") == []  # nothing opened unasked
        assert await description(app) == before


async def test_an_approved_call_goes_through_once_and_only_for_exactly_that_call(app: LongTail) -> None:
    async with app:
        before = await description(app)
        olga = await person(app.db, "olga", {"approver": "member"})
        async with session("memory", app, "db-query") as c:
            asked = await c.call_tool("run_sql", {"sql": WRITE, "request_approval": True})
            again = await c.call_tool("run_sql", {"sql": WRITE, "request_approval": True})
            eid = escalation_id(asked.content[0].text)
            assert asked.is_error and "Approval requested" in asked.content[0].text
            assert escalation_id(again.content[0].text) == eid  # asking twice opens one escalation
            row = await esc.get_escalation(app.db, olga, eid)
            assert row["type"] == "approval" and row["role"] == "approver"
            assert row["data"]["tool"] == "db-query/run_sql" and row["data"]["arguments"]["sql"] == WRITE

            early = await c.call_tool("run_sql", {"sql": WRITE, "approval_id": eid})
            assert early.is_error and "[forbidden]" in early.content[0].text and await description(app) == before

            with pytest.raises(InvalidInput, match="does not match the form"):  # the form wants a boolean
                await esc.resolve(app.db, olga, eid, {"approved": "yes"})
            await esc.resolve(app.db, olga, eid, {"approved": True, "reason": "ok for today"})

            for changed in ({"sql": WRITE.replace("approved change", "sneaky")}, {"sql": WRITE, "max_rows": 1}):
                other = await c.call_tool("run_sql", {**changed, "approval_id": eid})
                assert other.is_error and "does not approve this exact call" in other.content[0].text
            assert await description(app) == before

            done = await c.call_tool("run_sql", {"sql": WRITE, "approval_id": eid})
            assert not done.is_error, done.content[0].text
            assert done.structured_content["rows"] == [["approver"]]
            assert await description(app) == "approved change"

            replay = await c.call_tool("run_sql", {"sql": WRITE, "approval_id": eid})
            assert replay.is_error and "[forbidden]" in replay.content[0].text


async def test_an_approval_is_spent_only_by_whoever_asked_for_it(app: LongTail) -> None:
    async with app:
        olga = await person(app.db, "olga", {"approver": "member"})
        eid = (await esc.create_escalation(app.db, SYSTEM, role="approver", message="allow?", type="approval",
                                           action=("db-query/run_sql", {"sql": WRITE, "max_rows": None,
                                                                        "timeout_ms": None})))["id"]
        await esc.resolve(app.db, olga, eid, {"approved": True})
        with pytest.raises(Forbidden, match="requested by someone else"):
            await esc.use_approval(app.db, eid, "db-query/run_sql",
                                   {"sql": WRITE, "max_rows": None, "timeout_ms": None}, requested_by="mallory")


async def test_a_read_only_key_cannot_spend_or_request_approvals(app: LongTail) -> None:
    from tests.humans.helpers import read_only

    async with app:
        from longtail_mcp.tools import approvals

        viewer = await read_only(app.db, await person(app.db, "vic"))
        with pytest.raises(Forbidden, match="read-only key"):
            await approvals.request(app.db, viewer, "approver", "db-query/run_sql", {"sql": WRITE}, reason="r",
                                    rule="read_only_sql")
        with pytest.raises(Forbidden, match="read-only key"):
            await approvals.spend(app.db, viewer, "any", "db-query/run_sql", {"sql": WRITE})


async def test_inside_a_run_a_refused_call_waits_for_the_approver_and_then_goes_through(app: LongTail) -> None:
    @app.workflow("fix")
    async def fix(ctx: Context, sql: str) -> Any:
        return await ctx.call_tool("db-query/run_sql", {"sql": sql})

    async with running(app):
        before = await description(app)
        olga = await person(app.db, "olga", {"approver": "member"})
        handle = await app.start("fix", WRITE, workflow_id="fix-1")
        pending = await eventually(lambda: inbox.find_escalations(app.db, olga, role="approver", status="pending"))
        assert pending[0]["workflow_id"] == "fix-1" and pending[0]["data"]["arguments"]["sql"] == WRITE
        await wait_status(handle, "waiting")  # the escalation commits just before the run leaves the worker
        assert await description(app) == before
        await esc.resolve(app.db, olga, pending[0]["id"], {"approved": True})
        result = await handle.result(timeout=20)
        assert result["rows"] == [["approver"]] and await description(app) == "approved change"
        used = await sql_one(app.db, "SELECT approval_used_at FROM escalation WHERE id = %s", [pending[0]["id"]])
        assert used["approval_used_at"] is not None
        kinds = [(s["kind"], s["status"]) for s in (await handle.export())["steps"]]
        assert kinds == [("tool", "failed"), ("escalation", "completed"), ("tool", "completed")]


async def test_inside_a_run_a_declined_approval_fails_the_call_with_the_reason(app: LongTail) -> None:
    @app.workflow("fix")
    async def fix(ctx: Context, sql: str) -> Any:
        try:
            return await ctx.call_tool("db-query/run_sql", {"sql": sql})
        except PolicyDenied as exc:
            return {"refused": exc.message}

    @app.workflow("fix_unhandled")
    async def fix_unhandled(ctx: Context, sql: str) -> Any:
        return await ctx.call_tool("db-query/run_sql", {"sql": sql})

    async with running(app):
        before = await description(app)
        olga = await person(app.db, "olga", {"approver": "member"})
        handled = await app.start("fix", WRITE)
        unhandled = await app.start("fix_unhandled", WRITE)
        pending = await eventually(lambda: _two(app, olga))
        for row in pending:
            await esc.resolve(app.db, olga, row["id"], {"approved": False, "reason": "not in production"})
        assert "approver declined: not in production" in (await handled.result(timeout=20))["refused"]
        with pytest.raises(WorkflowFailed, match="declined"):
            await unhandled.result(timeout=20)
        assert await description(app) == before


async def _two(app: LongTail, who: Any) -> list[dict[str, Any]] | None:
    rows = await inbox.find_escalations(app.db, who, role="approver", status="pending")
    return rows if len(rows) == 2 else None


async def test_files_a_denied_path_is_written_once_after_approval_over_mcp(dsn: str, tmp_path: Any) -> None:
    root = tmp_path / "root"
    root.mkdir()
    app = LongTail(dsn, files_root=root)
    async with app:
        olga = await person(app.db, "olga", {"approver": "member"})
        args = {"path": ".env", "content": "TOKEN=1\n"}
        async with session("jsonrpc", app, "files") as c:
            asked = await c.call_tool("write_file", {**args, "request_approval": True})
            assert asked.is_error and asked.content[0].text.startswith("[denied]")
            assert not (root / ".env").exists()
            eid = escalation_id(asked.content[0].text)
            await esc.resolve(app.db, olga, eid, {"approved": True})
            other = await c.call_tool("write_file", {"path": ".env", "content": "TOKEN=2\n", "approval_id": eid})
            assert other.is_error and not (root / ".env").exists()
            done = await c.call_tool("write_file", {**args, "approval_id": eid})
            assert not done.is_error, done.content[0].text
            assert (root / ".env").read_text() == "TOKEN=1\n"
            again = await c.call_tool("write_file", {**args, "approval_id": eid})
            assert again.is_error and "[forbidden]" in again.content[0].text


async def test_http_fetch_an_internal_url_is_fetched_once_after_approval_over_mcp(app: LongTail) -> None:
    from tests.servers.test_http_fetch_core import Site

    site = Site()
    site.start()
    try:
        async with app:
            olga = await person(app.db, "olga", {"approver": "member"})
            url = site.url("/json")
            async with session("memory", app, "http-fetch") as c:
                asked = await c.call_tool("fetch_json", {"url": url, "request_approval": True})
                assert asked.is_error and "loopback" in asked.content[0].text and site.hits == []
                eid = escalation_id(asked.content[0].text)
                await esc.resolve(app.db, olga, eid, {"approved": True})
                done = await c.call_tool("fetch_json", {"url": url, "approval_id": eid})
                assert not done.is_error, done.content[0].text
                again = await c.call_tool("fetch_json", {"url": url, "approval_id": eid})
                assert again.is_error
            assert len(site.hits) == 1
    finally:
        site.stop()

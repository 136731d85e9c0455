"""The human-queue server through a real MCP client session, as people and bots use it."""

from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest
from mcp import Client as McpClient

from longtail_mcp import LongTail
from longtail_mcp.events.feed import feed_of
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.mcp_glue.server import fixed_principal
from system_servers.human_queue import server as hq
from tests.conftest import running
from tests.runtime.helpers import until, wait_status
from tests.servers.sessions import (
    TRANSPORTS,
    Report,
    call_with_progress,
    cancel_after_progress,
    fast_progress,
    growing,
    http_server,
    loud,
    session,
)

pytestmark = pytest.mark.anyio


async def call(c: McpClient, tool: str, args: dict[str, Any]) -> Any:
    result = await c.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def people(app: LongTail) -> tuple[Principal, Principal]:
    await ident.create_role(app.db, SYSTEM, "reviewer")
    await ident.create_role(app.db, SYSTEM, "lead")
    for who in ("rita", "sam"):
        await ident.create_account(app.db, SYSTEM, who)
        await ident.set_membership(app.db, SYSTEM, "reviewer", who)
    await ident.add_form(app.db, SYSTEM, "reviewer", {
        "type": "object", "required": ["approved"], "properties": {"approved": {"type": "boolean"}},
    })
    return await ident.get_principal(app.db, "rita"), await ident.get_principal(app.db, "sam")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_human_queue_tool_works_over_every_transport(app: LongTail, transport: str) -> None:
    @app.workflow()
    async def publish(ctx, post):
        decision = await ctx.escalate("reviewer", f"publish {post}?")
        return decision["approved"]

    async with running(app), AsyncExitStack() as stack:
        await people(app)
        base = await stack.enter_async_context(http_server(app)) if transport in ("http", "sse") else None
        rita = await stack.enter_async_context(session(transport, app, "human-queue", "rita", base))
        sam = await stack.enter_async_context(session(transport, app, "human-queue", "sam", base))
        assert {t.name for t in (await rita.list_tools()).tools} >= {t.name for t in hq.TOOLS}
        opened = await call(rita, "escalate_to_human", {"role": "reviewer", "message": "check invoice",
                                                        "priority": 1, "escalation_id": "e1"})
        assert opened["status"] == "pending" and opened["form_schema"]["required"] == ["approved"]
        again = await call(rita, "escalate_to_human", {"role": "reviewer", "message": "check invoice",
                                                       "priority": 1, "escalation_id": "e1"})
        assert again["created_at"] == opened["created_at"], "the same request again returns the first"
        taken = await sam.call_tool("escalate_to_human", {"role": "reviewer", "message": "check invoice",
                                                          "escalation_id": "e1"})
        assert taken.is_error and "already taken" in taken.content[0].text and "invoice" not in str(taken)
        handle = await app.start("publish", "p1")
        await wait_status(handle, "waiting")
        work = await call(sam, "get_available_work", {})
        assert work["escalations"][0]["id"] == "e1", "most urgent first"
        assert len(work["escalations"]) == 2
        newest = await call(sam, "get_available_work", {"sort": "newest", "limit": 1})
        assert newest["escalations"][0]["workflow_id"] == handle.workflow_id and newest["next_offset"] == 1
        assert (await call(sam, "get_available_work", {"type": "nothing-of-this-type"}))["escalations"] == []

        await call(sam, "claim_escalation", {"escalation_id": "e1"})
        refused = await rita.call_tool("claim_escalation", {"escalation_id": "e1"})
        assert refused.is_error and "claimed by sam" in refused.content[0].text
        assert [w["id"] for w in (await call(sam, "list_my_work", {}))["escalations"]] == ["e1"]
        await call(sam, "release_escalation", {"escalation_id": "e1"})
        bad = await rita.call_tool("claim_and_resolve", {"escalation_id": "e1", "resolution": {"approved": "yes"}})
        assert bad.is_error and "approved" in bad.content[0].text
        done = await call(rita, "claim_and_resolve", {"escalation_id": "e1", "resolution": {"approved": True}})
        assert done["status"] == "resolved" and done["resolved_by"] == "rita"
        checked = await call(sam, "check_resolution", {"escalation_id": "e1"})
        assert checked == {"escalation_id": "e1", "status": "resolved", "resolution": {"approved": True},
                           "resolved_by": "rita"}

        (run_item,) = [w for w in work["escalations"] if w["workflow_id"] == handle.workflow_id]
        await call(rita, "claim_escalation", {"escalation_id": run_item["id"], "minutes": 5})
        await call(rita, "resolve_escalation", {"escalation_id": run_item["id"], "resolution": {"approved": True}})
        assert await handle.result(timeout=10) is True

        moved = await call(sam, "escalate_to_human", {"role": "reviewer", "message": "for a lead"})
        rerouted = await call(rita, "reroute_escalation", {"escalation_id": moved["id"], "role": "lead"})
        assert rerouted["role"] == "lead"
        gone = await rita.call_tool("check_resolution", {"escalation_id": moved["id"]})
        assert gone.is_error and "no escalation" in gone.content[0].text, "rita no longer sees a lead's item"
        followed = await call(sam, "check_resolution", {"escalation_id": moved["id"]})
        assert followed["status"] == "pending", "whoever asked still follows the decision"
        dropped = await call(rita, "escalate_to_human", {"role": "reviewer", "message": "never mind"})
        assert (await call(rita, "cancel_escalation", {"escalation_id": dropped["id"]}))["status"] == "cancelled"


async def test_escalate_and_wait_returns_the_decision_or_pending_when_the_wait_runs_out(app: LongTail) -> None:
    async with running(app):
        rita_p, sam_p = await people(app)
        async with McpClient(hq.build(app, fixed_principal(rita_p))) as rita, \
                McpClient(hq.build(app, fixed_principal(sam_p))) as sam:
            late = await call(rita, "escalate_and_wait", {"role": "reviewer", "message": "quick?", "wait_seconds": 0.3,
                                                          "escalation_id": "w1"})
            assert late == {"escalation_id": "w1", "status": "pending", "resolution": None, "resolved_by": None}
            outcome: dict[str, Any] = {}

            async def ask() -> None:
                outcome.update(await call(rita, "escalate_and_wait", {
                    "role": "reviewer", "message": "approve?", "wait_seconds": 20, "escalation_id": "w2"}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)

                async def second_asked() -> bool:
                    return bool((await call(sam, "get_available_work", {}))["escalations"][1:])

                await until(second_asked, every=0.05)
                await call(sam, "claim_and_resolve", {"escalation_id": "w2", "resolution": {"approved": False}})
            assert outcome == {"escalation_id": "w2", "status": "resolved", "resolution": {"approved": False},
                               "resolved_by": "sam"}
            waited = await call(rita, "check_resolution", {"escalation_id": "w1", "wait_seconds": 0.2})
            assert waited["status"] == "pending"


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_escalate_and_wait_reports_who_it_waits_for_until_someone_decides(
        app: LongTail, transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast_progress(monkeypatch)
    async with app:
        _, sam = await people(app)
        async with session(transport, app, "human-queue", "rita") as rita:

            async def sam_decides_after_two(report: Report, reports: list[Report]) -> None:
                # Over JSON-RPC the SDK runs these callbacks as tasks, not in turn: resolve once a report has
                # seen the claim, whenever that is.
                if len(reports) == 2:
                    await esc.claim(app.db, sam, "e1")
                elif "claimed by sam" in (report[2] or "") and not decided:
                    decided.append(True)
                    await esc.resolve(app.db, sam, "e1", {"approved": True})

            decided: list[bool] = []

            result, reports = await call_with_progress(rita, "escalate_and_wait", {
                "role": "reviewer", "message": "ship it?", "wait_seconds": 20, "escalation_id": "e1"},
                sam_decides_after_two)
    assert result.structured_content == {"escalation_id": "e1", "status": "resolved", "resolution": {"approved": True},
                                         "resolved_by": "sam"}
    assert len(reports) >= 3 and growing(reports) and all(total == 20 for _, total, _ in reports), reports
    assert reports[0][2] == reports[1][2] == "waiting for a person: escalation e1 (role reviewer)"
    assert "waiting for a person: escalation e1 (role reviewer, claimed by sam)" in [m for _, _, m in reports[2:]]


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_a_cancelled_escalate_and_wait_leaves_the_escalation_open_for_its_role(
        app: LongTail, transport: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    fast_progress(monkeypatch)
    async with app:
        rita_p, sam = await people(app)
        async with session(transport, app, "human-queue", "rita") as rita:
            feed = feed_of(app.db)
            idle = feed.subscribers

            async def waiting() -> None:
                assert feed.subscribers == idle + 1, "escalate_and_wait follows the escalation events"

            reports = await cancel_after_progress(rita, "escalate_and_wait", {
                "role": "reviewer", "message": "ship it?", "wait_seconds": 50, "escalation_id": "e1"}, before=waiting)
            await until(lambda: feed.subscribers == idle, within=3)  # the server stopped waiting too
            assert "escalation e1" in (reports[0][2] or ""), "the progress names it, to find it again"
            assert (await esc.get_escalation(app.db, rita_p, "e1")).status == "pending"
            await esc.claim(app.db, sam, "e1")
            await esc.resolve(app.db, sam, "e1", {"approved": False})
            checked = await call(rita, "check_resolution", {"escalation_id": "e1"})
    assert checked["status"] == "resolved" and checked["resolution"] == {"approved": False}
    assert loud(caplog.records) == []


async def test_bad_human_queue_arguments_are_tool_errors_and_change_nothing(app: LongTail) -> None:
    async with running(app):
        rita_p, _ = await people(app)
        async with McpClient(hq.build(app, fixed_principal(rita_p))) as c:
            for tool, args, mentions in [
                ("escalate_to_human", {"role": "reviewer", "message": ""}, "message"),
                ("escalate_to_human", {"role": "reviewer", "message": "x", "priority": 9}, "priority"),
                ("escalate_to_human", {"role": "ghost", "message": "x"}, "no role"),
                ("escalate_and_wait", {"role": "reviewer", "message": "x", "wait_seconds": 60}, "wait_seconds"),
                ("claim_escalation", {"escalation_id": "nope"}, "no escalation"),
                ("resolve_escalation", {"escalation_id": "nope"}, "resolution"),
                ("get_available_work", {"limit": 1000}, "limit"),
                ("get_available_work", {"sort": "urgent"}, "sort"),
            ]:
                result = await c.call_tool(tool, args)
                assert result.is_error and mentions in result.content[0].text, (tool, result.content[0].text)

        assert await inbox.find_escalations(app.db, SYSTEM) == []

"""Each active pipeline is an MCP tool of its own, and so is a workflow type registered with tool=True: listed
with their schemas, called over stdio and streamable HTTP, announced with list_changed when they come and
go, and callable only by whom they allow. The compiler server writes, verifies and publishes them."""

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client as McpClient
from pydantic import BaseModel

from longtail_mcp import Context, LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.mcp_glue.server import ListChanged, fixed_principal
from longtail_mcp.pipelines import store
from system_servers.compiler import server as compiler
from system_servers.workflows import server as workflows
from tests.conftest import running
from tests.pipelines.helpers import ToolsChanged, files_app, publish, save
from tests.servers.sessions import fast_progress, http_server, session

pytestmark = pytest.mark.anyio

GREET = """
name: greet_file
description: Write a greeting to a file
input_schema: {type: object, required: [who], properties: {who: {type: string}}}
output_schema: {type: object, properties: {path: {type: string}}}
steps:
  - id: save
    tool: files/write_file
    args: {path: "hello-{{ inputs.who }}.txt", content: "hello {{ inputs.who }}"}
output: {path: "{{ steps.save.path }}"}
"""


class Order(BaseModel):
    sku: str
    qty: int = 1


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    app = files_app(dsn, tmp_path / "files")

    @app.workflow("price_order", tool=True, description="Price an order")
    async def price_order(ctx: Context, order: Order) -> dict[str, Any]:
        return {"sku": order.sku, "total": order.qty * 3}

    @app.workflow("audit_order", tool=True, description="Audit an order", roles=["writers"])
    async def audit_order(ctx: Context, order: Order) -> dict[str, Any]:
        return {"sku": order.sku, "audited": True}

    return app


async def ok(client: McpClient, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content  # type: ignore[return-value]


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_pipeline_and_a_workflow_type_are_tools_a_client_calls(app: LongTail, transport: str) -> None:
    async with running(app), AsyncExitStack() as stack:
        await ident.ensure_admin(app.db)
        await publish(app, GREET)
        base = await stack.enter_async_context(http_server(app)) if transport == "http" else None
        c = await stack.enter_async_context(session(transport, app, "workflows", None, base))
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert tools["greet_file"].input_schema["required"] == ["who"]
        assert tools["greet_file"].output_schema["properties"]["output"]["properties"]["path"] == {"type": "string"}
        assert tools["greet_file"].annotations.read_only_hint is False
        done = await ok(c, "greet_file", {"who": "ada"})
        assert (done["status"], done["done"], done["output"]) == ("completed", True, {"path": "hello-ada.txt"})
        assert (Path(app.settings.files_dir) / "hello-ada.txt").read_text() == "hello ada"
        bad = await c.call_tool("greet_file", {"who": 7})
        assert bad.is_error and "does not match its schema" in bad.content[0].text
        assert tools["price_order"].input_schema["required"] == ["sku"]
        priced = await ok(c, "price_order", {"sku": "x-1", "qty": 4})
        assert priced["output"] == {"sku": "x-1", "total": 12}


async def test_activating_and_archiving_tells_connected_clients_the_tools_changed(app: LongTail) -> None:
    changed = ToolsChanged()
    list_changed = ListChanged()
    async with running(app), anyio.create_task_group() as tg:
        await tg.start(list_changed.watch, app.events)
        server = workflows.build(app, fixed_principal(SYSTEM), list_changed)
        async with McpClient(server, mode="legacy", message_handler=changed) as c:
            assert c.server_capabilities.tools is not None and c.server_capabilities.tools.list_changed
            assert "greet_file" not in {t.name for t in (await c.list_tools()).tools}
            await publish(app, GREET)
            await changed.wait()
            assert "greet_file" in {t.name for t in (await c.list_tools()).tools}
            await store.archive(app.db, SYSTEM, "greet_file")
            await changed.wait()
            assert "greet_file" not in {t.name for t in (await c.list_tools()).tools}
        tg.cancel_scope.cancel()
    assert len(changed.got) == 2 and list_changed.sent == 2


async def test_a_pipeline_tool_is_for_whom_it_allows(app: LongTail) -> None:
    restricted = GREET.replace("output_schema:", "access: {roles: [writers]}\noutput_schema:")
    async with running(app):
        await ident.create_role(app.db, SYSTEM, "writers")
        for who, role in (("wendy", "writers"), ("olaf", None)):
            await ident.create_account(app.db, SYSTEM, who)
            if role:
                await ident.set_membership(app.db, SYSTEM, role, who)
        await publish(app, restricted)
        async with session("memory", app, "workflows", "olaf") as c:
            assert "greet_file" not in {t.name for t in (await c.list_tools()).tools}
            refused = await c.call_tool("greet_file", {"who": "x"})
            assert refused.is_error and "may not call pipeline 'greet_file'" in refused.content[0].text
            # Not by another door either: the run itself checks whom it acts for.
            for name, input in (("pipeline", {"pipeline": "greet_file", "version": 1, "inputs": {"who": "x"}}),
                                ("audit_order", {"sku": "x"})):
                started = await ok(c, "start_workflow", {"name": name, "input": input})
                waited = await ok(c, "wait_for_run", {"workflow_id": started["workflow_id"], "timeout_seconds": 20})
                assert waited["run"]["status"] == "failed", waited
                assert waited["run"]["error"]["code"] == "forbidden" and "olaf may not run" in waited["run"]["error"][
                    "message"]
        assert not (Path(app.settings.files_dir) / "hello-x.txt").exists()
        async with session("memory", app, "workflows", "wendy") as c:
            assert (await ok(c, "greet_file", {"who": "w"}))["status"] == "completed"
            assert (await ok(c, "audit_order", {"sku": "w"}))["output"] == {"sku": "w", "audited": True}
            run = await app.get_run((await ok(c, "greet_file", {"who": "v"}))["workflow_id"])
            assert run.principal["id"] == "wendy", "the run acts for the caller"


async def test_who_may_call_a_pipeline_tool_is_the_served_versions_access_not_a_newer_drafts(
        app: LongTail) -> None:
    restricted = GREET.replace("output_schema:", "access: {roles: [writers]}\noutput_schema:")
    async with running(app):
        await ident.create_role(app.db, SYSTEM, "writers")
        await ident.create_account(app.db, SYSTEM, "olaf")
        await publish(app, GREET)  # v1, open to every account, is served
        await save(app, restricted.replace("Write a greeting", "Write a greeting (v2)"))  # v2, a draft
        assert (await store.get(app.db, "greet_file")).access_roles == ["writers"], "the row follows v2"
        async with session("memory", app, "workflows", "olaf") as c:
            assert "greet_file" in {t.name for t in (await c.list_tools()).tools}
            assert (await ok(c, "greet_file", {"who": "o"}))["status"] == "completed", "v1 serves, v1 allows"
        await publish(app, restricted.replace("Write a greeting", "Write a greeting (v2)"))  # now v2 serves
        async with session("memory", app, "workflows", "olaf") as c:
            assert "greet_file" not in {t.name for t in (await c.list_tools()).tools}
            assert (await c.call_tool("greet_file", {"who": "o"})).is_error


LOOK = """
name: look_file
description: Look at a file
input_schema: {type: object, required: [path], properties: {path: {type: string}}}
steps:
  - id: look
    tool: files/file_info
    args: {path: "{{ inputs.path }}"}
output: {size: "{{ steps.look.size }}"}
"""


async def test_whether_a_pipeline_tool_only_reads_is_the_served_versions(app: LongTail) -> None:
    """A read-scope key may call a pipeline that only reads; a newer draft that writes does not take it away
    (nor would a read-only draft of a writing pipeline hand it over) until it serves."""
    writes = LOOK.replace("output:", """  - id: note
    tool: files/write_file
    args: {path: "looked.txt", content: "{{ steps.look.size }}"}
output:""")
    async with running(app):
        await ident.create_account(app.db, SYSTEM, "rhea")
        (Path(app.settings.files_dir) / "a.txt").write_text("abc")
        await publish(app, LOOK)
        await save(app, writes)  # v2, a draft that writes
        assert (await store.get(app.db, "look_file")).read_only is False, "the row follows v2"
        async with session("memory", app, "workflows", "rhea", scope="read") as c:
            listed = {t.name: t for t in (await c.list_tools()).tools}
            assert "look_file" in listed and listed["look_file"].annotations.read_only_hint is True
            assert (await ok(c, "look_file", {"path": "a.txt"}))["output"] == {"size": 3}
        await publish(app, writes)
        async with session("memory", app, "workflows", "rhea", scope="read") as c:
            assert "look_file" not in {t.name for t in (await c.list_tools()).tools}


async def test_the_gateway_keeps_the_pipeline_tools_between_listings_until_a_pipeline_changes(
        app: LongTail) -> None:
    """One gateway (serve's, over HTTP) lists for every caller from the tools it kept, filtered per caller;
    serving another version bumps pipeline_stamp, and the next listing reads them again."""
    restricted = GREET.replace("output_schema:", "access: {roles: [writers]}\noutput_schema:")
    async with running(app), http_server(app) as base:
        await ident.create_role(app.db, SYSTEM, "writers")
        for who in ("wendy", "olaf"):
            await ident.create_account(app.db, SYSTEM, who)
        await ident.set_membership(app.db, SYSTEM, "writers", "wendy")
        await publish(app, GREET)
        async with session("http", app, "workflows", "wendy", base) as wendy, \
                session("http", app, "workflows", "olaf", base) as olaf:
            assert "greet_file" in {t.name for t in (await wendy.list_tools()).tools}
            assert "greet_file" in {t.name for t in (await olaf.list_tools()).tools}, "kept, and still olaf's"
            stamp = await store.active_stamp(app.db)
            await publish(app, restricted)  # version 2, for writers only, serves now
            assert await store.active_stamp(app.db) > stamp
            assert "greet_file" not in {t.name for t in (await olaf.list_tools()).tools}, "read again"
            assert "greet_file" in {t.name for t in (await wendy.list_tools()).tools}
            await store.archive(app.db, SYSTEM, "greet_file")
            assert "greet_file" not in {t.name for t in (await wendy.list_tools()).tools}


async def test_the_compiler_server_creates_verifies_and_publishes(app: LongTail) -> None:
    async with running(app), McpClient(compiler.build(app, fixed_principal(SYSTEM))) as c:
        bad = await c.call_tool("create_pipeline", {"yaml": GREET.replace("files/write_file", "files/nope")})
        assert bad.is_error and "line 8" in bad.content[0].text and "files/nope" in bad.content[0].text
        assert await store.search(app.db) == []
        made = await ok(c, "create_pipeline", {"yaml": GREET.replace("input_schema:",
                                                                      "examples: [{who: bo}]\ninput_schema:")})
        assert made["status"] == "draft"
        await ok(c, "deploy_pipeline", {"name": "greet_file"})
        refused = await c.call_tool("activate_pipeline", {"name": "greet_file"})
        assert refused.is_error and "verify" in refused.content[0].text
        verified = await ok(c, "verify_pipeline", {"name": "greet_file"})
        assert verified["verified_version"] == 1
        assert (await ok(c, "activate_pipeline", {"name": "greet_file"}))["status"] == "active"
        listed = await ok(c, "list_pipelines", {"status": "active"})
        assert [p["name"] for p in listed["pipelines"]] == ["greet_file"]
        shown = await ok(c, "get_pipeline", {"name": "greet_file"})
        assert "files/write_file" in shown["yaml"]
        versions = (await ok(c, "list_pipeline_versions", {"name": "greet_file"}))["versions"]
        assert [v["version"] for v in versions] == [1]


REVIEWED = """
name: reviewed_note
description: Write a note once a reviewer agrees
input_schema: {type: object, required: [text], properties: {text: {type: string}}}
steps:
  - id: review
    human: {role: reviewer, message: "Write {{ inputs.text }}?"}
  - id: save
    when: "{{ steps.review.approved }}"
    tool: files/write_file
    args: {path: "note.txt", content: "{{ inputs.text }}"}
output: {written: "{{ steps.save is not none }}"}
"""


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_a_long_call_reports_progress_then_answers_with_the_run_to_wait_for(
        dsn: str, tmp_path: Path, transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast_progress(monkeypatch)  # a report every 0.2 s: the run reaches its person well within the 5 s call
    app = files_app(dsn, tmp_path / "files", tool_wait_seconds=5)
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with running(app):
        await ident.create_role(app.db, SYSTEM, "reviewer")
        await publish(app, REVIEWED)
        async with session(transport, app, "workflows") as c:
            result = await c.call_tool("reviewed_note", {"text": "hi"}, progress_callback=on_progress)
            assert not result.is_error, result.content[0].text
            pending = result.structured_content
            assert (pending["status"], pending["done"]) == ("waiting", False) and "output" not in pending
            assert seen and any("waiting for a person" in (m or "") for _, m in seen), seen
            assert [p for p, _ in seen] == sorted(p for p, _ in seen), "progress only grows"
            (asked,) = await inbox.find_escalations(app.db, SYSTEM, workflow_id=pending["workflow_id"])
            await esc.resolve(app.db, SYSTEM, asked.id, {"approved": True})
            waited = await ok(c, "wait_for_run", {"workflow_id": pending["workflow_id"], "timeout_seconds": 20})
    assert waited["done"] and waited["run"]["status"] == "completed" and waited["run"]["result"] == {"written": True}
    assert (Path(app.settings.files_dir) / "note.txt").read_text() == "hi"

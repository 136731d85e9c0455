"""Resources, resource templates and prompts, through real MCP sessions, under the same RBAC as the tools.

Accounts (as in test_authorization): bob (b-team) starts runs that ask b-team; carl is another b-team
member; alice (a-team) is an outsider who knows the ids.
"""

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client as McpClient
from mcp import MCPError
from mcp.types import BlobResourceContents, EmbeddedResource, TextContent, TextResourceContents

from longtail_mcp import Context, LongTail, NonRetryableError
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox, runs
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.mcp_glue.server import fixed_principal
from longtail_mcp.tools.resources import ResourceSpec, uri_of
from system_servers import SERVERS, gateway
from tests.conftest import running
from tests.humans.helpers import teams
from tests.pipelines.helpers import publish
from tests.runtime.helpers import wait_status
from tests.servers.sessions import http_server, session

pytestmark = pytest.mark.anyio
MODES = pytest.mark.parametrize("transport", ["memory", "jsonrpc"])  # direct dispatch, and JSON-RPC
PIPELINE = """
name: greet_file
description: Write a greeting to a file
input_schema: {type: object, required: [who], properties: {who: {type: string}}}
steps:
  - id: save
    tool: files/write_file
    args: {path: "hello-{{ inputs.who }}.txt", content: "hello {{ inputs.who }}"}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    return root


@pytest.fixture
def app(dsn: str, root: Path) -> LongTail:
    app = LongTail(dsn, poll_seconds=0.2, lease_seconds=5, files_root=str(root))

    @app.workflow()
    async def order(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
        return await ctx.escalate("b-team", f"ship order {order['id']}?", {"card": order["card"]})

    @app.step(retries=3, backoff=0)
    async def charge(card: str) -> None:
        raise NonRetryableError(f"card {card} declined")

    @app.workflow()
    async def pay(ctx: Context, card: str) -> None:
        await ctx.run(charge, card)

    return app


async def cast(app: LongTail) -> None:
    await teams(app.db)


async def start_as(app: LongTail, account: str, name: str, workflow_id: str, input: Any, status: str) -> None:
    actor = await ident.get_principal(app.db, account)
    await runs.start_run(app.db, actor, name, input, workflow_id=workflow_id)
    await wait_status(app.handle(workflow_id), status)


async def read(c: McpClient, uri: str) -> TextResourceContents | BlobResourceContents:
    (contents,) = (await c.read_resource(uri)).contents
    assert contents.uri == uri
    return contents


async def read_json(c: McpClient, uri: str) -> Any:
    contents = await read(c, uri)
    assert isinstance(contents, TextResourceContents) and contents.mime_type == "application/json"
    return json.loads(contents.text)


async def refused(c: McpClient, uri: str) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await c.read_resource(uri)
    return caught.value


async def prompt_refused(c: McpClient, name: str, arguments: dict[str, str]) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await c.get_prompt(name, arguments)
    return caught.value


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
            + chunk(b"IEND", b""))


# -- templates -------------------------------------------------------------------------------------------

def test_uri_templates_take_one_segment_or_a_whole_path_percent_decoded() -> None:
    async def nothing(call: Any, values: dict[str, str]) -> Any: ...

    run = ResourceSpec("longtail://runs/{id}", "run", "", nothing)
    assert run.is_template and run.match("longtail://runs/a%2F1") == {"id": "a/1"}
    assert uri_of("longtail://runs/{id}", id="p/3") == "longtail://runs/p%2F3"
    assert run.match("longtail://runs/a/1") is None and run.match("longtail://runs/") is None
    file = ResourceSpec("longtail://files/{+path}", "file", "", nothing)
    assert file.match("longtail://files/a/b%20c.txt") == {"path": "a/b c.txt"}
    assert uri_of("longtail://files/{+path}", path="a/b c.txt") == "longtail://files/a/b%20c.txt"
    schema = ResourceSpec("longtail://schema", "schema", "", nothing)
    assert not schema.is_template and schema.match("longtail://schema") == {}
    assert schema.match("longtail://schema/x") is None


async def test_each_server_announces_and_lists_its_resource_templates_and_prompts(app: LongTail) -> None:
    expected = {"workflows": ({"longtail://runs/{id}"}, {"investigate_failed_run"}),
                "human-queue": ({"longtail://escalations/{id}", "longtail://queue/{role}"},
                                {"work_my_queue", "explain_denial"}),
                "compiler": ({"longtail://pipelines/{name}", "longtail://pipelines/{name}/{version}"}, set()),
                "db-query": ({"longtail://schema/{table}"}, set()),
                "files": ({"longtail://files/{+path}"}, set())}
    async with app:
        for name in SERVERS:
            async with session("memory", app, name) as c:
                caps = c.server_capabilities
                assert caps is not None
                if name not in expected:  # http-fetch publishes none, and says so
                    assert caps.resources is None and caps.prompts is None
                    continue
                templates, prompts = expected[name]
                assert caps.resources is not None
                listed = (await c.list_resource_templates()).resource_templates
                assert {t.uri_template for t in listed} == templates
                assert all(t.title and t.description for t in listed)
                if prompts:
                    assert caps.prompts is not None
                    assert {p.name for p in (await c.list_prompts()).prompts} == prompts
                else:
                    assert caps.prompts is None


# -- runs ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["memory", "jsonrpc", "stdio"])
async def test_a_run_resource_is_the_run_with_its_journal_for_who_may_see_it(app: LongTail, transport: str) -> None:
    async with running(app):
        await cast(app)
        await start_as(app, "bob", "order", "ord-1", {"id": "ord-1", "card": "4242-secret"}, "waiting")
        for account in ("bob", "carl"):  # the starter, and a member of the role it asked
            async with session(transport, app, "workflows", account) as c:
                history = await read_json(c, "longtail://runs/ord-1")
                assert history["run"]["status"] == "waiting" and history["run"]["input"]["card"] == "4242-secret"
                assert [s["kind"] for s in history["steps"]] == ["escalation"]
                listed = {r.uri: r for r in (await c.list_resources()).resources}
                assert "longtail://runs/ord-1" in listed and "waiting" in (listed["longtail://runs/ord-1"].title or "")
        async with session(transport, app, "workflows", "alice") as c:
            error = await refused(c, "longtail://runs/ord-1")
            assert error.message == "[not_found] no run with id 'ord-1'" and "4242" not in str(error.error)
            assert error.data == {"code": "not_found", "message": "no run with id 'ord-1'", "uri": "longtail://runs/ord-1"}
            assert "longtail://runs/ord-1" not in {r.uri for r in (await c.list_resources()).resources}
            unknown = await refused(c, "longtail://nothing/here")
            assert unknown.message.startswith("[not_found] no resource 'longtail://nothing/here'")


# -- escalations and the queue -----------------------------------------------------------------------------

@MODES
async def test_an_escalation_is_read_by_its_roles_members_and_not_by_another_role(app: LongTail,
                                                                                  transport: str) -> None:
    async with running(app):
        await cast(app)
        await start_as(app, "bob", "order", "ord-2", {"id": "ord-2", "card": "4242-secret"}, "waiting")
        (asked,) = await inbox.find_escalations(app.db, SYSTEM, workflow_id="ord-2")
        uri = uri_of("longtail://escalations/{id}", id=asked.id)
        async with session(transport, app, "human-queue", "carl") as c:
            record = await read_json(c, uri)
            assert record["escalation"]["message"] == "ship order ord-2?" and record["escalation"]["role"] == "b-team"
            assert [h["action"] for h in record["history"]] == ["escalation.create"]
            assert uri in {r.uri for r in (await c.list_resources()).resources}
            queue = await read_json(c, "longtail://queue")
            assert [e["id"] for e in queue["available"]] == [asked.id] and queue["claimed_by_me"] == []
            assert [e["id"] for e in (await read_json(c, "longtail://queue/b-team"))["available"]] == [asked.id]
        async with session(transport, app, "human-queue", "alice") as c:
            error = await refused(c, uri)
            assert error.message.startswith("[not_found] no escalation") and "4242" not in str(error.error)
            assert (await read_json(c, "longtail://queue"))["available"] == []
            other = await refused(c, "longtail://queue/b-team")
            assert other.message == "[forbidden] alice is not a member of role 'b-team'"
            assert uri not in {r.uri for r in (await c.list_resources()).resources}


# -- pipelines, schema, files ------------------------------------------------------------------------------

async def test_a_pipeline_resource_is_its_yaml(app: LongTail) -> None:
    async with app:
        await publish(app, PIPELINE)
        async with session("memory", app, "compiler") as c:
            latest = await read(c, "longtail://pipelines/greet_file")
            assert isinstance(latest, TextResourceContents) and latest.mime_type == "application/yaml"
            assert "name: greet_file" in latest.text and "files/write_file" in latest.text
            assert latest.meta == {"io.longtail/pipeline": {"status": "active", "version": 1, "latest": 1}}
            assert (await read(c, "longtail://pipelines/greet_file/1")).text == latest.text  # type: ignore[union-attr]
            listed = (await c.list_resources()).resources
            assert [r.uri for r in listed] == ["longtail://pipelines/greet_file"]
            assert (await refused(c, "longtail://pipelines/greet_file/9")).message.startswith("[not_found]")
            bad = await refused(c, "longtail://pipelines/greet_file/latest")
            assert bad.message.startswith("[invalid_input] resource URI: version:")
            assert (await refused(c, "longtail://pipelines/Nope")).message.startswith("[invalid_input]")


async def test_the_schema_resource_describes_the_database(app: LongTail) -> None:
    async with app, session("jsonrpc", app, "db-query") as c:
        assert "longtail://schema" in {r.uri for r in (await c.list_resources()).resources}
        tables = {t["table"]: t for t in (await read_json(c, "longtail://schema"))["tables"]}
        assert {"workflow", "step", "escalation"} <= set(tables)
        assert "status" in {col["name"] for col in tables["workflow"]["columns"]}
        (one,) = (await read_json(c, "longtail://schema/workflow"))["tables"]
        assert one["table"] == "workflow"
        assert (await refused(c, "longtail://schema/nope")).message.startswith("[invalid_input] no table 'nope'")


@MODES
async def test_a_file_resource_is_text_or_a_blob_and_nothing_outside_the_root(app: LongTail, root: Path,
                                                                              transport: str) -> None:
    (root / "notes.txt").write_text("hello\nworld\n")
    (root / "docs").mkdir()
    (root / "docs" / "a b.md").write_text("# A\n")
    (root / "pixel.png").write_bytes(png())
    (root / ".env").write_text("TOKEN=secret")
    (root.parent / "outside.txt").write_text("not yours")
    async with app, session(transport, app, "files") as c:
        text = await read(c, "longtail://files/notes.txt")
        assert isinstance(text, TextResourceContents) and text.text == "hello\nworld\n"
        assert text.mime_type == "text/plain" and text.meta == {"io.longtail/file": {"path": "notes.txt", "size": 12}}
        nested = await read(c, uri_of("longtail://files/{+path}", path="docs/a b.md"))
        assert isinstance(nested, TextResourceContents) and nested.text == "# A\n"
        image = await read(c, "longtail://files/pixel.png")
        assert isinstance(image, BlobResourceContents) and image.mime_type == "image/png"
        assert base64.b64decode(image.blob) == png()
        listed = {r.uri for r in (await c.list_resources()).resources}
        assert listed == {"longtail://files/notes.txt", "longtail://files/pixel.png"}, "no .env, no directories"

        escape = await refused(c, "longtail://files/..%2Foutside.txt")
        assert escape.message.startswith("[denied]") and escape.data["rule"] == "outside_root"
        assert "not yours" not in str(escape.error)
        assert (await refused(c, "longtail://files/../outside.txt")).data["rule"] == "outside_root"
        denied = await refused(c, "longtail://files/.env")
        assert denied.data["rule"] == "denied_path" and "secret" not in str(denied.error)
        assert "request_approval" in denied.message
        assert (await refused(c, "longtail://files/missing.txt")).message.startswith("[not_found]")


# -- prompts -----------------------------------------------------------------------------------------------

def texts(result: Any) -> str:
    return "\n".join(m.content.text for m in result.messages if isinstance(m.content, TextContent))


def embedded(result: Any) -> dict[str, Any]:
    found = {}
    for m in result.messages:
        if isinstance(m.content, EmbeddedResource):
            assert isinstance(m.content.resource, TextResourceContents)
            found[m.content.resource.uri] = json.loads(m.content.resource.text)
    return found


@MODES
async def test_investigate_failed_run_embeds_the_runs_history(app: LongTail, transport: str) -> None:
    async with running(app):
        await cast(app)
        await start_as(app, "bob", "pay", "pay-1", "4242", "failed")
        async with session(transport, app, "workflows", "bob") as c:
            result = await c.get_prompt("investigate_failed_run", {"run_id": "pay-1"})
            assert "card 4242 declined" in texts(result) and "export_run" in texts(result)
            history = embedded(result)["longtail://runs/pay-1"]
            assert history["run"]["status"] == "failed" and history["steps"][0]["status"] == "failed"
            missing = await prompt_refused(c, "investigate_failed_run", {})
            assert missing.message.startswith("[invalid_input] prompt investigate_failed_run: run_id:")
            extra = await prompt_refused(c, "investigate_failed_run", {"run_id": "pay-1", "x": "y"})
            assert "x: Extra inputs are not permitted" in extra.message
            unknown = await prompt_refused(c, "nope", {})
            assert unknown.message.startswith("[not_found] no prompt named 'nope'")
        async with session(transport, app, "workflows", "alice") as c:
            hidden = await prompt_refused(c, "investigate_failed_run", {"run_id": "pay-1"})
            assert hidden.message == "[not_found] no run with id 'pay-1'"


@MODES
async def test_work_my_queue_and_explain_denial_embed_what_they_are_about(app: LongTail, root: Path,
                                                                          transport: str) -> None:
    (root / ".env").write_text("TOKEN=secret")
    async with running(app):
        await cast(app)
        await start_as(app, "bob", "order", "ord-3", {"id": "ord-3", "card": "4242"}, "waiting")
        async with session(transport, app, "human-queue", "carl") as c:
            result = await c.get_prompt("work_my_queue", {})
            assert "carl" in texts(result) and "resolve_escalation" in texts(result)
            assert [e["workflow_id"] for e in embedded(result)["longtail://queue"]["available"]] == ["ord-3"]
            in_role = await c.get_prompt("work_my_queue", {"role": "b-team"})
            assert "longtail://queue/b-team" in embedded(in_role)
            forbidden = await prompt_refused(c, "work_my_queue", {"role": "a-team"})
            assert forbidden.message == "[forbidden] carl is not a member of role 'a-team'"
        async with session(transport, app, "human-queue", "alice") as c:
            assert "nothing waits" in texts(await c.get_prompt("work_my_queue", {}))

        async with session(transport, app, "files", "bob") as c:
            denied = await c.call_tool("read_file", {"path": ".env", "request_approval": True})
            assert denied.is_error
            approval = denied.meta["io.longtail/error"]["data"]["escalation_id"]  # type: ignore[index]
        async with session(transport, app, "human-queue", "bob") as c:
            result = await c.get_prompt("explain_denial", {"escalation_id": approval,
                                                           "error": denied.content[0].text})  # type: ignore[union-attr]
            assert "[denied]" in texts(result) and "request_approval" in texts(result)
            record = embedded(result)[uri_of("longtail://escalations/{id}", id=approval)]
            assert record["escalation"]["type"] == "approval" and record["escalation"]["data"]["rule"] == "denied_path"
            only_text = await c.get_prompt("explain_denial", {"error": "[forbidden] read scope"})
            assert "[forbidden] read scope" in texts(only_text) and embedded(only_text) == {}
            neither = await prompt_refused(c, "explain_denial", {})
            assert neither.message.startswith("[invalid_input] prompt explain_denial:")
            assert "escalation_id" in neither.message and "error" in neither.message
        async with session(transport, app, "human-queue", "alice") as c:
            hidden = await prompt_refused(c, "explain_denial", {"escalation_id": approval})
            assert hidden.message.startswith("[not_found] no escalation")


# -- the gateway -------------------------------------------------------------------------------------------

async def test_the_gateway_serves_every_resource_and_prompt_under_each_keys_account(app: LongTail) -> None:
    every = {spec.uri for module in SERVERS.values() for spec in module.RESOURCES}
    prompts = {spec.name for module in SERVERS.values() for spec in module.PROMPTS}
    assert prompts == {"investigate_failed_run", "work_my_queue", "explain_denial"}
    async with running(app):
        await cast(app)
        await start_as(app, "bob", "order", "ord-4", {"id": "ord-4", "card": "4242"}, "waiting")
        async with McpClient(gateway(app, fixed_principal(SYSTEM))) as c:
            templates = {t.uri_template for t in (await c.list_resource_templates()).resource_templates}
            fixed = {r.uri for r in (await c.list_resources()).resources if "{" not in r.uri}
            assert templates | {"longtail://schema", "longtail://queue"} == every
            assert {"longtail://schema", "longtail://queue", "longtail://runs/ord-4"} <= fixed
            assert {p.name for p in (await c.list_prompts()).prompts} == prompts
        async with http_server(app) as base:
            async with session("http", app, "gateway", "bob", base, scope="read") as c:
                assert (await read_json(c, "longtail://runs/ord-4"))["run"]["id"] == "ord-4"  # reads need no write
                result = await c.get_prompt("investigate_failed_run", {"run_id": "ord-4"})
                assert "not failed" in texts(result)
            async with session("http", app, "gateway", "alice", base) as c:
                assert (await refused(c, "longtail://runs/ord-4")).message == "[not_found] no run with id 'ord-4'"

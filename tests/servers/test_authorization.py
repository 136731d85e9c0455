"""Authorization attacks, tried as an attacker would: ordinary keys over streamable HTTP, and `--as` over stdio.

Accounts: bob (role b-team) starts runs that ask b-team; carl is another b-team member; alice (a-team)
is an outsider who knows the ids (from an earlier run, a business id, the event stream); carol and dave
are approvers; admin is a superadmin. Each test names the hole it closes.
"""

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client as McpClient

from longtail_mcp import Context, LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox, runs
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.humans.helpers import sql_one, teams
from tests.runtime.helpers import wait_status
from tests.servers.sessions import http_server, session

pytestmark = pytest.mark.anyio
TRANSPORTS = ["http", "stdio"]


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    root = tmp_path / "files"
    root.mkdir()
    app = LongTail(dsn, poll_seconds=0.2, lease_seconds=5, files_root=str(root))

    @app.workflow()
    async def order(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
        return await ctx.escalate("b-team", f"ship order {order['id']}?", {"card": order["card"]})

    return app


async def cast(app: LongTail) -> None:
    await teams(app.db, ("carol", "approver"), ("dave", "approver"))


@asynccontextmanager
async def parties(transport: str, app: LongTail, server: str, *who: str) -> AsyncIterator[dict[str, McpClient]]:
    """One MCP session per account, over `transport` (http: a full key each; stdio: `--as`)."""
    async with AsyncExitStack() as stack:
        base = await stack.enter_async_context(http_server(app)) if transport == "http" else None
        yield {w: await stack.enter_async_context(session(transport, app, server, w, base)) for w in who}


async def ok(client: McpClient, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content  # type: ignore[return-value]


async def refused(client: McpClient, tool: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, f"{tool} went through: {result.structured_content}"
    assert result.structured_content is None
    return result.content[0].text  # type: ignore[no-any-return]


async def start_as(app: LongTail, account: str, workflow_id: str, card: str = "4242") -> None:
    bob = await ident.get_principal(app.db, account)
    await runs.start_run(app.db, bob, "order", {"id": workflow_id, "card": card}, workflow_id=workflow_id)
    await wait_status(app.handle(workflow_id), "waiting")


# -- 1. an escalation id is not a read path -----------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_escalation_id_reads_nothing_of_another_accounts_escalation(app: LongTail, transport: str) -> None:
    async with running(app):
        await cast(app)
        await start_as(app, "bob", "ord-1", card="4242-secret")
        (asked,) = await inbox.find_escalations(app.db, SYSTEM, workflow_id="ord-1")
        async with parties(transport, app, "human-queue", "alice") as c:
            text = await refused(c["alice"], "escalate_to_human", {"role": "a-team", "message": "peek",
                                                                   "escalation_id": asked["id"]})
            assert "already taken" in text and "4242" not in text and "ship order" not in text
            assert "no escalation" in await refused(c["alice"], "check_resolution", {"escalation_id": asked["id"]})
        assert (await esc.get_escalation(app.db, SYSTEM, asked["id"]))["status"] == "pending"


# -- 2. a run's human decision cannot be forged -------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_runs_decision_cannot_be_forged_by_creating_its_escalation_id_first(
        app: LongTail, transport: str) -> None:
    async with running(app):
        await cast(app)
        async with parties(transport, app, "human-queue", "alice") as c:
            # The run's escalation will be `ord-2:1`: alice makes it in her own role and approves it herself.
            await ok(c["alice"], "escalate_to_human", {"role": "a-team", "message": "ship order ord-2?",
                                                       "escalation_id": "ord-2:1"})
            await ok(c["alice"], "resolve_escalation", {"escalation_id": "ord-2:1", "resolution": {"ship": True}})
        await start_as(app, "bob", "ord-2")  # the run still waits: alice's row is not its escalation
        (mine,) = await inbox.find_escalations(app.db, SYSTEM, workflow_id="ord-2")
        assert mine["id"] != "ord-2:1" and mine["role"] == "b-team" and mine["status"] == "pending"
        carl = await ident.get_principal(app.db, "carl")
        await esc.resolve(app.db, carl, mine["id"], {"ship": False})
        assert await app.handle("ord-2").result(timeout=10) == {"ship": False}, "role b-team decided, not alice"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_workflow_id_someone_else_took_is_a_conflict_not_their_run(app: LongTail, transport: str) -> None:
    async with running(app):
        await cast(app)
        async with parties(transport, app, "workflows", "alice", "bob") as c:
            squat = await ok(c["alice"], "start_workflow", {"name": "order", "workflow_id": "ord-3",
                                                             "input": {"id": "ord-3", "card": "alice's"}})
            assert squat["created"] is True
            text = await refused(c["bob"], "start_workflow", {"name": "order", "workflow_id": "ord-3",
                                                              "input": {"id": "ord-3", "card": "4242"}})
            assert "[conflict]" in text and "already taken" in text and "alice" not in text
            again = await ok(c["alice"], "start_workflow", {"name": "order", "workflow_id": "ord-3",
                                                             "input": {"id": "ord-3", "card": "alice's"}})
            assert again == {"workflow_id": "ord-3", "created": False, "status": again["status"]}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_nobody_takes_the_id_of_anothers_child_run_or_a_cron_tick_first(app: LongTail, transport: str) -> None:
    @app.workflow()
    async def parent(ctx: Context, n: int) -> Any:
        return await ctx.child("child", n)

    @app.workflow()
    async def child(ctx: Context, n: int) -> int:
        return n * 2

    async with running(app):
        await cast(app)
        async with parties(transport, app, "workflows", "alice") as c:
            # bob's run `par-1` will start its child as `par-1/1`; a cron tick runs as `<schedule>@<time>`.
            for squat in ("par-1/1", "nightly@2026-12-07T03:00:00+00:00"):
                text = await refused(c["alice"], "start_workflow", {"name": "child", "workflow_id": squat,
                                                                     "input": 0})
                assert "[invalid_input]" in text and "choose another id" in text
        bob = await ident.get_principal(app.db, "bob")
        await runs.start_run(app.db, bob, "parent", 21, workflow_id="par-1")
        assert await app.handle("par-1").result(timeout=10) == 42, "its child started under its own id"
        assert (await app.get_run("par-1/1"))["parent_id"] == "par-1"


# -- 3. the workflows tools apply one visibility rule ----------------------------------------------------

# actor -> (account, key scope): bob started the run, which asked b-team (carl); alice is unrelated.
ACTORS = {"starter": ("bob", "full"), "starter_read": ("bob", "read"), "asked_role": ("carl", "full"),
          "outsider": ("alice", "full"), "outsider_read": ("alice", "read"), "superadmin": ("admin", "full")}


def expected(actor: str) -> dict[str, str]:
    sees = not actor.startswith("outsider")
    acts = "ok" if sees and not actor.endswith("_read") else ("forbidden" if sees else "not_found")
    if actor == "outsider_read":
        acts = "forbidden"  # the read-scope gate answers before anything is looked up
    return {"get_run": "ok" if sees else "not_found", "export_run": "ok" if sees else "not_found",
            "wait_for_run": "ok" if sees else "not_found", "list_runs": "listed" if sees else "absent",
            "signal_run": acts, "cancel_run": acts}


def outcome(result: Any) -> str:
    if not result.is_error:
        return "ok"
    return result.content[0].text.split("]")[0].lstrip("[")


@pytest.mark.parametrize("actor", list(ACTORS))
async def test_runs_are_visible_to_their_starter_the_roles_they_asked_and_superadmins(
        app: LongTail, actor: str) -> None:
    account, scope = ACTORS[actor]
    async with running(app):
        await cast(app)
        await start_as(app, "bob", "ord-4", card="4242-secret")
        async with http_server(app) as base, session("http", app, "workflows", account, base, scope=scope) as c:
            seen = {}
            for tool in ("get_run", "export_run"):
                result = await c.call_tool(tool, {"workflow_id": "ord-4"})
                seen[tool] = outcome(result)
                assert ("4242-secret" in str(result.content)) == (seen[tool] == "ok")
            seen["wait_for_run"] = outcome(await c.call_tool("wait_for_run", {"workflow_id": "ord-4",
                                                                              "timeout_seconds": 0.1}))
            listed = await ok(c, "list_runs", {})
            seen["list_runs"] = "listed" if "ord-4" in [r["id"] for r in listed["runs"]] else "absent"
            seen["signal_run"] = outcome(await c.call_tool("signal_run", {"workflow_id": "ord-4", "name": "poke"}))
            seen["cancel_run"] = outcome(await c.call_tool("cancel_run", {"workflow_id": "ord-4"}))
        assert seen == expected(actor)
        status = (await app.get_run("ord-4"))["status"]
        assert status == ("cancelled" if seen["cancel_run"] == "ok" else "waiting")


async def test_stdio_as_an_account_and_the_cli_see_only_that_accounts_runs(app: LongTail, dsn: str) -> None:
    import subprocess
    import sys

    async with running(app):
        await cast(app)
        await start_as(app, "bob", "ord-5")
        async with parties("stdio", app, "workflows", "alice", "carl") as c:
            assert "no run" in await refused(c["alice"], "get_run", {"workflow_id": "ord-5"})
            assert "no run" in await refused(c["alice"], "cancel_run", {"workflow_id": "ord-5"})
            assert (await ok(c["carl"], "get_run", {"workflow_id": "ord-5"}))["status"] == "waiting"

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "longtail_mcp", "runs", *args], env={
                "DATABASE_URL": dsn, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)

        listed = await anyio.to_thread.run_sync(lambda: cli("list", "--json", "--as", "alice"))
        assert listed.returncode == 0 and json.loads(listed.stdout) == []
        shown = await anyio.to_thread.run_sync(lambda: cli("show", "ord-5", "--as", "alice"))
        assert shown.returncode != 0 and "no run with id 'ord-5'" in shown.stderr
        as_carl = await anyio.to_thread.run_sync(lambda: cli("export", "ord-5", "--as", "carl"))
        assert json.loads(as_carl.stdout)["run"]["id"] == "ord-5"


async def test_the_python_client_applies_the_same_rule(app: LongTail) -> None:
    async with running(app):
        await cast(app)
        await start_as(app, "bob", "ord-6")
        alice = app.runs(await ident.get_principal(app.db, "alice"))
        bob = app.runs(await ident.get_principal(app.db, "bob"))
        for call in (alice.get("ord-6"), alice.export("ord-6"), alice.signal("ord-6", "x"), alice.cancel("ord-6"),
                     alice.handle("ord-6")):
            with pytest.raises(Exception, match="no run with id 'ord-6'"):
                await call
        assert [r["id"] for r in await alice.list()] == []
        assert [r["id"] for r in await bob.list()] == ["ord-6"]
        assert await bob.cancel("ord-6") == ["ord-6"]


# -- 4. separation of duties -----------------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_nobody_approves_their_own_request_not_even_a_superadmin(app: LongTail, transport: str) -> None:
    async with app:
        await cast(app)
        async with parties(transport, app, "files", "carol", "admin") as c:
            asked = {}
            for who in ("carol", "admin"):
                result = await c[who].call_tool("write_file", {"path": ".env", "content": f"BY={who}\n",
                                                               "request_approval": True})
                assert result.is_error and "Approval requested" in result.content[0].text
                asked[who] = result.meta["io.longtail/error"]["data"]["escalation_id"]  # structured, beside the text
                me = await ident.get_principal(app.db, who)
                with pytest.raises(Exception, match="separation of duties"):
                    await esc.resolve(app.db, me, asked[who], {"approved": True})
                assert (await esc.get_escalation(app.db, SYSTEM, asked[who]))["status"] == "pending"
            dave = await ident.get_principal(app.db, "dave")
            await esc.resolve(app.db, dave, asked["carol"], {"approved": True})
            await ok(c["carol"], "write_file", {"path": ".env", "content": "BY=carol\n", "approval_id": asked["carol"]})
        assert (Path(app.settings.files_dir) / ".env").read_text() == "BY=carol\n"


async def test_the_requester_may_not_resolve_over_mcp_and_a_setting_relaxes_it(app: LongTail, dsn: str) -> None:
    async with app:
        await cast(app)
        async with session("memory", app, "files", "carol") as files, \
                session("memory", app, "human-queue", "carol") as queue:
            asked = await files.call_tool("write_file", {"path": ".env", "content": "X=1\n", "request_approval": True})
            eid = asked.meta["io.longtail/error"]["data"]["escalation_id"]
            text = await refused(queue, "resolve_escalation", {"escalation_id": eid, "resolution": {"approved": True}})
            assert "[forbidden]" in text and "separation of duties" in text
    solo = LongTail(dsn, allow_self_approval=True)  # a single-person install opts in
    async with solo, session("memory", solo, "human-queue", "carol") as queue:
        done = await ok(queue, "resolve_escalation", {"escalation_id": eid, "resolution": {"approved": True}})
        assert done["status"] == "resolved" and done["resolved_by"] == "carol"


async def test_an_approved_statement_runs_as_the_writer_role_not_as_a_superuser(app: LongTail) -> None:
    async with app:
        await cast(app)
        dave = await ident.get_principal(app.db, "dave")
        async with session("memory", app, "db-query", "admin") as c:
            for statement in ("CREATE ROLE lt_evil SUPERUSER LOGIN", "SELECT secret_hash FROM api_key",
                              "DROP TABLE escalation", "DELETE FROM audit",
                              "ALTER ROLE CURRENT_USER SUPERUSER"):
                asked = await c.call_tool("run_sql", {"sql": statement, "request_approval": True})
                eid = asked.meta["io.longtail/error"]["data"]["escalation_id"]
                await esc.resolve(app.db, dave, eid, {"approved": True})
                text = await refused(c, "run_sql", {"sql": statement, "approval_id": eid})
                assert text.startswith("[forbidden] even approved, run_sql runs as the writer role"), text
        assert await sql_one(app.db, "SELECT 1 FROM pg_roles WHERE rolname = 'lt_evil'") is None
        assert await sql_one(app.db, "SELECT to_regclass('escalation') IS NOT NULL AS t") == {"t": True}
        assert (await sql_one(app.db, "SELECT count(*) AS n FROM audit"))["n"] > 0


# -- 5. registered servers ---------------------------------------------------------------------------------

async def test_a_registered_server_gets_no_secrets_and_only_granted_accounts_call_it(
        app: LongTail, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from longtail_mcp.mcp_glue.server import fixed_principal
    from longtail_mcp.tools import registry
    from system_servers import gateway
    from tests.servers.test_registry import ROOT

    monkeypatch.setenv("LONGTAIL_ADMIN_KEY", "ltk_abc_secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:secret@db/app")
    async with app:
        await cast(app)
        command = [sys.executable, "-m", "tests.apps.echo_server", "--token", "t0ps3cret"]
        await registry.register_server(app.db, SYSTEM, "echo", command=command,
                                       env={"PYTHONPATH": str(ROOT), "ECHO_TOKEN": "v"}, tags=["testing"])

        async def as_(who: str, scope: str = "full") -> McpClient:
            principal = await ident.get_principal(app.db, who, scope=scope)
            return McpClient(gateway(app, fixed_principal(principal)))

        async with await as_("admin") as c:
            names = (await ok(c, "echo__environ", {}))["result"]
            assert "ECHO_TOKEN" in names and "PATH" in names
            assert not {"DATABASE_URL", "LONGTAIL_ADMIN_KEY"} & set(names), "the server's secrets stay with it"
            (echo,) = [s for s in (await ok(c, "list_mcp_servers", {}))["servers"] if s["name"] == "echo"]
            assert echo["env_keys"] == ["ECHO_TOKEN", "PYTHONPATH"] and "v" not in json.dumps(echo["env_keys"])
        async with await as_("alice") as c:
            assert not [t for t in (await c.list_tools()).tools if t.name.startswith("echo__")]
            assert "may not call" in await refused(c, "echo__echo", {"text": "hi"})
            (echo,) = [s for s in (await ok(c, "list_mcp_servers", {}))["servers"] if s["name"] == "echo"]
            assert echo["command"] is None and echo["env_keys"] == [] and "t0ps3cret" not in json.dumps(echo)
        await registry.register_server(app.db, SYSTEM, "echo", command=command, env={"PYTHONPATH": str(ROOT)},
                                       access_roles=["a-team"])
        async with await as_("alice") as c:
            assert (await ok(c, "echo__echo", {"text": "hi"}))["result"] == "hi"
        async with await as_("alice", "read") as c:
            assert "read-scope" in await refused(c, "echo__echo", {"text": "hi"})
        async with await as_("bob") as c:
            assert "may not call" in await refused(c, "echo__add", {"a": 1, "b": 2})
        secrets = await sql_one(app.db, "SELECT env FROM mcp_server_secret WHERE server = 'echo'")
        assert secrets == {"env": {"PYTHONPATH": str(ROOT)}}
        async with session("memory", app, "db-query", "admin") as c:
            text = await refused(c, "run_sql", {"sql": "SELECT env FROM mcp_server_secret"})
            assert "permission denied" in text


# -- 6. every route, sessions, sizes, ids ----------------------------------------------------------------------

async def test_every_route_checks_host_and_origin_and_events_need_a_key(app: LongTail) -> None:
    async with app:
        await cast(app)
        key = (await ident.create_key(app.db, SYSTEM, "alice", scope="read"))["key"]
        async with http_server(app) as base, httpx2.AsyncClient(base_url=base, timeout=10) as http:
            for path in ("/health", "/events", "/mcp"):
                rebound = await http.get(path, headers={"Host": "evil.example:80", "Authorization": f"Bearer {key}"})
                assert rebound.status_code == 421, path
                foreign = await http.get(path, headers={"Origin": "http://evil.example",
                                                        "Authorization": f"Bearer {key}"})
                assert foreign.status_code == 403, path
            anonymous = await http.get("/events")
            assert anonymous.status_code == 401 and "API key" in anonymous.json()["error"]
            assert (await http.get("/health")).status_code in (200, 503)


async def events_until_a_file(base: str, key: str, started: anyio.Event) -> list[dict[str, Any]]:
    """Events a subscriber with `key` receives, until the first file event (which every key may see)."""
    seen: list[dict[str, Any]] = []
    async with httpx2.AsyncClient(base_url=base, timeout=20, headers={"Authorization": f"Bearer {key}"}) as http, \
            http.stream("GET", "/events") as resp:
        assert resp.status_code == 200
        with anyio.fail_after(20):
            async for line in resp.aiter_lines():
                if line == "event: ready":
                    started.set()
                if line.startswith("data:") and '"type"' in line:
                    seen.append(json.loads(line[5:]))
                    if seen[-1]["type"].startswith("file."):
                        return seen
    return seen


async def test_each_events_subscriber_gets_only_events_about_what_it_may_see(app: LongTail) -> None:
    @app.workflow()
    async def hello(ctx: Context, name: str) -> str:
        return f"hello {name}"

    async with running(app):
        await cast(app)
        keys = {who: (await ident.create_key(app.db, SYSTEM, who, scope="read"))["key"]
                for who in ("alice", "carl", "admin")}
        alice, bob = [await ident.get_principal(app.db, w) for w in ("alice", "bob")]
        async with http_server(app) as base, anyio.create_task_group() as tg:
            got: dict[str, list[dict[str, Any]]] = {}
            ready = {who: anyio.Event() for who in keys}

            async def watch(who: str) -> None:
                got[who] = await events_until_a_file(base, keys[who], ready[who])

            for who in keys:
                tg.start_soon(watch, who)
            for event in ready.values():
                await event.wait()
            await runs.start_run(app.db, bob, "order", {"id": "b-1", "card": "4242"}, workflow_id="b-1")
            await runs.start_run(app.db, bob, "hello", "bob", workflow_id="b-2")
            await runs.start_run(app.db, alice, "hello", "alice", workflow_id="a-1")
            for wid in ("b-2", "a-1"):
                await app.handle(wid).result(timeout=10)
            await wait_status(app.handle("b-1"), "waiting")
            async with session("memory", app, "files") as files:  # the end marker: a file event
                await ok(files, "write_file", {"path": "done.txt", "content": "."})
        ids = {who: {e.get("workflow_id") for e in events if "workflow_id" in e} for who, events in got.items()}
        assert ids["alice"] == {"a-1"}, "alice sees her own run only"
        assert ids["carl"] == {"b-1"}, "carl sees the run that asked his role (from its escalation on)"
        assert ids["admin"] == {"a-1", "b-1", "b-2"}
        assert any(e["type"] == "escalation.created" for e in got["carl"])


async def test_a_session_is_bound_to_the_key_that_opened_it(app: LongTail) -> None:
    async with app:
        await cast(app)
        alice = (await ident.create_key(app.db, SYSTEM, "alice"))["key"]
        bob = (await ident.create_key(app.db, SYSTEM, "bob"))["key"]
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        async with http_server(app) as base, httpx2.AsyncClient(base_url=base, timeout=10) as http:
            opened = await http.post("/mcp", json=init, headers={**headers, "Authorization": f"Bearer {alice}"})
            sid = opened.headers["mcp-session-id"]
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            stolen = await http.post("/mcp", json=listing, headers={
                **headers, "Authorization": f"Bearer {bob}", "mcp-session-id": sid})
            assert stolen.status_code == 404
            deleted = await http.delete("/mcp", headers={**headers, "Authorization": f"Bearer {bob}",
                                                         "mcp-session-id": sid})
            assert deleted.status_code == 404
            own = await http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                                  headers={**headers, "Authorization": f"Bearer {alice}", "mcp-session-id": sid})
            assert own.status_code == 202, "the key that opened it still uses it"

            async with http.stream("GET", "/sse", headers={"Authorization": f"Bearer {alice}"}) as sse:
                endpoint = ""
                async for line in sse.aiter_lines():
                    if line.startswith("data:"):
                        endpoint = line[5:].strip()
                        break
                hijack = await http.post(endpoint, json=listing, headers={"Authorization": f"Bearer {bob}"})
                assert hijack.status_code == 404, "an SSE session's messages come only from its own key"


async def test_escalation_sizes_are_bounded_and_listings_page(app: LongTail) -> None:
    async with app:
        await cast(app)
        async with session("memory", app, "human-queue", "bob") as c:
            huge = await refused(c, "escalate_to_human", {"role": "b-team", "message": "m",
                                                          "data": {"blob": "x" * 70_000}})
            assert "[invalid_input]" in huge and "limit is 65,536" in huge
            assert await inbox.find_escalations(app.db, SYSTEM) == []
            for i in range(12):
                await ok(c, "escalate_to_human", {"role": "b-team", "message": f"item {i}",
                                                  "data": {"blob": "x" * 60_000}})
            first = await ok(c, "get_available_work", {"limit": 50})
            assert len(json.dumps(first)) < 1024 * 1024 and first["next_offset"] == len(first["escalations"])
            rest = await ok(c, "get_available_work", {"limit": 50, "offset": first["next_offset"]})
            assert rest["next_offset"] is None
            ids = [e["id"] for e in first["escalations"] + rest["escalations"]]
            assert len(ids) == len(set(ids)) == 12


async def test_escalation_ids_refuse_control_and_bidi_characters_and_the_cli_escapes(
        app: LongTail, dsn: str) -> None:
    import subprocess
    import sys

    async with app:
        await cast(app)
        async with session("memory", app, "human-queue", "bob") as c:
            for bad in ("exe\u202egnp", "a\x1b[31mred", "line\nbreak", "zero\u200bwidth"):
                text = await refused(c, "escalate_to_human", {"role": "b-team", "message": "m", "escalation_id": bad})
                assert "printable" in text
            await ok(c, "escalate_to_human", {"role": "b-team", "message": "invoice\u202efdp.exe\x1b[2J"})
        out = await anyio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "longtail_mcp", "escalations", "list"], env={"DATABASE_URL": dsn,
                                                                             "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60))
        assert out.returncode == 0, out.stderr
        assert "\u202e" not in out.stdout and "\x1b" not in out.stdout and "\\u202e" in out.stdout


async def test_an_open_events_stream_ends_when_its_key_is_revoked(
        app: LongTail) -> None:
    """Checked when the stream opens and again while it is open (humans.runs.EventAudience's recheck), with the
    key cache's delay (KEY_CACHE_SECONDS) at most: not only at the next connection."""
    async with running(app):
        await cast(app)
        made = await ident.create_key(app.db, SYSTEM, "carl", scope="read")
        lines: list[str] = []
        ready, ended = anyio.Event(), anyio.Event()

        async def watch(base: str) -> None:
            async with httpx2.AsyncClient(base_url=base, timeout=30,
                                          headers={"Authorization": f"Bearer {made['key']}"}) as http, \
                    http.stream("GET", "/events") as resp:
                assert resp.status_code == 200
                async for line in resp.aiter_lines():
                    lines.append(line)
                    if line == "event: ready":
                        ready.set()
            ended.set()  # the server closed the stream

        async with http_server(app) as base, anyio.create_task_group() as tg:
            tg.start_soon(watch, base)
            with anyio.fail_after(30):
                await ready.wait()
                await ident.revoke_key(app.db, SYSTEM, made["id"])
                async with session("memory", app, "files") as files:
                    n = 0
                    while not ended.is_set():  # file events reach every key: one each 0.2 s until it ends
                        n += 1
                        await ok(files, "write_file", {"path": f"f{n}.txt", "content": "."})
                        with anyio.move_on_after(0.2):
                            await ended.wait()
        assert "event: ended" in lines and "this API key was revoked" in lines[lines.index("event: ended") + 1]
        assert lines.index("event: ended") == max(i for i, line in enumerate(lines) if line.startswith("event:")), \
            "nothing is sent after `ended`"

"""The JSON API at /api/v1, over real HTTP (uvicorn on 127.0.0.1), as a backend that is not an MCP client uses it.

Accounts: bob (role b-team) starts runs, whose `order` asks b-team; carl is another b-team member; alice
(a-team) is an outsider. Every response of every test is checked against the served OpenAPI document.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from longtail_mcp import Context, LongTail
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.web.api import ENDPOINTS
from tests.conftest import running
from tests.humans.helpers import teams
from tests.runtime.helpers import wait_status
from tests.servers.sessions import http_server

pytestmark = pytest.mark.anyio
FORM = {"type": "object", "required": ["ship"], "properties": {"ship": {"type": "boolean"}}}


@pytest.fixture
def app(dsn: str) -> LongTail:
    app = LongTail(dsn, poll_seconds=0.2, lease_seconds=5)

    @app.workflow()
    async def echo(ctx: Context, value: Any) -> Any:
        return value

    @app.workflow()
    async def waiter(ctx: Context, value: Any) -> dict[str, Any]:
        return {"value": value, "got": await ctx.wait_for_signal("go")}

    @app.workflow()
    async def order(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
        return await ctx.escalate("b-team", f"ship order {order['id']}?", {"card": order["card"]})

    return app


async def cast(app: LongTail) -> dict[str, str]:
    """The accounts, b-team's resolution form, and keys: `bob`, `carl`, `alice` (full) and `bob_read`."""
    await teams(app.db)
    await ident.add_form(app.db, SYSTEM, "b-team", FORM)
    keys = {who: (await ident.create_key(app.db, SYSTEM, who))["key"] for who in ("alice", "bob", "carl")}
    keys["bob_read"] = (await ident.create_key(app.db, SYSTEM, "bob", scope="read"))["key"]
    return keys


def documented(doc: dict[str, Any], response: httpx2.Response) -> dict[str, Any]:
    """The schema the document gives for this response: its operation's, by status (an unknown path or
    method answers the error shape)."""
    method = response.request.method.lower()
    segments = response.request.url.raw_path.decode().split("?")[0].removeprefix("/api/v1/").split("/")
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for template, operations in doc["paths"].items():
        parts = template.strip("/").split("/")
        if len(parts) == len(segments) and all(p[0] == "{" or p == s for p, s in zip(parts, segments, strict=True)):
            if method not in operations:
                assert response.status_code in (401, 405)  # the key is checked first
                return error
            answers = operations[method]["responses"]
            assert str(response.status_code) in answers, f"{method} {template}: {response.status_code} undocumented"
            answer = answers[str(response.status_code)]
            if "$ref" in answer:
                answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
            return answer["content"]["application/json"]["schema"]  # type: ignore[no-any-return]
    assert response.status_code in (401, 404)
    return error


@asynccontextmanager
async def api(base: str, key: str | None = None) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of /api/v1 with `key`, which checks every response against /api/v1/openapi.json."""
    async with httpx2.AsyncClient() as plain:
        doc = (await plain.get(f"{base}/api/v1/openapi.json")).json()

    async def conforms(response: httpx2.Response) -> None:
        await response.aread()
        assert response.headers["content-type"] == "application/json"
        schema = documented(doc, response)
        Draft202012Validator({**schema, "components": doc["components"]}).validate(response.json())

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(base_url=f"{base}/api/v1", headers=headers, timeout=30,
                                  event_hooks={"response": [conforms]}) as http:
        yield http


async def start_order(app: LongTail, http: httpx2.AsyncClient, wid: str) -> None:
    """Start an `order` run through the API and wait until it waits for b-team."""
    started = await http.post("/runs", json={"name": "order", "workflow_id": wid, "input": {"id": wid, "card": "1"}})
    assert started.status_code == 201, started.text
    await wait_status(app.handle(wid), "waiting")


def error(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


async def test_the_openapi_document_is_public_valid_and_names_each_tool(app: LongTail) -> None:
    async with app, http_server(app) as base, httpx2.AsyncClient() as http:
        response = await http.get(f"{base}/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    validate_spec(doc)
    operations = {op["operationId"]: (method.upper(), path) for path, ops in doc["paths"].items()
                  for method, op in ops.items()}
    for endpoint in ENDPOINTS:
        assert operations[endpoint.tool.name] == (endpoint.method, endpoint.path)
        assert (endpoint.method == "GET") == endpoint.tool.read_only, "a read key may GET, and only GET"
    assert doc["paths"]["/openapi.json"]["get"]["security"] == [] and doc["security"] == [{"bearerAuth": []}]


async def test_a_run_is_started_read_listed_signalled_and_exported(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["bob"]) as bob:
            started = await bob.post("/runs", json={"name": "waiter", "input": 7})
            assert started.status_code == 201 and started.json()["created"] is True
            wid = started.json()["workflow_id"]
            await wait_status(app.handle(wid), "waiting")
            run = (await bob.get(f"/runs/{wid}")).json()
            assert run["status"] == "waiting" and run["waiting_for"] == "signal:go" and run["input"] == 7
            listed = await bob.get("/runs", params={"name": "waiter", "limit": 5})
            assert [r["id"] for r in listed.json()["runs"]] == [wid] and listed.json()["next_offset"] is None

            signalled = await bob.post(f"/runs/{wid}/signal", json={"name": "go", "payload": {"ok": True}})
            assert signalled.json() == {"delivered": True}
            assert await app.handle(wid).result(timeout=10) == {"value": 7, "got": {"ok": True}}
            done = (await bob.get(f"/runs/{wid}")).json()
            assert done["status"] == "completed" and done["result"] == {"value": 7, "got": {"ok": True}}
            history = (await bob.get(f"/runs/{wid}/export")).json()
            assert history["run"]["principal"]["id"] == "bob", "the run acts for the key's account"
            assert [s["name"] for s in history["signals"]] == ["go"]
            completed = await bob.get("/runs", params={"status": "completed"})
            assert [r["id"] for r in completed.json()["runs"]] == [wid]
            assert (await bob.get("/workflow-types")).status_code == 200


async def test_starting_again_with_a_workflow_id_answers_the_first_run(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["bob"]) as bob, api(base, keys["alice"]) as alice:
            first = await bob.post("/runs", json={"name": "echo", "input": 1, "workflow_id": "batch 7"})
            again = await bob.post("/runs", json={"name": "echo", "input": 2, "workflow_id": "batch 7"})
            assert (first.status_code, first.json()["created"]) == (201, True)
            assert (again.status_code, again.json()["created"]) == (200, False)
            assert first.headers["location"] == again.headers["location"] == "/api/v1/runs/batch%207"
            assert await app.handle("batch 7").result(timeout=10) == 1
            followed = await bob.get(httpx2.URL(base).join(first.headers["location"]))
            assert followed.json()["id"] == "batch 7", "Location names the run"
            # Percent-encoded, the id is one path segment.
            assert (await bob.get(f"/runs/{quote('batch 7', safe='')}")).json()["result"] == 1
            assert (await bob.get(f"/runs/{quote('batch 7', safe='')}/export")).json()["run"]["input"] == 1
            taken = error(await alice.post("/runs", json={"name": "echo", "workflow_id": "batch 7"}), 409)
            assert taken["code"] == "conflict" and "bob" not in taken["message"]
            # The forms the runtime gives child runs and cron ticks are not for callers to take first.
            for reserved in ("batch 7/1", "nightly@2026-12-07T03:00:00+00:00"):
                refused = error(await alice.post("/runs", json={"name": "echo", "workflow_id": reserved}), 400)
                assert refused["code"] == "invalid_input" and "choose another id" in refused["message"]


async def test_an_unknown_workflow_type_is_a_400_naming_the_known_types(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["bob"]) as bob:
            refused = error(await bob.post("/runs", json={"name": "nope", "input": 1}), 400)
            assert refused["code"] == "invalid_input" and "'nope'" in refused["message"]
            assert all(name in refused["message"].split("known types: ")[1] for name in ("echo", "order", "waiter"))
            assert (await bob.get("/runs")).json()["runs"] == []


async def test_cancel_stops_a_waiting_run_once(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["bob"]) as bob:
            wid = (await bob.post("/runs", json={"name": "waiter", "workflow_id": "w-1"})).json()["workflow_id"]
            await wait_status(app.handle(wid), "waiting")
            cancelled = await bob.post(f"/runs/{wid}/cancel", json={"reason": "not needed"})
            assert cancelled.json() == {"cancelled": ["w-1"]}
            assert (await bob.get("/runs/w-1")).json()["status"] == "cancelled"
            assert error(await bob.post("/runs/w-1/cancel"), 409)["code"] == "conflict"  # no body: no reason
            assert error(await bob.post("/runs/w-1/signal", json={"name": "go"}), 409)["code"] == "conflict"


async def test_a_run_is_invisible_to_an_outsider_and_a_read_key_only_reads(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["bob"]) as bob:
            await bob.post("/runs", json={"name": "order", "workflow_id": "ord-1",
                                          "input": {"id": "ord-1", "card": "4242-secret"}})
        await wait_status(app.handle("ord-1"), "waiting")
        async with api(base, keys["alice"]) as alice:
            for response in (await alice.get("/runs/ord-1"), await alice.get("/runs/ord-1/export"),
                             await alice.post("/runs/ord-1/signal", json={"name": "go"}),
                             await alice.post("/runs/ord-1/cancel")):
                assert error(response, 404)["message"] == "no run with id 'ord-1'"
                assert "4242" not in response.text
            assert (await alice.get("/runs")).json()["runs"] == []
        async with api(base, keys["carl"]) as carl:  # the run asked carl's role
            assert (await carl.get("/runs/ord-1")).json()["input"]["card"] == "4242-secret"
        async with api(base, keys["bob_read"]) as reader:
            assert (await reader.get("/runs/ord-1")).status_code == 200
            assert [r["id"] for r in (await reader.get("/runs")).json()["runs"]] == ["ord-1"]
            for response in (await reader.post("/runs/ord-1/cancel"), await reader.post("/runs", json={"name": "echo"}),
                             await reader.post("/runs/ord-1/signal", json={"name": "go"})):
                assert "read scope" in error(response, 403)["message"]
        assert (await app.get_run("ord-1"))["status"] == "waiting"
        assert [r["id"] for r in await app.list_runs()] == ["ord-1"], "nothing was started"


async def test_no_key_or_a_bad_key_is_a_401_in_the_error_shape(app: LongTail) -> None:
    async with app, http_server(app) as base:
        keys = await cast(app)
        for key in (None, "ltk_nope_nope", keys["bob"] + "x"):
            async with api(base, key) as http:
                for response in (await http.get("/runs"), await http.post("/runs", json={"name": "echo"}),
                                 await http.get("/nope")):
                    assert error(response, 401)["code"] == "unauthenticated"
                    assert response.headers["www-authenticate"] == "Bearer"
        async with api(base) as http:
            basic = await http.get("/runs", headers={"Authorization": "Basic Ym9iOmJvYg=="})
            assert "Bearer" in error(basic, 401)["message"]
        assert await app.list_runs() == []


async def test_an_escalation_is_listed_claimed_resolved_against_its_form_and_the_run_goes_on(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["bob"]) as bob, api(base, keys["carl"]) as carl:
            await start_order(app, bob, "ord-2")
            (asked,) = (await carl.get("/escalations", params={"role": "b-team"})).json()["escalations"]
            eid = asked["id"]
            assert asked["workflow_id"] == "ord-2" and asked["form_schema"] == FORM
            assert (await carl.get(f"/escalations/{quote(eid, safe='')}")).json()["message"] == "ship order ord-2?"

            claimed = (await carl.post(f"/escalations/{eid}/claim", json={"minutes": 5})).json()
            assert claimed["assigned_to"] == "carl"
            assert [e["id"] for e in (await carl.get("/claims")).json()["escalations"]] == [eid]
            assert (await carl.get("/claims", params={"type": "approval", "sort": "oldest"})).json()[
                "escalations"] == [], "the tool's filters, as query parameters"
            assert "sort" in error(await carl.get("/claims", params={"sort": "urgent"}), 400)["message"]
            held = error(await bob.post(f"/escalations/{eid}/claim"), 409)
            assert "carl" in held["message"]

            wrong = error(await carl.post(f"/escalations/{eid}/resolve", json={"resolution": {"ship": "yes"}}), 400)
            assert wrong["data"]["errors"] == [{"field": "resolution.ship",
                                                "message": "'yes' is not of type 'boolean'"}]
            missing = error(await carl.post(f"/escalations/{eid}/resolve", json={"resolution": {}}), 400)
            assert [e["field"] for e in missing["data"]["errors"]] == ["resolution.ship"]
            still = (await carl.get(f"/escalations/{eid}")).json()
            assert (still["status"], still["assigned_to"]) == ("pending", "carl"), "a rejected decision changes nothing"

            resolved = await carl.post(f"/escalations/{eid}/resolve", json={"resolution": {"ship": True},
                                                                            "reason": "checked"})
            assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_by"] == "carl"
            assert await app.handle("ord-2").result(timeout=10) == {"ship": True}
            assert error(await carl.post(f"/escalations/{eid}/resolve", json={"resolution": {"ship": False}}),
                         409)["code"] == "conflict"


async def test_a_claim_is_released_and_others_cannot_touch_another_roles_escalation(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["alice"]) as alice, api(base, keys["carl"]) as carl, \
                api(base, keys["bob_read"]) as reader:
            await start_order(app, alice, "ord-3")
            (asked,) = (await carl.get("/escalations")).json()["escalations"]
            eid = asked["id"]
            assert (await carl.post(f"/escalations/{eid}/claim")).json()["assigned_to"] == "carl"
            released = await carl.post(f"/escalations/{eid}/release")
            assert released.status_code == 200 and released.json()["assigned_to"] is None
            assert error(await carl.post(f"/escalations/{eid}/release"), 409)["code"] == "conflict"

            # alice asked (her run did), so she may follow it, but not decide for role b-team.
            assert (await alice.get("/escalations")).json()["escalations"] == []
            assert (await alice.get(f"/escalations/{eid}")).json()["status"] == "pending"
            for action in ("claim", "resolve"):
                body = {"resolution": {"ship": True}} if action == "resolve" else {}
                refused = error(await alice.post(f"/escalations/{eid}/{action}", json=body), 403)
                assert "not a member of role 'b-team'" in refused["message"]
            assert "read scope" in error(await reader.post(f"/escalations/{eid}/claim"), 403)["message"]
        async with api(base, keys["bob"]) as bob:
            await start_order(app, bob, "ord-4")
            theirs = [e for e in (await bob.get("/escalations")).json()["escalations"] if e["workflow_id"] == "ord-4"]
        async with api(base, keys["alice"]) as alice:
            assert error(await alice.get(f"/escalations/{theirs[0]['id']}"), 404)["code"] == "not_found"
            assert error(await alice.post(f"/escalations/{theirs[0]['id']}/claim"), 404)["code"] == "not_found"
        assert (await app.get_run("ord-3"))["status"] == "waiting"


async def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["bob"]) as bob:
            for content, kind in ((b"{not json", "application/json"), (b"[1, 2]", "application/json"),
                                  (b'{"name": "echo", "input": NaN}', "application/json"),
                                  (b'{"name": "echo"}', "text/plain"), (b"\xff\xfe", "application/json")):
                refused = error(await bob.post("/runs", content=content, headers={"Content-Type": kind}), 400)
                assert refused["code"] == "invalid_input"
            fields = {
                "bogus": await bob.post("/runs", json={"name": "echo", "bogus": 1}),
                "name": await bob.post("/runs", json={"input": 1}),
                "limit": await bob.get("/runs", params={"limit": 0}),
                "workflow_id": await bob.post("/runs/x/signal", json={"name": "go", "workflow_id": "y"}),
                "resolution": await bob.post("/escalations/e-1/resolve", json={"resolution": "yes"}),
            }
            for field, response in fields.items():
                assert field in [e["field"] for e in error(response, 400)["data"]["errors"]], field
            assert "query" in error(await bob.post("/runs?name=echo", json={"name": "echo"}), 400)["message"]
            assert (await bob.get("/runs")).json()["runs"] == []
        assert await app.list_runs() == []


async def test_unknown_paths_and_methods_answer_in_json(app: LongTail) -> None:
    async with app, http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["bob"]) as bob:
            assert error(await bob.get("/nope"), 404)["code"] == "not_found"
            assert error(await bob.get("/runs/a/b/c"), 404)["code"] == "not_found"
            wrong = await bob.delete("/runs")
            assert error(wrong, 405)["code"] == "method_not_allowed" and wrong.headers["allow"] == "GET, POST"


async def test_dev_mode_on_loopback_acts_as_the_local_operator(app: LongTail) -> None:
    async with running(app), http_server(app, dev=True) as base, api(base) as local:
        started = await local.post("/runs", json={"name": "echo", "input": "dev"})
        assert started.status_code == 201
        assert await app.handle(started.json()["workflow_id"]).result(timeout=10) == "dev"
        assert (await app.get_run(started.json()["workflow_id"]))["principal"]["id"] == "system"


async def test_a_backend_asks_a_role_reroutes_reads_the_history_cancels_and_waits_for_a_run(app: LongTail) -> None:
    async with running(app), http_server(app) as base:
        keys = await cast(app)
        async with api(base, keys["bob"]) as bob, api(base, keys["alice"]) as alice:
            asked = await bob.post("/escalations", json={"role": "b-team", "message": "refund 40 EUR?",
                                                         "escalation_id": "refund-9", "type": "refund"})
            assert asked.status_code == 201 and asked.headers["location"] == "/api/v1/escalations/refund-9"
            assert (await bob.post("/escalations", json={"role": "b-team", "message": "refund 40 EUR?",
                                                          "escalation_id": "refund-9", "type": "refund"})).json()[
                "created_at"] == asked.json()["created_at"], "the same request again answers the first"
            listed = await bob.get("/escalations", params={"type": "refund"})
            assert [e["id"] for e in listed.json()["escalations"]] == ["refund-9"]
            assert error(await alice.get("/escalations/refund-9"), 404)["code"] == "not_found"

            moved = await bob.post("/escalations/refund-9/reroute", json={"role": "a-team", "reason": "theirs"})
            assert moved.status_code == 200 and moved.json()["role"] == "a-team"
            assert (await alice.get("/escalations/refund-9")).json()["role"] == "a-team", "now alice's role's"
            gone = await alice.post("/escalations/refund-9/cancel", json={"reason": "refunded by hand"})
            assert gone.json()["status"] == "cancelled"
            history = (await alice.get("/escalations/refund-9/history")).json()
            assert [(e["action"], e["actor"], e["reason"]) for e in history["history"]] == [
                ("escalation.create", "bob", None), ("escalation.reroute", "bob", "theirs"),
                ("escalation.cancel", "alice", "refunded by hand")]
            assert "role" in error(await alice.post("/escalations/refund-9/reroute", json={}), 400)["message"]

            started = await bob.post("/runs", json={"name": "waiter", "input": 1, "workflow_id": "w-api"})
            short = (await bob.get("/runs/w-api/wait", params={"timeout_seconds": 0.2})).json()
            assert short["done"] is False and short["run"]["status"] in ("pending", "running", "waiting")
            await wait_status(app.handle("w-api"), "waiting")
            await bob.post("/runs/w-api/signal", json={"name": "go", "payload": 2})
            waited = (await bob.get(started.headers["location"].removeprefix("/api/v1") + "/wait")).json()
            assert waited["done"] is True and waited["run"]["result"] == {"value": 1, "got": 2}
            assert "timeout_seconds" in error(await bob.get("/runs/w-api/wait", params={"timeout_seconds": 99}),
                                              400)["message"]

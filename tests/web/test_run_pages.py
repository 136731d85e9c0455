"""The web view's runs and servers pages, over real HTTP (uvicorn on 127.0.0.1) with a cookie-keeping client.

Cast: rita and ray review (role `reviewers`); lena is in `legal` only; admin is the superadmin. Runs of `note`
keep their text in the entity state (and wait for a signal when it is `wait`); runs of `order` charge (the
first attempt fails), try a gift wrap that fails for good, call a tool, start a `pack` child and ask the
reviewers whether to ship.
"""

import contextlib
import json
import re
from typing import Any
from urllib.parse import quote

import anyio
import httpx2
import pytest

from longtail_mcp import Context, LongTail, StepFailed
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.web import run_pages
from system_servers import publish_manifests
from system_servers.workflows import server as workflows
from tests.conftest import running
from tests.runtime.helpers import until, wait_status
from tests.servers.sessions import http_server
from tests.servers.test_registry import register_echo
from tests.web.test_pages import browser, check_page, page, sign_in

pytestmark = pytest.mark.anyio


@pytest.fixture
def app(dsn: str) -> LongTail:
    app = LongTail(dsn, poll_seconds=0.2, lease_seconds=5)
    tries: dict[str, int] = {}

    @app.step(retries=3, backoff=0)
    async def charge(order_id: str) -> dict[str, str]:
        tries[order_id] = tries.get(order_id, 0) + 1
        if tries[order_id] == 1:
            raise ConnectionError("card network busy")
        return {"receipt": f"r-{order_id}"}

    @app.step(retries=1)
    async def gift_wrap(order_id: str) -> None:
        raise RuntimeError("out of ribbon")

    @app.workflow()
    async def pack(ctx: Context, order_id: str) -> dict[str, str]:
        return {"box": f"box-{order_id}"}

    @app.workflow()
    async def order(ctx: Context, order_id: str) -> dict[str, Any]:
        await ctx.state.merge({"order": order_id, "stage": "charging"})
        receipt = await ctx.run(charge, order_id)
        with contextlib.suppress(StepFailed):  # the run goes on without a gift wrap
            await ctx.run(gift_wrap, order_id)
        seen = await ctx.call_tool("workflows/get_run", {"workflow_id": ctx.workflow_id})
        box = await ctx.child("pack", order_id)
        await ctx.state.set("stage", "review")
        decision = await ctx.escalate("reviewers", f"ship order {order_id}?", {"order": order_id})
        await ctx.state.set("stage", "shipped")
        return {**receipt, **box, "seen": seen["status"], "decision": decision}

    @app.workflow()
    async def note(ctx: Context, text: str) -> str:
        await ctx.state.merge({"text": text})
        if text == "wait":
            await ctx.wait_for_signal("go")
        return text

    return app


async def cast(app: LongTail) -> dict[str, str]:
    """Roles, people and a full key each."""
    await ident.ensure_admin(app.db)
    for role in ("reviewers", "legal"):
        await ident.create_role(app.db, SYSTEM, role)
    for who, role in (("rita", "reviewers"), ("ray", "reviewers"), ("lena", "legal")):
        await ident.create_account(app.db, SYSTEM, who)
        await ident.set_membership(app.db, SYSTEM, role, who)
    return {who: (await ident.create_key(app.db, SYSTEM, who))["key"] for who in ("rita", "ray", "lena", "admin")}


async def as_(app: LongTail, who: str) -> Principal:
    return await ident.get_principal(app.db, who)


async def start(app: LongTail, who: str, name: str, arg: str, workflow_id: str, status: str) -> str:
    handle = await app.runs(await as_(app, who)).start(name, arg, workflow_id=workflow_id)
    await wait_status(handle, status)
    return workflow_id


async def at_the_review(app: LongTail, workflow_id: str) -> Any:
    """The export of an `order` run once it waits for its reviewer ("waiting" is also its wait for the child;
    and the escalation's journal row comes a transaction before the run's status says "waiting")."""
    rita = app.runs(await as_(app, "rita"))

    async def asked() -> Any:
        history = await rita.export(workflow_id)
        at_review = any(s.kind == "escalation" for s in history.steps) and history.run.status == "waiting"
        return history if at_review else None

    return await until(asked, within=20)


def run_url(workflow_id: str, part: str = "") -> str:
    return f"/runs/{quote(workflow_id, safe='')}" + (f"/{part}" if part else "")


def listed(html: str) -> list[str]:
    """The run ids a runs list shows."""
    table = page(html).find("table")
    return [a.get_text(strip=True) for a in table.select("tbody tr td:first-child > a")] if table else []


def step(html: str, seq: int) -> Any:
    found = page(html).find(id=f"step-{seq}")
    assert found is not None, f"journal entry {seq} is on the page"
    return found


# -- the runs list ------------------------------------------------------------------------------------------

async def test_the_runs_list_filters_by_status_and_finds_runs_by_type_id_and_entity_state(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        await start(app, "rita", "note", "apples", "note-a", "completed")
        await start(app, "rita", "note", "wait", "note-b", "waiting")
        await start(app, "lena", "note", "lena's", "note-l", "completed")
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["rita"])
            everything = await http.get("/runs")
            assert everything.status_code == 200
            check_page(everything.text)
            assert listed(everything.text) == ["note-b", "note-a"], "newest first, and not lena's run"
            waiting = quote('$.text ? (@ == "wait")')
            apples = quote(json.dumps({"text": "apples"}))
            searches = {
                "?status=waiting": ["note-b"],
                "?status=completed": ["note-a"],
                "?name=note": ["note-b", "note-a"],
                "?name=order": [],
                "?id=note-a": ["note-a"],
                "?id=note-l": [],
                "?id=note-a&status=waiting": [],
                f"?state={apples}": ["note-a"],
                f"?path={waiting}": ["note-b"],
                f"?path={waiting}&status=completed": [],
            }
            for query, expected in searches.items():
                shown = await http.get(f"/runs{query}")
                assert shown.status_code == 200, (query, shown.text)
                assert listed(shown.text) == expected, query
            assert "No run with that id that you may see." in (await http.get("/runs?id=note-l")).text
            bad = await http.get("/runs?state=apples")
            assert bad.status_code == 400 and "JSON object" in page(bad.text).find(class_="error").get_text()
            chosen = page((await http.get("/runs?status=waiting&name=note")).text)
            assert chosen.find("option", selected=True)["value"] == "waiting"
            assert chosen.find(id="runs-name")["value"] == "note"


async def test_the_runs_list_pages_through_older_runs(app: LongTail, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_pages, "PAGE", 2)
    async with running(app):
        keys = await cast(app)
        for n in range(3):
            await start(app, "rita", "note", f"n{n}", f"note-{n}", "completed")
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["rita"])
            first = await http.get("/runs")
            assert listed(first.text) == ["note-2", "note-1"]
            older = page(first.text).find("a", rel="next")
            second = await http.get(older["href"])
            assert listed(second.text) == ["note-0"] and page(second.text).find("a", rel="next") is None
            assert page(second.text).find("a", rel="prev") is not None


# -- a run's page -------------------------------------------------------------------------------------------

async def test_a_run_page_shows_each_steps_kind_arguments_result_attempts_and_error_with_state_escalation_and_child(
        app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        wid = await start(app, "rita", "order", "o-1", "order-1", "waiting")
        history = await at_the_review(app, wid)
        seq = {s.name.rpartition(".")[2]: s.seq for s in history.steps}  # a step is named by its qualname
        child_id = next(s.input["workflow_id"] for s in history.steps if s.kind == "child")
        escalation_id = next(s.input["escalation_id"] for s in history.steps if s.kind == "escalation")
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["rita"])
            shown = await http.get(run_url(wid))
            assert shown.status_code == 200
            check_page(shown.text)
            doc = page(shown.text)
            assert "waiting" in doc.find(class_="run-status").get_text()

            charge = step(shown.text, seq["charge"])
            assert charge.find(class_="kind").get_text() == "step"
            assert charge.find(class_="attempts").get_text() == "2", "failed once, then succeeded"
            assert json.loads(charge.find(class_="step-result").get_text()) == {"receipt": "r-o-1"}
            assert json.loads(charge.find(class_="step-args").get_text()) == {"args": ["o-1"], "kwargs": {}}

            wrap = step(shown.text, seq["gift_wrap"])
            assert "failed" in wrap.find(class_="step-status").get_text()
            assert "out of ribbon" in wrap.find(class_="step-error").get_text()

            tool = step(shown.text, seq["workflows/get_run"])
            assert tool.find(class_="kind").get_text() == "tool"
            assert json.loads(tool.find(class_="step-args").get_text()) == {"workflow_id": wid}
            assert json.loads(tool.find(class_="step-result").get_text())["status"] == "running"

            child = step(shown.text, seq["pack"])
            assert child.find(class_="kind").get_text() == "child"
            assert child.find("a", href=run_url(child_id)) is not None
            assert json.loads(doc.find(id="run-state").get_text()) == {"order": "o-1", "stage": "review"}

            asked = doc.find(id="escalations-heading").find_parent("section")
            assert asked.find("a", href=f"/escalations/{quote(escalation_id, safe='')}") is not None
            assert "reviewers" in asked.get_text() and "pending" in asked.get_text()
            children = doc.find(id="children-heading").find_parent("section")
            assert children.find("a", href=run_url(child_id)) is not None and "completed" in children.get_text()
            live = doc.find(id="run-live")
            assert live["data-run-events"] == f"/live/run?workflow_id={wid}"
            assert live["data-run-timeline"] == run_url(wid, "timeline")
            assert doc.find("script", src="/static/run.js") is not None

            the_child = await http.get(run_url(child_id))  # its id holds a `/`, sent as one %2F segment
            assert the_child.status_code == 200 and "pack run" in page(the_child.text).find("h1").get_text()
            assert page(the_child.text).find("a", href=run_url(wid)) is not None, "a link back to its parent"
            typed = await http.get(f"/runs/{child_id}")
            assert typed.status_code == 200 and "pack run" in typed.text, "an id typed with its bare slash works"
            assert page(shown.text).find(id="hooks-heading") is None, "no hooks, no section"

            hook = await app.hook(wid, "note", "wait", hook_id="order-1-note")
            await wait_status(hook, "waiting")
            hooks = page((await http.get(run_url(wid))).text).find(id="hooks-heading").find_parent("section")
            assert hooks.find("a", href=run_url("order-1-note")) is not None and "waiting" in hooks.get_text()
            await app.signal("order-1-note", "go")

            await app.humans(await as_(app, "rita")).resolve(escalation_id, {"ship": True})
            await wait_status(app.handle(wid), "completed")
            done = page((await http.get(run_url(wid))).text)
            assert "completed" in done.find(class_="run-status").get_text()
            assert json.loads(done.find(id="result-heading").find_next("pre").get_text())["decision"] == {"ship": True}
            assert done.find(id="run-live").get("data-run-events") is None, "an ended run is not followed"
            fragment = await http.get(run_url(wid, "timeline"))
            assert fragment.status_code == 200 and "<html" not in fragment.text
            assert json.loads(page(fragment.text).find(id="run-state").get_text())["stage"] == "shipped"


async def test_the_export_downloads_what_the_export_service_returns(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        wid = await start(app, "rita", "order", "o-2", "order-2", "waiting")
        rita = app.runs(await as_(app, "rita"))
        history = await at_the_review(app, wid)  # both runs at rest: no write lands between the two reads
        child_id = next(s.input["workflow_id"] for s in history.steps if s.kind == "child")
        await wait_status(app.handle(child_id), "completed")
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["rita"])
            shown = page((await http.get(run_url(wid))).text)
            link = shown.find("a", href=run_url(wid, "export"))
            assert link is not None and link.has_attr("download")
            for run_id in (wid, child_id):
                got = await http.get(run_url(run_id, "export"))
                assert got.status_code == 200 and got.headers["content-type"].startswith("application/json")
                assert got.headers["content-disposition"].startswith("attachment; filename=\"run-")
                assert got.json() == (await rita.export(run_id)).to_json()


async def test_a_member_gets_a_404_for_another_accounts_run_and_its_export_timeline_and_events(
        app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        wid = await start(app, "rita", "order", "o-3", "order-3", "waiting")
        await at_the_review(app, wid)  # from then on the reviewers may see it
        await start(app, "rita", "note", "mine", "note-r", "completed")
        paths = [run_url(wid), run_url(wid, "export"), run_url(wid, "timeline"), f"/live/run?workflow_id={wid}",
                 run_url("no-such-run")]
        async with http_server(app) as base, browser(base) as lena, browser(base) as ray, browser(base) as admin:
            for http, who in ((lena, "lena"), (ray, "ray"), (admin, "admin")):
                await sign_in(http, keys[who])
            for path in paths:
                refused = await lena.get(path)
                assert refused.status_code == 404, path
                assert "o-3" not in refused.text and "rita" not in refused.text
            check_page((await lena.get(run_url(wid))).text)
            assert listed((await lena.get("/runs")).text) == []
            assert listed((await lena.get(f"/runs?id={wid}")).text) == []
            # The run asked the reviewers: ray may see it now (not rita's other run); a superadmin sees all.
            assert (await ray.get(run_url(wid))).status_code == 200
            assert (await ray.get(run_url("note-r"))).status_code == 404
            assert listed((await ray.get("/runs")).text) == [wid]
            assert (await admin.get(run_url("note-r", "export"))).status_code == 200
        async with http_server(app) as base, browser(base) as nobody:
            assert (await nobody.get(run_url(wid))).status_code == 303
            assert (await nobody.get("/runs")).status_code == 303
            assert (await nobody.get(run_url(wid, "timeline"))).status_code == 401
            assert (await nobody.get(f"/live/run?workflow_id={wid}")).status_code == 401


async def test_the_run_event_stream_tells_its_viewer_of_this_runs_steps_and_nothing_else(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        wid = await start(app, "rita", "note", "wait", "note-w", "waiting")
        async with http_server(app) as base, browser(base) as rita, browser(base) as lena:
            await sign_in(rita, keys["rita"])
            await sign_in(lena, keys["lena"])
            assert (await lena.get(f"/live/run?workflow_id={wid}")).status_code == 404
            seen: list[dict[str, Any]] = []
            ready, ended = anyio.Event(), anyio.Event()

            async def watch(http: httpx2.AsyncClient) -> None:
                async with http.stream("GET", f"/live/run?workflow_id={wid}") as resp:
                    assert resp.status_code == 200
                    async for line in resp.aiter_lines():
                        if line == "event: ready":
                            ready.set()
                        elif line.startswith("data:") and '"type"' in line:
                            seen.append(json.loads(line[5:]))
                            if seen[-1]["type"] == "run.completed":
                                ended.set()
                                return

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch, rita)
                    await ready.wait()
                    await start(app, "rita", "note", "other", "note-o", "completed")  # not this run
                    await app.runs(await as_(app, "rita")).signal(wid, "go", {"now": True})
                    await ended.wait()
        assert {e["workflow_id"] for e in seen} == {wid}, "only this run's events"
        types = [e["type"] for e in seen]
        assert "step.completed" in types and types[-1] == "run.completed"


# -- servers and tools --------------------------------------------------------------------------------------

async def test_the_servers_page_lists_the_built_in_servers_and_a_registered_one_with_tools_and_tags(
        app: LongTail) -> None:
    async with app:
        keys = await cast(app)
        await publish_manifests(app, refresh_registered=False)
        await register_echo(app)
        async with http_server(app) as base, browser(base) as rita, browser(base) as admin:
            await sign_in(rita, keys["rita"])
            await sign_in(admin, keys["admin"])
            shown = await rita.get("/servers")
            assert shown.status_code == 200
            check_page(shown.text)
            doc = page(shown.text)
            for name in ("workflows", "human-queue", "compiler", "db-query", "files", "http-fetch", "echo"):
                assert doc.find(id=f"server-{name}") is not None, name
            built_in = doc.find(id="server-workflows")
            assert built_in.find(class_="transport").get_text() == "built in"
            assert len(built_in.select("table.tools tbody tr")) == len(workflows.TOOLS)
            assert built_in.find(id="tool-workflows-export_run") is not None
            echo = doc.find(id="server-echo")
            assert echo.find(class_="transport").get_text() == "stdio"
            assert [t.get_text() for t in echo.find(class_="tags").find_all(class_="tag")] == ["testing", "text"]
            assert sorted(r["id"].removeprefix("tool-echo-") for r in echo.select("table.tools tbody tr")) == [
                "add", "boom", "echo", "environ"]
            assert "Repeat the given text back" in echo.get_text()
            assert "echo_server" not in shown.text, "how to reach it is for superadmins"
            as_admin = page((await admin.get("/servers")).text).find(id="server-echo")
            assert "tests.apps.echo_server" in as_admin.get_text() and "PYTHONPATH" in as_admin.get_text()
            assert "tools listed" in as_admin.find(class_="server-status").get_text()
        async with http_server(app) as base, browser(base) as nobody:
            assert (await nobody.get("/servers")).status_code == 303


async def test_the_run_script_is_served_from_the_package_and_reaches_nowhere_else(app: LongTail) -> None:
    async with app, http_server(app) as base, browser(base) as http:
        script = await http.get("/static/run.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "http://" not in script.text and "https://" not in script.text
    assert not re.search(r"\bimport\b|require\(", script.text), "no modules, no build step"

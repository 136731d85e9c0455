"""The web view's pipeline pages and Ask, over real HTTP (uvicorn on 127.0.0.1) with a cookie-keeping client.

Cast: admin is the superadmin `serve` creates; mia is an account with no role and a full key. Pipelines write
files under the app's files root; the model, where one is needed, is the scripted Messages API server.
"""

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx2
import pytest

from longtail_mcp import LongTail
from longtail_mcp.agents.scripted import ScriptedServer
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.pipelines import store
from tests.conftest import running
from tests.pipelines.helpers import files_app, publish, save
from tests.servers.sessions import http_server, session
from tests.web.test_pages import browser, check_page, csrf_of, page, sign_in

pytestmark = pytest.mark.anyio

GREET = """
name: greet_file
description: Write a greeting to a file
input_schema: {type: object, required: [who], properties: {who: {type: string}}}
steps:
  - id: save
    tool: files/write_file
    args: {path: "hello-{{ inputs.who }}.txt", content: "hello {{ inputs.who }}"}
output: {path: "{{ steps.save.path }}"}
examples: [{who: ada}]
"""

DIAMOND = """
name: diamond
description: Write a file, two more named after it, then ask a reviewer
input_schema: {type: object, required: [name], properties: {name: {type: string}}}
steps:
  - id: first   # the one the others read
    tool: files/write_file
    args: {path: "{{ inputs.name }}.txt", content: "one"}
  - id: left
    tool: files/write_file
    args: {path: "{{ steps.first.path }}.l", content: "l"}
  - id: right
    tool: files/write_file
    args: {path: "{{ steps.first.path }}.r", content: "r"}
  - id: review
    human: {role: reviewers, message: "look at {{ steps.left.path }} and {{ steps.right.path }}"}
"""

NOTES = """
name: note_saver
description: Save a note under notes/ with a title and a text
tags: [notes]
input_schema: {type: object, required: [title, text], properties: {title: {type: string}, text: {type: string}}}
steps:
  - id: save
    tool: files/write_file
    args: {path: "notes/{{ inputs.title }}.md", content: "{{ inputs.text }}", make_dirs: true}
output: {path: "{{ steps.save.path }}"}
prompt_template: save a note titled {title} saying {text}
"""

SCRIPT: dict[str, Any] = {"model": "scripted-web", "turns": [
    {"name": "judge", "when": {"system": "You route requests"},
     "reply": [{"tool": "choose_pipeline", "input": {"name": "none", "confidence": 0.1}}]},
    {"name": "agent", "when": {"system": "You are an agent"}, "reply": [{"text": "It is sunny, says the agent."}]},
]}


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    return files_app(dsn, tmp_path / "files", llm_provider="scripted")


async def cast(app: LongTail) -> dict[str, str]:
    """Keys: admin's (a superadmin) and mia's (no role), and a read-only one of mia's."""
    await ident.ensure_admin(app.db)
    await ident.create_account(app.db, SYSTEM, "mia")
    keys = {who: (await ident.create_key(app.db, SYSTEM, who))["key"] for who in ("admin", "mia")}
    keys["viewer"] = (await ident.create_key(app.db, SYSTEM, "mia", scope="read"))["key"]
    return keys


def actions_on(html: str) -> list[str]:
    return [str(b["value"]) for b in page(html).select("form[method=post] button[name=action]")]


async def press(http: httpx2.AsyncClient, name: str, action: str, **fields: str) -> httpx2.Response:
    shown = await http.get(f"/pipelines/{name}")
    return await http.post(f"/pipelines/{name}", data={"csrf": csrf_of(shown.text), "action": action, **fields})


async def ask(http: httpx2.AsyncClient, request: str) -> httpx2.Response:
    """Send a request from the Ask page; the page it leads to (after the redirect)."""
    form = await http.get("/ask")
    check_page(form.text)
    sent = await http.post("/ask", data={"csrf": csrf_of(form.text), "request": request, "tags": ""})
    assert sent.status_code == 303, sent.text
    shown = await http.get(sent.headers["location"])
    assert shown.status_code == 200, shown.text
    check_page(shown.text)
    return shown


def run_of(response: httpx2.Response) -> str:
    return parse_qs(urlsplit(str(response.url)).query)["run"][0]


def facts(html: str) -> dict[str, str]:
    doc = page(html)
    return {dt.get_text(strip=True): dt.find_next_sibling("dd").get_text(" ", strip=True) for dt in doc.select("dt")}


# -- the list and a pipeline's page ------------------------------------------------------------------------

async def test_pipelines_are_listed_by_status_and_a_page_shows_its_yaml_step_graph_versions_and_source_run(
        app: LongTail) -> None:
    async with app:
        keys = await cast(app)
        await publish(app, GREET)
        await store.save(app.db, SYSTEM, DIAMOND, tools=await app.tool_catalog(), source_run="query-7/agent")
        await save(app, DIAMOND.replace("then ask a reviewer", "then ask someone"))  # version 2
        await save(app, NOTES)
        await store.archive(app.db, SYSTEM, "note_saver")
        async with http_server(app) as base, browser(base) as http:
            assert (await http.get("/pipelines")).status_code == 303, "sign in first"
            await sign_in(http, keys["mia"])
            listed = await http.get("/pipelines")
            assert listed.status_code == 200
            check_page(listed.text)
            doc = page(listed.text)
            by_section = {s.h2["id"]: [a.get_text(strip=True) for a in s.select("tbody a")]
                          for s in doc.select("section")}
            assert by_section == {"pipelines-active": ["greet_file"], "pipelines-deployed": [],
                                  "pipelines-draft": ["diamond"], "pipelines-archived": ["note_saver"]}
            drafts = page((await http.get("/pipelines?status=draft")).text)
            assert [s.h2["id"] for s in drafts.select("section")] == ["pipelines-draft"]
            found = page((await http.get("/pipelines?q=greeting")).text)
            assert [a.get_text(strip=True) for a in found.select("tbody a")] == ["greet_file"]

            shown = await http.get("/pipelines/diamond")
            assert shown.status_code == 200
            check_page(shown.text)
            doc = page(shown.text)
            assert "# the one the others read" in doc.select_one("pre.yaml").get_text(), "the YAML as written"
            assert "then ask someone" in doc.select_one("pre.yaml").get_text(), "the latest version by default"
            svg = doc.select_one("svg.graph")
            assert svg is not None and svg["role"] == "img"
            columns = {g.title.get_text().split(":")[0]: g["transform"] for g in svg.select("g.node")}
            assert list(columns) == ["first", "left", "right", "review"]
            assert columns["left"].split()[0] == columns["right"].split()[0] != columns["first"].split()[0]
            assert len(svg.select("path.edge")) == 4 and len(svg.select("g.node.human")) == 1
            waits = {li["id"]: li.get_text(" ", strip=True) for li in doc.select("ol.steps > li")}
            assert "waits for left , right" in waits["step-review"] and "files/write_file" in waits["step-first"]
            assert [r.td.get_text(" ", strip=True) for r in doc.select("section[aria-labelledby=versions-heading] "
                                                                      "tbody tr")] == ["2 (shown)", "1"]
            assert doc.find("a", href="/runs/query-7%2Fagent") is not None, "the source run, percent-encoded"
            assert facts(shown.text)["Status"] == "draft"
            older = page((await http.get("/pipelines/diamond?version=1")).text)
            assert "then ask a reviewer" in older.select_one("pre.yaml").get_text()
            assert (await http.get("/pipelines/nope")).status_code == 404
            assert (await http.get("/pipelines/diamond?version=9")).status_code == 404


# -- the lifecycle ----------------------------------------------------------------------------------------

async def test_an_admin_moves_a_pipeline_through_its_lifecycle_with_the_buttons_and_its_tool_follows(
        app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        await save(app, GREET)
        async with http_server(app) as base, browser(base) as http, \
                session("http", app, "workflows", None, base) as mcp:
            await sign_in(http, keys["admin"])

            async def tools() -> set[str]:
                return {t.name for t in (await mcp.list_tools()).tools}

            shown = await http.get("/pipelines/greet_file")
            check_page(shown.text)
            assert actions_on(shown.text) == ["verify", "deploy", "archive"]
            deployed = await press(http, "greet_file", "deploy")
            assert deployed.status_code == 303 and deployed.headers["location"] == "/pipelines/greet_file?done=deployed"
            assert (await store.get(app.db, "greet_file")).status == "deployed"

            refused = await press(http, "greet_file", "activate")
            assert refused.status_code == 409, "the service's rule: verify first"
            assert "has not passed verify_pipeline" in page(refused.text).select_one(".error").get_text()
            check_page(refused.text)

            verified = await press(http, "greet_file", "verify")
            assert verified.headers["location"].endswith("done=verify-passed")
            after = await http.get(verified.headers["location"])
            assert "Verified" in page(after.text).select_one(".done").get_text()
            assert facts(after.text)["Verification"].startswith("version 1 passed")
            assert (Path(app.settings.files_dir) / "hello-ada.txt").read_text() == "hello ada", "it really ran"
            assert actions_on(after.text) == ["verify", "activate", "archive"]

            assert "greet_file" not in await tools()
            assert (await press(http, "greet_file", "activate")).status_code == 303
            assert (await store.get(app.db, "greet_file")).status == "active"
            assert "greet_file" in await tools()

            assert (await press(http, "greet_file", "archive")).status_code == 303
            assert (await store.get(app.db, "greet_file")).status == "archived"
            assert "greet_file" not in await tools()
            archived = await http.get("/pipelines/greet_file")
            assert actions_on(archived.text) == ["restore"]
            assert (await press(http, "greet_file", "restore")).status_code == 303
            assert (await store.get(app.db, "greet_file")).status == "draft"


async def test_a_member_sees_no_buttons_and_a_forged_archive_is_refused_with_the_services_error(
        app: LongTail) -> None:
    async with app:
        keys = await cast(app)
        await publish(app, GREET)
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["mia"])
            shown = await http.get("/pipelines/greet_file")
            assert shown.status_code == 200 and actions_on(shown.text) == []
            assert page(shown.text).find(id="lifecycle-heading") is None
            forged = await http.post("/pipelines/greet_file", data={"csrf": csrf_of(shown.text), "action": "archive"})
            assert forged.status_code == 403
            assert "superadmin" in page(forged.text).select_one(".error").get_text()
            check_page(forged.text)
            assert (await store.get(app.db, "greet_file")).status == "active", "nothing changed"
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["admin"])
            for data in ({"action": "archive"}, {"action": "archive", "csrf": "forged"}):
                refused = await http.post("/pipelines/greet_file", data=data)
                assert refused.status_code == 403 and "CSRF" in refused.text
            assert (await store.get(app.db, "greet_file")).status == "active", "nothing changed"


# -- Ask --------------------------------------------------------------------------------------------------

async def test_ask_runs_a_fitting_pipeline_with_no_model_call_and_else_the_agent_and_says_which(
        app: LongTail) -> None:
    with ScriptedServer(SCRIPT) as model:
        app.settings.llm_base_url = model.url
        async with running(app):
            keys = await cast(app)
            await publish(app, NOTES)
            async with http_server(app) as base, browser(base) as http:
                await sign_in(http, keys["mia"])
                routed = await ask(http, "save a note titled groceries saying buy milk")
                asked_model = list(model.requests)
                model.reset()
                answered = await ask(http, "what is the weather like in Lisbon")
                agent_turns = [r["_rule"] for r in model.requests]
    files = Path(app.settings.files_dir)

    assert asked_model == [], "the template path calls no model"
    assert (files / "notes" / "groceries.md").read_text() == "buy milk"
    run_id = run_of(routed)
    said = facts(routed.text)
    assert said["Path"].startswith("template") and "no model call" in said["Path"]
    assert said["Model calls"] == "0" and said["Pipeline"].startswith("note_saver version 1")
    doc = page(routed.text)
    assert doc.find("a", href=f"/runs/{quote(run_id, safe='')}") is not None
    assert doc.find("a", href=f"/runs/{quote(run_id + '/pipeline', safe='')}") is not None
    assert "notes/groceries.md" in doc.select_one("section.answer pre").get_text()

    said = facts(answered.text)
    assert said["Path"].startswith("agent") and "The agent answered" in said["Path"]
    assert agent_turns[-1:] == ["agent"] and said["Model calls"] == str(len(agent_turns))
    assert "Pipeline" not in said, said
    assert "It is sunny, says the agent." in page(answered.text).select_one("section.answer p.message:last-of-type") \
        .get_text()
    agent_run = run_of(answered) + "/agent"
    assert page(answered.text).find("a", href=f"/runs/{quote(agent_run, safe='')}") is not None


async def test_ask_with_no_model_and_no_fitting_pipeline_shows_the_services_error(
        dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    app = files_app(dsn, tmp_path / "files", llm_provider="anthropic")
    async with running(app):
        keys = await cast(app)
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["mia"])
            answered = await ask(http, "what is the weather like in Lisbon")
            error = page(answered.text).select_one("section.answer .error").get_text(" ", strip=True)
            assert "no model is configured" in error and "ANTHROPIC_API_KEY" in error, error

            form = await http.get("/ask")
            assert (await http.post("/ask", data={"request": "anything"})).status_code == 403, "no CSRF token"
            empty = await http.post("/ask", data={"csrf": csrf_of(form.text), "request": "  "})
            assert empty.status_code == 400 and "Write a request" in empty.text
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["viewer"])
            form = await http.get("/ask")
            refused = await http.post("/ask", data={"csrf": csrf_of(form.text), "request": "save a note"})
            assert refused.status_code == 403 and page(refused.text).select_one(".error") is not None
            check_page(refused.text)

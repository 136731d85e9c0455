"""The web view in a real browser: headless Chromium, through Playwright, against uvicorn on 127.0.0.1.

The same cast as tests/web/test_pages.py (rita and ray review, lena is in legal only), with one more rule in
the reviewers' form that no HTML attribute expresses (tags are unique), so the server's own check shows. Runs of
`ship` pack an order (the first attempt fails), then wait for the `truck` signal. The pipeline tests use the cast
and pipelines of tests/web/test_pipeline_pages.py (admin, a superadmin; mia, no role) on an app with a files root.
Each test saves screenshots of the pages it visits (tests/web/browser.py says where).
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from longtail_mcp import Context, LongTail
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.pipelines import store
from system_servers import publish_manifests
from tests.conftest import running
from tests.pipelines.helpers import files_app, publish
from tests.runtime.helpers import wait_status
from tests.servers.sessions import http_server
from tests.web import browser
from tests.web import test_pipeline_pages as pipelines
from tests.web.test_pages import FORM, cast, url, waiting_review
from tests.web.test_run_pages import run_url

MISSING = browser.missing()  # why these tests cannot run here (no Chromium, no Playwright), or None
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]
if MISSING is None:
    from playwright.async_api import expect  # only once it is known to be there

UNIQUE_TAGS = {**FORM, "properties": {**FORM["properties"],
                                      "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}


@pytest.fixture
def app(dsn: str) -> LongTail:
    app = LongTail(dsn, poll_seconds=0.2, lease_seconds=5)

    tries: dict[str, int] = {}

    @app.workflow()
    async def review(ctx: Context, doc: str) -> dict[str, Any]:
        return await ctx.escalate("reviewers", f"review {doc}", {"doc": doc})

    @app.step(name="pack", retries=3, backoff=0)
    async def pack(order: str) -> dict[str, str]:
        tries[order] = tries.get(order, 0) + 1
        if tries[order] == 1:
            raise ConnectionError("the scale is busy")
        return {"box": f"box-{order}"}

    @app.workflow()
    async def ship(ctx: Context, order: str) -> dict[str, Any]:
        await ctx.state.merge({"order": order, "stage": "packing"})
        box = await ctx.run(pack, order)
        await ctx.state.set("stage", "waiting for the truck")
        truck = await ctx.wait_for_signal("truck")
        await ctx.state.set("stage", "shipped")
        return {**box, "truck": truck}

    return app


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    async with browser.chromium() as found:
        yield found


async def open_page(chromium: Any) -> Any:
    context = await chromium.new_context(viewport=browser.VIEWPORT)
    return await context.new_page()


async def sign_in(page: Any, base: str, key: str) -> None:
    """Open the inbox, get sent to the sign-in form, type the key and press Enter."""
    await page.goto(f"{base}/")
    key_input = page.get_by_label("API key")
    await key_input.fill(key)
    await key_input.press("Enter")
    await page.wait_for_url(f"{base}/")


async def listen_for_ready(page: Any, path: str) -> anyio.Event:
    """An event set when an EventSource of the page on `path` gets its `ready` (the server listens), as Chromium's
    DevTools protocol reports it."""
    ready, streams = anyio.Event(), set()
    devtools = await page.context.new_cdp_session(page)
    devtools.on("Network.requestWillBeSent",
                lambda sent: streams.add(sent["requestId"]) if urlsplit(sent["request"]["url"]).path == path else None)
    devtools.on("Network.eventSourceMessageReceived",
                lambda got: ready.set() if got["eventName"] == "ready" and got["requestId"] in streams else None)
    await devtools.send("Network.enable")
    return ready


def decide(page: Any) -> Any:
    """The escalation page's resolve form, with its heading."""
    return page.locator("section", has=page.get_by_role("heading", name="Decide"))


async def test_a_person_signs_in_with_a_key_from_the_keyboard_and_lands_on_the_inbox(
        chromium: Any, app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        await waiting_review(app, "doc-b1")
        async with http_server(app) as base:
            page = await open_page(chromium)
            await page.goto(f"{base}/")
            assert page.url == f"{base}/signin?next=%2F"
            await browser.screenshot(page, "signin")
            key_input = page.get_by_label("API key")
            for _ in range(5):  # keyboard only: Tab to the key (past the skip link and the site's name)
                await page.keyboard.press("Tab")
                if await key_input.evaluate("e => e === document.activeElement"):
                    break
            else:
                raise AssertionError("Tab never reaches the key input")
            await page.keyboard.type("ltk_not-a-key")
            async with page.expect_response(lambda r: r.request.method == "POST") as posted:
                await page.keyboard.press("Enter")
            assert (await posted.value).status == 401
            await expect(page.get_by_role("alert")).to_be_visible()
            await expect(key_input).to_have_attribute("aria-invalid", "true")
            await browser.screenshot(page, "signin-refused")

            await key_input.fill(keys["rita"])
            await key_input.press("Enter")
            await page.wait_for_url(f"{base}/")
            await expect(page.get_by_role("heading", name="Inbox", exact=True)).to_be_visible()
            await expect(page.get_by_text("Signed in as rita")).to_be_visible()
            await expect(page.get_by_role("link", name="review doc-b1")).to_be_visible()
            await browser.screenshot(page, "inbox")


async def test_the_inbox_shows_a_new_escalation_without_a_reload(chromium: Any, app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        async with http_server(app) as base:
            page = await open_page(chromium)
            listening = await listen_for_ready(page, "/live")
            await sign_in(page, base, keys["rita"])
            await expect(page.get_by_text("Nothing is waiting for your roles.")).to_be_visible()
            with anyio.fail_after(10):
                await listening.wait()  # live.js is subscribed: /live sends `ready` once it listens
            await page.evaluate("window.sameDocument = true")

            await waiting_review(app, "doc-b2")
            await expect(page.get_by_role("link", name="review doc-b2")).to_be_visible()
            assert await page.evaluate("window.sameDocument") is True, "swapped in, not reloaded"
            await expect(page.get_by_role("button", name="Claim review doc-b2")).to_be_visible()
            await browser.screenshot(page, "inbox-live")


async def test_a_reviewer_claims_and_resolves_through_the_generated_form_and_the_run_completes(
        chromium: Any, app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        esc = await waiting_review(app, "doc-b3")
        async with http_server(app) as base:
            page = await open_page(chromium)
            await sign_in(page, base, keys["ray"])
            await page.get_by_role("link", name="review doc-b3").click()
            await page.wait_for_url(f"{base}{url(esc)}")
            await browser.screenshot(page, "escalation")

            await page.get_by_role("button", name="Claim (30 min)").click()
            await expect(page.get_by_role("status").filter(has_text="You claimed this escalation.")).to_be_visible()
            await expect(page.locator(".facts")).to_contain_text("ray until")
            await page.get_by_label("decision").select_option(label="approve")
            await page.get_by_label("score").fill("4")
            await page.get_by_label("comment").fill("fine\nwith one nit")
            await page.get_by_label("urgent").check()
            await page.get_by_label("tags").fill("style\nfacts")
            await page.get_by_label("Reason (optional, kept in the history)").fill("read it twice")
            await browser.screenshot(decide(page), "escalation-form")
            await page.get_by_role("button", name="Resolve").click()
            await expect(page.get_by_text("Resolved. The run waiting on it (if any) goes on.")).to_be_visible()
            await expect(page.locator(".facts .status")).to_have_text("resolved")
            await expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
            await browser.screenshot(page, "escalation-resolved")

        result = await app.handle("doc-b3").result(timeout=10)
        assert result == {"decision": "approve", "score": 4, "comment": "fine\nwith one nit", "urgent": True,
                          "tags": ["style", "facts"]}
        row = await app.humans(SYSTEM).get(esc)
        assert (row.status, row.resolved_by, row.reason) == ("resolved", "ray", "read it twice")


async def test_a_resolution_the_form_refuses_is_shown_next_to_its_field_and_nothing_is_resolved(
        chromium: Any, app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        await ident.add_form(app.db, SYSTEM, "reviewers", UNIQUE_TAGS)
        esc = await waiting_review(app, "doc-b4")
        async with http_server(app) as base:
            page = await open_page(chromium)
            posts: list[str] = []
            page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
            await sign_in(page, base, keys["rita"])
            posts.clear()
            await page.goto(f"{base}{url(esc)}")
            decision, score, tags = (page.get_by_label(name) for name in ("decision", "score", "tags"))

            await page.get_by_role("button", name="Resolve").click()  # the browser's own check stops this one
            assert await decision.evaluate("e => e.validity.valueMissing") is True

            await decision.select_option(label="reject")
            await score.fill("2")
            await tags.fill("typo\ntypo")
            async with page.expect_response(lambda r: r.request.method == "POST") as posted:
                await page.get_by_role("button", name="Resolve").click()
            assert (await posted.value).status == 400
            assert posts == [f"{base}{url(esc)}"], "one POST: the blocked click sent nothing"
            error_id = f"{await tags.get_attribute('id')}-error"
            error = page.locator(f"#{error_id}")
            await expect(error).to_be_visible()
            await expect(error).to_contain_text("has non-unique elements")
            await expect(tags).to_have_attribute("aria-invalid", "true")
            assert error_id in (await tags.get_attribute("aria-describedby") or "").split()
            await expect(score).to_have_value("2")  # what was typed is kept
            await expect(tags).to_have_value("typo\ntypo")
            await expect(page.locator(".field-error")).to_have_count(1)
            await browser.screenshot(page, "escalation-form-error")
            await browser.screenshot(decide(page), "escalation-form-error-field")

        row = await app.humans(SYSTEM).get(esc)
        assert row.status == "pending" and row.resolution is None
        assert (await app.handle("doc-b4").status()) == "waiting"


async def test_a_member_of_another_role_gets_a_404_page_without_buttons_for_the_escalation(
        chromium: Any, app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        esc = await waiting_review(app, "doc-b5")
        async with http_server(app) as base:
            page = await open_page(chromium)
            await sign_in(page, base, keys["lena"])
            await expect(page.get_by_role("link", name="review doc-b5")).to_have_count(0)

            shown = await page.goto(f"{base}{url(esc)}")
            assert shown is not None and shown.status == 404
            await expect(page.get_by_role("heading", name="Not available")).to_be_visible()
            assert "review doc-b5" not in await page.locator("main").inner_text()
            assert await page.get_by_role("button").all_inner_texts() == ["Sign out"]
            await browser.screenshot(page, "escalation-not-found")

            filtered = await page.goto(f"{base}/?role=reviewers")
            assert filtered is not None and filtered.status == 403
            await expect(page.get_by_role("alert")).to_be_visible()
            await expect(page.get_by_role("link", name="review doc-b5")).to_have_count(0)
        row = await app.humans(SYSTEM).get(esc)
        assert (row.status, row.assigned_to) == ("pending", None)


async def test_a_run_page_follows_its_run_live_until_it_completes(chromium: Any, app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        rita = app.runs(await ident.get_principal(app.db, "rita"))
        await rita.start("ship", "A-6", workflow_id="ship-A-6")
        await wait_status(app.handle("ship-A-6"), "waiting")
        await rita.signal("ship-A-6", "truck", {"plate": "LT-06"})
        await waiting_review(app, "doc-b6")
        await rita.start("ship", "A-7", workflow_id="ship-A-7")
        await wait_status(app.handle("ship-A-7"), "waiting")
        await publish_manifests(app, refresh_registered=False)  # the servers page lists their tools
        async with http_server(app) as base:
            page = await open_page(chromium)
            await sign_in(page, base, keys["rita"])
            await page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
            await page.wait_for_url(f"{base}/runs")
            runs = page.locator("table tbody tr")
            await expect(runs).to_have_count(3)
            await expect(runs.first).to_contain_text("waiting")
            await browser.screenshot(page, "runs")

            ready = await listen_for_ready(page, "/live/run")
            await page.get_by_role("link", name="ship-A-7").click()
            await page.wait_for_url(f"{base}{run_url('ship-A-7')}")
            status = page.locator(".run-status")
            await expect(status).to_contain_text("waiting (waiting for signal:truck)")
            await expect(page.locator("#run-state")).to_contain_text("waiting for the truck")
            pack = page.locator(".timeline > li", has=page.locator(".step-name", has_text="pack"))
            await expect(pack.locator(".attempts")).to_have_text("2")
            await browser.screenshot(page, "run")
            with anyio.fail_after(10):
                await ready.wait()  # run.js is subscribed: /live/run sends `ready` once it listens
            await page.evaluate("window.sameDocument = true")

            await rita.signal("ship-A-7", "truck", {"plate": "LT-07"})
            await expect(status).to_have_text("completed")
            await expect(page.get_by_role("status")).to_have_text("Updated: the run is completed.")
            await expect(page.get_by_role("heading", name="Result")).to_be_visible()
            await expect(page.locator("#run-state")).to_contain_text("shipped")
            await expect(page.locator(".kind", has_text="signal")).not_to_have_count(0)
            assert await page.evaluate("window.sameDocument") is True, "swapped in, not reloaded"
            await browser.screenshot(page, "run-live")

            await page.get_by_role("link", name="Servers and tools").click()
            await page.wait_for_url(f"{base}/servers")
            await expect(page.locator("#server-workflows .transport")).to_have_text("built in")
            await expect(page.locator("#tool-workflows-export_run")).to_be_visible()
            await browser.screenshot(page, "servers")
        assert (await app.handle("ship-A-7").result(timeout=10))["truck"] == {"plate": "LT-07"}


@pytest.fixture
def files(dsn: str, tmp_path: Path) -> LongTail:
    """An app whose files server writes under a temporary root (the pipelines' steps write files)."""
    return files_app(dsn, tmp_path / "files", llm_provider="scripted")


async def test_an_admin_archives_a_pipeline_from_its_page_and_a_member_sees_it_archived_without_buttons(
        chromium: Any, files: LongTail) -> None:
    async with files:
        keys = await pipelines.cast(files)
        await ident.create_role(files.db, SYSTEM, "reviewers")  # the diamond's human step asks them
        await publish(files, pipelines.GREET)
        await publish(files, pipelines.DIAMOND)
        await pipelines.save(files, pipelines.NOTES)
        async with http_server(files) as base:
            admin = await open_page(chromium)
            await sign_in(admin, base, keys["admin"])
            await admin.goto(f"{base}/pipelines")
            active = admin.locator("#pipelines-active + table tbody a")
            assert sorted(await active.all_inner_texts()) == ["diamond", "greet_file"]
            await expect(admin.locator("#pipelines-draft + table tbody a")).to_have_text(["note_saver"])
            await browser.screenshot(admin, "pipelines")
            await admin.get_by_role("link", name="diamond").click()
            await admin.wait_for_url(f"{base}/pipelines/diamond")
            status = admin.locator(".facts .status")
            await expect(status).to_have_text("active")
            await expect(admin.locator("svg.graph g.node")).to_have_count(4)
            await browser.screenshot(admin, "pipeline")
            await browser.screenshot(admin.locator("section", has=admin.locator("#steps-heading")), "pipeline-graph")

            archive = admin.get_by_role("button", name="Archive")
            await archive.focus()
            await admin.keyboard.press("Enter")
            await admin.wait_for_url(f"{base}/pipelines/diamond?done=archived")
            await expect(admin.get_by_role("status")).to_contain_text("Archived: its tool is gone")
            await expect(status).to_have_text("archived")
            await expect(admin.locator("form button[name=action]")).to_have_text(["Restore as a draft"])
            await browser.screenshot(admin, "pipeline-archived")
            assert (await store.get(files.db, "diamond")).status == "archived"

            member = await open_page(chromium)
            await sign_in(member, base, keys["mia"])
            for name, shown in (("diamond", "archived"), ("greet_file", "active")):
                await member.goto(f"{base}/pipelines/{name}")
                await expect(member.locator(".facts .status")).to_have_text(shown)
                await expect(member.get_by_role("heading", name="Lifecycle")).to_have_count(0)
                assert await member.get_by_role("button").all_inner_texts() == ["Sign out"]
            await browser.screenshot(member, "pipeline-member")


async def test_ask_answers_through_a_pipeline_with_no_model_call_and_links_its_runs(
        chromium: Any, files: LongTail) -> None:
    async with running(files):
        keys = await pipelines.cast(files)
        await publish(files, pipelines.NOTES)
        async with http_server(files) as base:
            page = await open_page(chromium)
            await sign_in(page, base, keys["mia"])
            await page.get_by_role("link", name="Ask", exact=True).click()
            await page.get_by_label("Request").fill("save a note titled groceries saying buy milk")
            await page.get_by_role("button", name="Ask").click()
            await page.wait_for_url(re.compile(r"/ask\?run="))
            answer = page.locator("section.answer")
            facts = answer.locator("dl.facts")
            await expect(facts.locator("dt:text-is('Path') + dd")).to_contain_text("template")
            await expect(facts.locator("dt:text-is('Path') + dd")).to_contain_text("no model call")
            await expect(facts.locator("dt:text-is('Model calls') + dd")).to_have_text("0")
            await expect(answer.get_by_role("link", name="note_saver")).to_be_visible()
            await expect(answer.locator("pre")).to_contain_text("notes/groceries.md")
            await browser.screenshot(page, "ask")

            await answer.get_by_role("link", name="the pipeline's run").click()
            await expect(page.locator(".run-status")).to_have_text("completed")
            await expect(page.get_by_role("heading", level=1)).to_contain_text("/pipeline")
    assert (Path(files.settings.files_dir) / "notes" / "groceries.md").read_text() == "buy milk"

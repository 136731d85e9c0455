"""The web view in a real browser: headless Chromium, through Playwright, against uvicorn on 127.0.0.1.

The same cast as tests/web/test_pages.py (rita and ray review, lena is in legal only), with one more rule in
the reviewers' form that no HTML attribute expresses (tags are unique), so the server's own check shows.
Each test saves screenshots of the pages it visits (tests/web/browser.py says where).
"""

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from longtail_mcp import Context, LongTail
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.servers.sessions import http_server
from tests.web import browser
from tests.web.test_pages import FORM, cast, url, waiting_review

pytestmark = pytest.mark.anyio
if (reason := browser.missing()) is not None:
    pytest.skip(reason, allow_module_level=True)

from playwright.async_api import expect  # noqa: E402 - only once it is known to be there

UNIQUE_TAGS = {**FORM, "properties": {**FORM["properties"],
                                      "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}


@pytest.fixture
def app(dsn: str) -> LongTail:
    app = LongTail(dsn, poll_seconds=0.2, lease_seconds=5)

    @app.workflow()
    async def review(ctx: Context, doc: str) -> dict[str, Any]:
        return await ctx.escalate("reviewers", f"review {doc}", {"doc": doc})

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
            listening = anyio.Event()
            devtools = await page.context.new_cdp_session(page)  # Chromium tells what its EventSources hear
            devtools.on("Network.eventSourceMessageReceived",
                        lambda message: listening.set() if message["eventName"] == "ready" else None)
            await devtools.send("Network.enable")
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

"""The web view for people, over real HTTP (uvicorn on 127.0.0.1) with a cookie-keeping client.

Cast: rita and ray review (role `reviewers`, whose form asks for a decision, a score, a comment, a flag
and tags); lena is in `legal` only; admin is the superadmin `serve` creates. Runs of `review` wait on a
reviewer's decision.
"""

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
import httpx2
import pytest
from bs4 import BeautifulSoup
from starlette.datastructures import FormData

from longtail_mcp import Context, LongTail
from longtail_mcp.errors import InvalidInput
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.web import forms
from tests.conftest import running
from tests.humans.helpers import audit_of, sql_one
from tests.runtime.helpers import wait_status
from tests.servers.sessions import http_server

pytestmark = pytest.mark.anyio

FORM = {
    "type": "object",
    "required": ["decision", "score"],
    "properties": {
        "decision": {"enum": ["approve", "reject"], "description": "What should happen to the document"},
        "score": {"type": "integer", "minimum": 1, "maximum": 5, "description": "1 (poor) to 5 (excellent)"},
        "comment": {"type": "string", "description": "Anything the author should know"},
        "urgent": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


@pytest.fixture
def app(dsn: str) -> LongTail:
    app = LongTail(dsn, poll_seconds=0.2, lease_seconds=5)

    @app.workflow()
    async def review(ctx: Context, doc: str) -> dict[str, Any]:
        return await ctx.escalate("reviewers", f"review {doc}", {"doc": doc})

    return app


async def cast(app: LongTail) -> dict[str, str]:
    """Roles, people and a full key each (read-only `viewer` for rita too)."""
    await ident.ensure_admin(app.db)
    for role in ("reviewers", "legal"):
        await ident.create_role(app.db, SYSTEM, role)
    await ident.add_form(app.db, SYSTEM, "reviewers", FORM)
    for who, role in (("rita", "reviewers"), ("ray", "reviewers"), ("lena", "legal")):
        await ident.create_account(app.db, SYSTEM, who)
        await ident.set_membership(app.db, SYSTEM, role, who)
    keys = {who: (await ident.create_key(app.db, SYSTEM, who))["key"] for who in ("rita", "ray", "lena", "admin")}
    keys["viewer"] = (await ident.create_key(app.db, SYSTEM, "rita", scope="read"))["key"]
    return keys


async def waiting_review(app: LongTail, doc: str) -> str:
    """Start a review run; the id of the escalation it waits on."""
    await app.start("review", doc, workflow_id=doc)
    await wait_status(app.handle(doc), "waiting")
    return f"{doc}:1"


def page(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def csrf_of(html: str) -> str:
    found = page(html).find("input", attrs={"name": "csrf"})
    assert found is not None, "the page has a form with a CSRF token"
    return str(found["value"])


def url(escalation_id: str) -> str:
    return f"/escalations/{quote(escalation_id, safe='')}"


def check_page(html: str) -> None:
    """Accessible basics and nothing from elsewhere: every control has a label, no two labels read the same,
    no URL names another host."""
    doc = page(html)
    labelled = {str(label["for"]) for label in doc.find_all("label") if label.get("for")}
    texts = [label.get_text(" ", strip=True) for label in doc.find_all("label")]
    assert len(texts) == len(set(texts)), f"labels read the same: {sorted(t for t in texts if texts.count(t) > 1)}"
    for control in doc.find_all(["input", "select", "textarea"]):
        if control.name == "input" and control.get("type") in ("hidden", "submit", "button"):
            continue
        assert (control.get("id") in labelled or control.find_parent("label") is not None
                or control.get("aria-label")), f"no label for {control}"
    for button in doc.find_all("button"):
        assert button.get_text(strip=True), f"a button without text: {button}"
    for tag in doc.find_all(src=True) + doc.find_all(href=True) + doc.find_all(action=True):
        for attr in ("src", "href", "action"):
            value = str(tag.get(attr) or "")
            parts = urlsplit(value)
            assert not parts.scheme and not parts.netloc, f"{attr}={value!r} leaves the server"


@asynccontextmanager
async def browser(base: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=base, timeout=20) as http:
        yield http


async def sign_in(http: httpx2.AsyncClient, key: str) -> httpx2.Response:
    form = await http.get("/signin")
    return await http.post("/signin", data={"csrf": csrf_of(form.text), "key": key, "next": "/"})


async def act(http: httpx2.AsyncClient, escalation_id: str, action: str, **fields: Any) -> httpx2.Response:
    shown = await http.get(url(escalation_id))
    return await http.post(url(escalation_id), data={"csrf": csrf_of(shown.text), "action": action, **fields})


# -- signing in and out ------------------------------------------------------------------------------------

async def test_signing_in_with_a_good_key_sets_a_strict_httponly_cookie_and_shows_the_inbox(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        await waiting_review(app, "doc-1")
        async with http_server(app) as base, browser(base) as http:
            first = await http.get("/")
            assert first.status_code == 303 and first.headers["location"].startswith("/signin?next=")
            form = await http.get(first.headers["location"])
            check_page(form.text)
            signed = await sign_in(http, keys["rita"])
            assert signed.status_code == 303 and signed.headers["location"] == "/"
            cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("longtail_session="))
            attributes = {a.strip().lower() for a in cookie.split(";")}
            assert {"httponly", "samesite=strict", "path=/"} <= attributes
            inbox = await http.get("/")
            assert inbox.status_code == 200
            assert "Signed in as" in inbox.text and "rita" in inbox.text
            assert "review doc-1" in inbox.text
            assert "Content-Security-Policy" in inbox.headers and "no-store" in inbox.headers["cache-control"]
            check_page(inbox.text)
        assert ("rita", "session.open", None, None, None) in [a[:5] for a in await audit_of_key(app, keys["rita"])]


async def audit_of_key(app: LongTail, key: str) -> list[tuple[Any, ...]]:
    return await audit_of(app.db, ident.split_key(key)[0])


async def test_a_bad_key_is_refused_and_no_session_is_opened(app: LongTail) -> None:
    async with app:
        keys = await cast(app)
        async with http_server(app) as base, browser(base) as http:
            for bad in ("nonsense", keys["rita"][:-3] + "xyz"):
                refused = await sign_in(http, bad)
                assert refused.status_code == 401
                assert "longtail_session" not in refused.headers.get("set-cookie", "")
                assert page(refused.text).find(class_="error") is not None
                check_page(refused.text)
            assert (await http.get("/")).status_code == 303, "still signed out"
            forged = await http.post("/signin", data={"csrf": "forged", "key": keys["rita"]})
            assert forged.status_code == 403 and "longtail_session" not in forged.headers.get("set-cookie", "")


async def test_after_sign_in_only_a_path_on_this_site_is_followed(app: LongTail) -> None:
    async with app:
        keys = await cast(app)
        async with http_server(app) as base, browser(base) as http:
            for target, expected in (("//evil.example/x", "/"), ("https://evil.example", "/"), ("/\\evil", "/"),
                                     ("/?status=resolved", "/?status=resolved")):
                form = await http.get("/signin")  # a new token each time: signed in, it is the session's
                done = await http.post("/signin", data={"csrf": csrf_of(form.text), "key": keys["ray"],
                                                        "next": target})
                assert done.headers["location"] == expected


async def test_signing_out_ends_the_session_even_for_a_copied_cookie(app: LongTail) -> None:
    async with app:
        keys = await cast(app)
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["rita"])
            copied = http.cookies.get("longtail_session")
            inbox = await http.get("/")
            out = await http.post("/signout", data={"csrf": csrf_of(inbox.text)})
            assert out.status_code == 303 and out.headers["location"] == "/signin"
            assert (await http.get("/")).status_code == 303
            async with browser(base) as thief:
                thief.cookies.set("longtail_session", copied)
                assert (await thief.get("/")).status_code == 303, "the row is gone, not just the cookie"
        assert "session.close" in [a[1] for a in await audit_of_key(app, keys["rita"])]


async def test_a_revoked_key_ends_its_session_at_the_next_request(app: LongTail) -> None:
    async with app:
        keys = await cast(app)
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["ray"])
            assert (await http.get("/")).status_code == 200
            await ident.revoke_key(app.db, SYSTEM, ident.split_key(keys["ray"])[0])
            assert (await http.get("/")).status_code == 303
            assert (await http.get("/inbox/list")).status_code == 401
            assert (await http.get("/live")).status_code == 401


async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        esc = await waiting_review(app, "doc-2")
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["rita"])
            resolution = {"action": "resolve", "field:decision": "0", "field:score": "5"}
            for token in ({}, {"csrf": "0" * 64}, {"csrf": ""}):
                for action in ({"action": "claim"}, resolution):
                    refused = await http.post(url(esc), data={**token, **action})
                    assert refused.status_code == 403, (token, action)
                    assert "CSRF" in refused.text
            inbox = await http.get("/")
            assert (await http.post("/signout", data={})).status_code == 403
            assert (await http.get("/")).status_code == 200, "still signed in"
            assert csrf_of(inbox.text)
        row = await app.humans(SYSTEM).get(esc)
        assert row.status == "pending" and row.assigned_to is None
        assert [a[1] for a in await audit_of(app.db, esc)] == ["escalation.create"]


# -- the escalation page and its form --------------------------------------------------------------------

async def test_a_reviewer_claims_and_resolves_through_the_generated_form_and_the_run_completes(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        esc = await waiting_review(app, "doc-3")
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["rita"])
            shown = await http.get(url(esc))
            assert shown.status_code == 200
            check_page(shown.text)
            doc = page(shown.text)
            assert "review doc-3" in doc.find(class_="message").get_text()
            assert json.loads(doc.find("pre").get_text()) == {"doc": "doc-3"}
            decision = doc.find("select", attrs={"name": "field:decision"})
            assert [o.get_text() for o in decision.find_all("option")] == ["Choose…", "approve", "reject"]
            score = doc.find("input", attrs={"name": "field:score"})
            assert (score["type"], score["min"], score["max"], score["step"]) == ("number", "1", "5", "1")
            assert doc.find("input", attrs={"name": "field:urgent"})["type"] == "checkbox"
            assert doc.find("textarea", attrs={"name": "field:tags"}) is not None
            assert "1 (poor) to 5 (excellent)" in shown.text, "descriptions are help text"

            claimed = await act(http, esc, "claim")
            assert claimed.status_code == 303
            after = await http.get(claimed.headers["location"])
            assert "You claimed this escalation." in after.text and "Release" in after.text
            mine = page((await http.get("/")).text).find(id="section-mine").find_parent("section")
            assert "review doc-3" in mine.get_text()

            done = await http.post(url(esc), data={
                "csrf": csrf_of(after.text), "action": "resolve", "field:decision": "0", "field:score": "4",
                "field:comment": "fine\r\nwith one nit", "field:urgent": "true", "field:tags": "style\n\n typo \n",
                "reason": "read it twice"})
            assert done.status_code == 303 and done.headers["location"].endswith("?done=resolved")
            resolved = await http.get(done.headers["location"])
            assert "resolved" in page(resolved.text).find(class_="status").get_text()
            assert page(resolved.text).find(id="resolve-heading") is None, "no form on a decided escalation"
            history = page(resolved.text).find(id="history-heading").find_parent("section").get_text()
            assert "create" in history and "claim" in history and "resolve" in history and "read it twice" in history
        result = await app.handle("doc-3").result(timeout=10)
        assert result == {"decision": "approve", "score": 4, "comment": "fine\nwith one nit", "urgent": True,
                          "tags": ["style", "typo"]}


async def test_a_form_error_is_shown_next_to_its_field_with_the_values_kept_and_nothing_resolved(
        app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        esc = await waiting_review(app, "doc-4")
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["rita"])
            shown = await http.get(url(esc))
            bad = await http.post(url(esc), data={
                "csrf": csrf_of(shown.text), "action": "resolve", "field:decision": "1", "field:score": "9",
                "field:comment": "keep <me>", "field:tags": "a\nb", "reason": "why not"})
            assert bad.status_code == 400
            check_page(bad.text)
            doc = page(bad.text)
            score = doc.find("input", attrs={"name": "field:score"})
            error = doc.find(id=f"{score['id']}-error")
            assert error is not None and "9 is greater than the maximum of 5" in error.get_text()
            assert score["value"] == "9" and score["aria-invalid"] == "true"
            assert f"{score['id']}-error" in score["aria-describedby"]
            assert doc.find("option", attrs={"value": "1"}, selected=True).get_text() == "reject"
            assert doc.find("textarea", attrs={"name": "field:comment"}).get_text().strip() == "keep <me>"
            assert doc.find("textarea", attrs={"name": "field:tags"}).get_text().strip() == "a\nb"
            assert doc.find(id="resolve-reason").get_text().strip() == "why not"

            missing = await http.post(url(esc), data={"csrf": csrf_of(shown.text), "action": "resolve",
                                                      "field:score": "two"})
            doc = page(missing.text)
            decision = doc.find("select", attrs={"name": "field:decision"})
            assert "'decision' is a required property" in doc.find(id=f"{decision['id']}-error").get_text()
            score = doc.find("input", attrs={"name": "field:score"})
            assert "'two' is not of type 'integer'" in doc.find(id=f"{score['id']}-error").get_text()
        row = await app.humans(SYSTEM).get(esc)
        assert row.status == "pending" and row.resolution is None
        assert (await app.handle("doc-4").status()) == "waiting"


async def test_a_member_of_another_role_can_neither_see_nor_act_on_an_escalation(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        esc = await waiting_review(app, "doc-5")
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["lena"])
            inbox = await http.get("/")
            assert "review doc-5" not in inbox.text
            assert (await http.get("/?role=reviewers")).status_code == 403
            assert (await http.get("/?status=resolved&role=reviewers")).status_code == 403
            shown = await http.get(url(esc))
            assert shown.status_code == 404 and "doc-5" not in page(shown.text).get_text().replace(esc, "")
            token = csrf_of(inbox.text)
            for action, extra in (("claim", {}), ("release", {}), ("cancel", {}), ("reroute", {"role": "legal"}),
                                  ("resolve", {"field:decision": "0", "field:score": "3"})):
                refused = await http.post(url(esc), data={"csrf": token, "action": action, **extra})
                assert refused.status_code == 404, action
                assert "review doc-5" not in refused.text
        row = await app.humans(SYSTEM).get(esc)
        assert (row.status, row.role, row.assigned_to) == ("pending", "reviewers", None)


async def test_buttons_follow_rbac_and_the_services_hold_when_buttons_are_bypassed(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        esc = await waiting_review(app, "doc-6")
        async with http_server(app) as base, browser(base) as ray, browser(base) as viewer, \
                browser(base) as admin:
            await sign_in(ray, keys["ray"])
            await sign_in(viewer, keys["viewer"])
            await sign_in(admin, keys["admin"])
            seen = await viewer.get(url(esc))
            assert seen.status_code == 200 and "read-only" in seen.text
            assert page(seen.text).find("button", attrs={"name": "action"}) is None, "no action buttons"
            refused = await viewer.post(url(esc), data={"csrf": csrf_of(seen.text), "action": "claim"})
            assert refused.status_code == 403 and "read-only key" in refused.text

            assert (await act(ray, esc, "claim")).status_code == 303
            held = page((await viewer.get(url(esc))).text)
            assert "ray" in held.find(class_="facts").get_text()
            as_admin = page((await admin.get(url(esc))).text)
            assert as_admin.find("button", attrs={"value": "release"}) is not None, "an admin may release anyone"
            assert as_admin.find("button", attrs={"value": "resolve"}) is None, "but not decide over a live claim"
            taken = await act(admin, esc, "resolve", **{"field:decision": "0", "field:score": "3"})
            assert taken.status_code == 409 and "claimed by ray" in taken.text
            rerouted = await act(ray, esc, "reroute", role="legal", reason="needs a lawyer")
            assert rerouted.status_code == 303 and rerouted.headers["location"] == "/?done=rerouted"
            assert "Sent to another role." in (await ray.get(rerouted.headers["location"])).text
            gone = await ray.get(url(esc))
            assert gone.status_code == 404, "once it is legal's, a reviewer no longer sees it"
        row = await app.humans(SYSTEM).get(esc)
        assert (row.role, row.assigned_to, row.reason) == ("legal", None, "needs a lawyer")


# -- the inbox -------------------------------------------------------------------------------------------

async def test_the_inbox_sorts_by_priority_and_age_and_filters_by_role_type_and_status(app: LongTail) -> None:
    async with app:
        keys = await cast(app)
        await ident.set_membership(app.db, SYSTEM, "legal", "rita")
        admin = app.humans(SYSTEM)
        made = {}
        for name, role, priority, type in (("old-low", "reviewers", 4, "review"), ("mid-urgent", "reviewers", 1,
                                           "review"), ("new-approval", "reviewers", 2, "approval"),
                                           ("legal-one", "legal", 3, "review")):
            made[name] = (await admin.escalate(role, f"msg {name}", priority=priority, type=type)).id
        await admin.cancel(made["legal-one"], reason="not needed")
        async with http_server(app) as base, browser(base) as http:
            await sign_in(http, keys["rita"])

            async def listed(query: str) -> list[str]:
                shown = await http.get(f"/?{query}")
                assert shown.status_code == 200, shown.text
                rows = page(shown.text).select("#inbox-lists tr[data-escalation] a")
                return [a.get_text().removeprefix("msg ") for a in rows]

            assert await listed("") == ["mid-urgent", "new-approval", "old-low"]
            assert await listed("sort=oldest") == ["old-low", "mid-urgent", "new-approval"]
            assert await listed("sort=newest") == ["new-approval", "mid-urgent", "old-low"]
            assert await listed("type=approval") == ["new-approval"]
            assert await listed("role=legal") == []
            assert await listed("status=cancelled") == ["legal-one"]
            assert await listed("status=cancelled&role=reviewers") == []
            fragment = await http.get("/inbox/list?sort=oldest")
            assert fragment.status_code == 200 and "<html" not in fragment.text
            assert [a.get_text() for a in page(fragment.text).select("tr[data-escalation] a")] == [
                "msg old-low", "msg mid-urgent", "msg new-approval"]
            claimed = await http.post(url(made["old-low"]), data={
                "csrf": csrf_of(fragment.text), "action": "claim"})
            assert claimed.status_code == 303
            shown = page((await http.get("/")).text)
            mine = shown.find(id="section-mine").find_parent("section").get_text()
            available = shown.find(id="section-available").find_parent("section").get_text()
            assert "old-low" in mine and "old-low" not in available


async def test_live_events_tell_the_inbox_of_new_escalations_and_of_claims_by_others(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        async with http_server(app) as base, browser(base) as rita, browser(base) as ray, browser(base) as lena:
            for http, who in ((rita, "rita"), (ray, "ray"), (lena, "lena")):
                await sign_in(http, keys[who])
            seen: dict[str, list[dict[str, Any]]] = {"rita": [], "lena": []}
            ready = {who: anyio.Event() for who in seen}
            enough = anyio.Event()

            async def watch(http: httpx2.AsyncClient, who: str) -> None:
                async with http.stream("GET", "/live") as resp:
                    assert resp.status_code == 200
                    async for line in resp.aiter_lines():
                        if line == "event: ready":
                            ready[who].set()
                        elif line.startswith("data:") and '"type"' in line:
                            seen[who].append(json.loads(line[5:]))
                            if who == "rita" and [e["type"] for e in seen[who]] == [
                                    "escalation.created", "escalation.claimed"]:
                                enough.set()
                                return

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch, rita, "rita")
                    tg.start_soon(watch, lena, "lena")
                    for event in ready.values():
                        await event.wait()
                    esc = await waiting_review(app, "doc-7")
                    before = await rita.get("/inbox/list")
                    assert "review doc-7" in before.text
                    assert (await act(ray, esc, "claim")).status_code == 303
                    await enough.wait()
                    tg.cancel_scope.cancel()
            after = page((await rita.get("/inbox/list")).text)
            assert "review doc-7" not in after.find(id="section-available").find_parent("section").get_text()
        assert seen["lena"] == [], "lena's roles were not asked: she hears nothing of it"
        assert seen["rita"][0]["id"] == esc


async def test_an_open_live_stream_ends_when_its_session_is_signed_out(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        async with http_server(app) as base, browser(base) as rita:
            await sign_in(rita, keys["rita"])
            inbox_page = await rita.get("/")
            lines: list[str] = []
            ready = anyio.Event()

            async def watch() -> None:
                async with rita.stream("GET", "/live") as resp:
                    assert resp.status_code == 200
                    async for line in resp.aiter_lines():
                        lines.append(line)
                        if line == "event: ready":
                            ready.set()

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch)
                    await ready.wait()
                    out = await rita.post("/signout", data={"csrf": csrf_of(inbox_page.text)})
                    assert out.status_code == 303
                    await waiting_review(app, "doc-10")  # an escalation of her role, after she signed out
        events = [line for line in lines if line.startswith("event:")]
        assert events == ["event: ready", "event: ended"], "the stream ended instead of sending it"
        assert "your session has ended" in lines[lines.index("event: ended") + 1]
        assert not any("doc-10" in line for line in lines)


# -- dev mode, pages as a whole, the form converter -----------------------------------------------------

async def test_dev_mode_acts_as_the_operator_without_sign_in_and_says_so_on_every_page(app: LongTail) -> None:
    async with running(app):
        keys = await cast(app)
        esc = await waiting_review(app, "doc-8")
        async with http_server(app, dev=True) as base, browser(base) as http:
            pages = [await http.get(path) for path in ("/", "/?status=resolved", url(esc), "/signin", url("nope"))]
            assert [p.status_code for p in pages] == [200, 200, 200, 200, 404]
            for shown in pages:
                banner = page(shown.text).find(class_="dev-banner")
                assert banner is not None and "Development mode" in banner.get_text(), shown.url
                check_page(shown.text)
            assert "review doc-8" in pages[0].text and "Acting as" in pages[0].text
            claimed = await act(http, esc, "claim")
            assert claimed.status_code == 303, claimed.text
            assert (await app.humans(SYSTEM).get(esc)).assigned_to == "system"
            refused = await http.post(url(esc), data={"action": "release"})
            assert refused.status_code == 403, "CSRF holds in dev mode too"
            await sign_in(http, keys["ray"])
            as_ray = await http.get("/")
            assert "Signed in as" in as_ray.text and "Development mode" in as_ray.text
        async with http_server(app) as base, browser(base) as http:
            assert "dev-banner" not in (await http.get("/signin")).text


async def test_the_stylesheet_and_script_are_served_from_the_package_and_reach_nowhere_else(app: LongTail) -> None:
    async with app, http_server(app) as base, browser(base) as http:
        css = await http.get("/static/style.css")
        script = await http.get("/static/live.js")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    for text in (css.text, script.text):
        assert "http://" not in text and "https://" not in text and "@import" not in text
    assert not re.search(r"\bimport\b|require\(", script.text), "no modules, no build step"


def test_form_fields_become_typed_json_and_service_errors_find_their_fields() -> None:
    schema = {"type": "object", "required": ["n", "ok"], "properties": {
        "n": {"type": "integer"}, "x": {"type": "number"}, "ok": {"type": "boolean"},
        "pick": {"enum": [1, "two", None]}, "many": {"type": "array", "items": {"enum": ["a", "b", "c"]}},
        "ids": {"type": "array", "items": {"type": "integer"}}, "note": {"type": "string", "maxLength": 50},
        "extra": {"type": "object"}}}
    fields = forms.fields_of(schema)
    assert [(f.name, f.kind) for f in fields] == [  # required first, then by name (jsonb keeps no key order)
        ("n", "number"), ("ok", "checkbox"), ("extra", "json"), ("ids", "lines"), ("many", "choices"),
        ("note", "text"), ("pick", "select"), ("x", "number")]
    submitted = FormData([("field:n", "7"), ("field:x", "2.50"), ("field:pick", "2"), ("field:many", "0"),
                          ("field:many", "2"), ("field:ids", "1\n2\nthree"), ("field:note", ""),
                          ("field:extra", '{"k": [1]}')])
    payload, shown = forms.read_form(schema, submitted)
    assert payload == {"n": 7, "x": 2.5, "ok": False, "pick": None, "many": ["a", "c"], "ids": [1, 2, "three"],
                       "extra": {"k": [1]}}
    assert next(f for f in shown if f.name == "many").value == ["0", "2"]
    from longtail_mcp.humans.escalations import validate_resolution

    with pytest.raises(InvalidInput) as failed:
        validate_resolution(schema, {"ids": [1, "three"], "ok": "yes"})
    assert forms.place_errors(shown, failed.value) == ""
    errors = {f.name: f.error for f in shown if f.error}
    assert errors == {"n": "'n' is a required property", "ids": "'three' is not of type 'integer'",
                      "ok": "'yes' is not of type 'boolean'"}
    whole = forms.fields_of(None)
    assert [(f.kind, f.whole, f.form_name) for f in whole] == [("json", True, "resolution")]
    assert forms.read_form(None, FormData([("resolution", '{"a": 1}')]))[0] == {"a": 1}
    broken, drawn = forms.read_form(None, FormData([("resolution", "{oops")]))
    assert broken is None and drawn[0].error.startswith("not valid JSON")


async def test_run_sql_roles_can_neither_read_nor_forge_sessions_or_form_tokens(app: LongTail) -> None:
    async with app:
        for table in ("sql_reader", "sql_writer"):
            row = await sql_one(app.db, f"SELECT role_name FROM {table}")  # noqa: S608 - a fixed name
            assert row is not None, f"{table} exists on the test server"
            for secret_table in ("web_session", "web_secret"):
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                    granted = await sql_one(app.db, "SELECT has_table_privilege(%s, %s, %s) AS ok",
                                            [row["role_name"], secret_table, privilege])
                    assert granted["ok"] is False, (table, secret_table, privilege)


async def test_a_sign_in_form_drawn_by_one_serve_process_is_accepted_by_another(app: LongTail) -> None:
    """Two `serve` processes on one database (behind one load balancer, or one restarted in between) share
    the key of the pre-sign-in CSRF tokens; a token from elsewhere is still refused."""
    async with app:
        keys = await cast(app)
        async with http_server(app) as first, http_server(app) as second, \
                httpx2.AsyncClient(timeout=20) as http:  # one cookie jar: cookies are the host's, not the port's
            form = await http.get(f"{first}/signin")
            token = csrf_of(form.text)
            done = await http.post(f"{second}/signin", data={"csrf": token, "key": keys["rita"], "next": "/"})
            assert done.status_code == 303 and done.headers["location"] == "/", done.text
            assert "rita" in (await http.get(f"{first}/")).text, "signed in, on either process"
            async with httpx2.AsyncClient(timeout=20) as other:
                await other.get(f"{second}/signin")  # another browser: its own double-submit cookie
                forged = await other.post(f"{second}/signin", data={"csrf": token, "key": keys["rita"]})
                assert forged.status_code == 403

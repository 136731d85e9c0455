"""The http-fetch server through real MCP sessions, fetching from a local site the allow-list opens."""

import base64
import json
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client as McpClient

from longtail_mcp import LongTail
from system_servers.http_fetch import server as http_fetch
from tests.servers.sessions import cancel_after_progress, fast_progress, growing, loud, session
from tests.servers.test_http_fetch_core import Site, site

pytestmark = pytest.mark.anyio
__all__ = ["site"]


def text(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


async def call(c: McpClient, tool: str, args: dict[str, Any]) -> Any:
    result = await c.call_tool(tool, args)
    assert not result.is_error, text(result)
    return result.structured_content


async def error(c: McpClient, tool: str, args: dict[str, Any]) -> str:
    result = await c.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return text(result)


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_every_http_fetch_tool_reaches_an_allowed_local_site(dsn: str, site: Site, transport: str) -> None:
    with anyio.fail_after(30):
        async with LongTail(dsn, http_allow=["127.0.0.1"]) as app, session(transport, app, "http-fetch") as c:
            hints = {t.name: t.annotations for t in (await c.list_tools()).tools}
            assert set(hints) == {"http_request", "fetch_json", "fetch_text"}
            for name, read_only in [("fetch_json", True), ("fetch_text", True), ("http_request", False)]:
                hint = hints[name]
                assert hint is not None and hint.read_only_hint is read_only and hint.open_world_hint, name

            got = await call(c, "fetch_json", {"url": site.url("/json")})
            assert got == {"data": {"hello": "world", "n": 1}, "status": 200, "final_url": site.url("/json")}

            page = await call(c, "fetch_text", {"url": site.url("/redirect?to=/html"), "links": True})
            assert page["title"] == "Local page" and page["final_url"] == site.url("/html")
            assert page["text"].startswith("# Welcome") and "[the introduction](" in page["text"]
            assert "injected" not in page["text"] and not page["truncated"] and page["next_start"] is None
            plain = await call(c, "fetch_text", {"url": site.url("/text")})
            assert plain == {"title": None, "text": "plain words\nsecond line", "content_type": "text/plain",
                             "status": 200, "final_url": site.url("/text"), "truncated": False, "next_start": None,
                             "total_length": 23, "body_truncated": False}

            posted = await call(c, "http_request", {"method": "POST", "url": site.url("/redirect?to=/echo&status=307"),
                                                    "json_body": {"a": [1, 2]}, "headers": {"X-Trace": "t1"}})
            echoed = json.loads(posted["body"])
            assert echoed["method"] == "POST" and json.loads(echoed["body"]) == {"a": [1, 2]}
            assert echoed["headers"]["content-type"] == "application/json" and echoed["headers"]["x-trace"] == "t1"
            assert posted["redirects"] == [{"url": site.url("/redirect?to=/echo&status=307"), "status": 307}]
            assert posted["status"] == 200 and posted["body_encoding"] == "text" and posted["elapsed"] >= 0
            assert posted["headers"]["content-type"] == "application/json"

            binary = await call(c, "http_request", {"url": site.url("/binary"), "max_bytes": 200})
            assert binary["body_encoding"] == "base64" and binary["truncated"]
            assert base64.b64decode(binary["body"]) == bytes(range(200))
            head = await call(c, "http_request", {"method": "HEAD", "url": site.url("/json")})
            assert head["status"] == 200 and head["body"] == "" and head["headers"]["content-length"] == "26"
            missing = await call(c, "http_request", {"method": "DELETE", "url": site.url("/nothing-here")})
            assert missing["status"] == 404, "an HTTP error status is an answer, not a tool error"


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_fetch_text_returns_markdown_a_page_at_a_time_until_next_start_is_null(dsn: str, site: Site,
                                                                                    transport: str) -> None:
    with anyio.fail_after(30):
        async with LongTail(dsn, http_allow=["127.0.0.1"]) as app, session(transport, app, "http-fetch") as c:
            article = await call(c, "fetch_text", {"url": site.url("/article")})
            assert article["title"] == "Guide" and article["content_type"] == "text/html"
            assert "```python\ndef greet(name):" in article["text"] and "3. third step" in article["text"]
            assert "| -v | verbose output |" in article["text"] and "tracking" not in article["text"]

            whole = "".join(f"{i:04d} " for i in range(3000))  # 15,000 characters of plain text
            pages, start = [], 0
            while True:
                got = await call(c, "fetch_text", {"url": site.url("/long?n=3000"), "start_index": start})
                assert got["total_length"] == 15_000 and not got["body_truncated"]
                pages.append(got["text"])
                assert got["truncated"] is (got["next_start"] is not None)
                if not got["truncated"]:
                    break
                assert got["next_start"] == start + 5000, "the default page is 5000 characters"
                start = got["next_start"]
            assert [len(p) for p in pages] == [5000, 5000, 5000] and "".join(pages) == whole

            small = await call(c, "fetch_text", {"url": site.url("/long?n=3000"), "max_length": 7,
                                                 "start_index": 14_995})
            assert (small["text"], small["truncated"], small["next_start"]) == ("2999 ", False, None)
            past = await call(c, "fetch_text", {"url": site.url("/long?n=10"), "start_index": 1000})
            assert (past["text"], past["truncated"], past["total_length"]) == ("", False, 50)
            cut = await call(c, "fetch_text", {"url": site.url("/long?n=3000"), "max_bytes": 100,
                                               "max_length": 30})
            assert cut["body_truncated"] and cut["total_length"] == 100 and cut["next_start"] == 30

            for bad in ({"max_length": 0}, {"max_length": 100_001}, {"start_index": -1}):
                message = await error(c, "fetch_text", {"url": site.url("/long"), **bad})
                assert message.startswith("[invalid_input]") and next(iter(bad)) in message, message


async def test_internal_addresses_are_tool_errors_naming_the_setting_and_nothing_is_sent(dsn: str, site: Site) -> None:
    with anyio.fail_after(30):
        async with LongTail(dsn) as app, session("memory", app, "http-fetch") as c:
            for tool in ("http_request", "fetch_json", "fetch_text"):
                for url in (site.url("/secret"), f"http://localhost:{site.port}/secret",
                            f"http://2130706433:{site.port}/secret", f"http://[::ffff:7f00:1]:{site.port}/secret"):
                    message = await error(c, tool, {"url": url})
                    assert message.startswith("[denied]") and "LONGTAIL_HTTP_ALLOW" in message, message
            message = await error(c, "fetch_json", {"url": site.url("/secret")})
            assert message.startswith("[denied] 127.0.0.1 is a loopback address; add it to LONGTAIL_HTTP_ALLOW")
            for paging in ({"start_index": 5000}, {"max_length": 100_000, "start_index": 0}):
                message = await error(c, "fetch_text", {"url": site.url("/secret"), **paging})
                assert message.startswith("[denied]"), "paging changes nothing about what may be reached"
    assert site.hits == []


async def test_every_page_of_fetch_text_refuses_a_redirect_into_an_internal_address(dsn: str, site: Site) -> None:
    with anyio.fail_after(30):
        async with LongTail(dsn, http_allow=["127.0.0.1"]) as app, session("memory", app, "http-fetch") as c:
            for start in (0, 5000):
                for to in (f"http://localhost:{site.port}/secret", f"http://[::1]:{site.port6 or site.port}/secret"):
                    message = await error(c, "fetch_text", {"url": site.url(f"/redirect?to={to}"),
                                                            "start_index": start})
                    assert message.startswith("[denied]"), message
    assert site.paths == ["/redirect"] * 4, "the allowed site answered; the redirect's target was never reached"


async def test_bad_arguments_and_unusable_answers_are_clear_tool_errors(dsn: str, site: Site) -> None:
    with anyio.fail_after(30):
        async with LongTail(dsn, http_allow=["127.0.0.0/8"]) as app, session("memory", app, "http-fetch") as c:
            cases: list[tuple[str, dict[str, Any], str]] = [
                ("http_request", {"url": site.url("/json"), "method": "TRACE"}, "method"),
                ("http_request", {"url": site.url("/echo"), "body": "x", "json_body": {}}, "not both"),
                ("http_request", {"url": site.url("/echo"), "headers": {"Host": "example.com"}}, "Host"),
                ("http_request", {"url": site.url("/echo"), "headers": {"Transfer-Encoding": "chunked"}}, "Transfer"),
                ("fetch_json", {"url": site.url("/json"), "verbose": True}, "verbose"),
                ("fetch_json", {"url": "file:///etc/passwd"}, "only http and https"),
                ("fetch_json", {"url": f"http://u:p@127.0.0.1:{site.port}/json"}, "user info"),
                ("fetch_json", {"url": site.url("/json"), "timeout_seconds": 0}, "timeout_seconds"),
            ]
            for tool, args, mentions in cases:
                message = await error(c, tool, args)
                assert message.startswith("[invalid_input]") and mentions in message, (tool, message)
            assert site.hits == []
            assert "is not JSON" in await error(c, "fetch_json", {"url": site.url("/html")})
            assert "not text" in await error(c, "fetch_text", {"url": site.url("/binary")})
            assert "more than 5 redirects" in await error(c, "fetch_text", {"url": site.url("/loop")})
            assert "larger than max_bytes" in await error(c, "fetch_json", {"url": site.url("/json"), "max_bytes": 5})


async def test_the_settings_cap_the_size_and_time_a_caller_asks_for(dsn: str, site: Site) -> None:
    with anyio.fail_after(30):
        async with LongTail(dsn, http_allow=["127.0.0.1"], http_max_bytes=100, http_timeout=0.3) as app, \
                session("memory", app, "http-fetch") as c:
            big = await call(c, "http_request", {"url": site.url("/big?n=5000"), "max_bytes": 1_000_000})
            assert big["truncated"] and len(big["body"]) == 100
            started = anyio.current_time()
            slow = await error(c, "fetch_text", {"url": site.url("/slow"), "timeout_seconds": 200})
            assert slow.startswith("[unavailable]") and "within 0.3 s" in slow
            assert anyio.current_time() - started < 5


def test_every_input_model_takes_approvals_and_refuses_unknown_fields() -> None:
    for spec in http_fetch.TOOLS:
        schema = spec.input_schema()
        assert {"request_approval", "approval_id", "url", "headers", "max_bytes", "timeout_seconds"} <= set(
            schema["properties"]), spec.name
        assert schema["additionalProperties"] is False


@pytest.mark.parametrize("transport", ["memory", "jsonrpc"])
async def test_a_cancelled_fetch_reports_bytes_received_then_hangs_up(
        dsn: str, site: Site, transport: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    fast_progress(monkeypatch)
    async with LongTail(dsn, http_allow=["127.0.0.1"], http_timeout=60) as app, \
            session(transport, app, "http-fetch") as c:
        reports = await cancel_after_progress(c, "fetch_text", {"url": site.url("/trickle")}, reports=2,
                                              when=lambda seen: (seen[-1][2] or "").endswith(" bytes received"))
        closed = await anyio.to_thread.run_sync(site.hung_up.wait, 5)
        assert closed, "the fetch closed its connection when the call was cancelled"
    assert growing(reports) and all(total == 60 for _, total, _ in reports), reports
    assert reports[-1][2] is not None and reports[-1][2].startswith(f"fetching {site.url('/trickle')}: ")
    assert reports[-1][2].endswith(" bytes received"), reports
    assert loud(caplog.records) == []

"""The fetch core against a local site on 127.0.0.1 (and ::1): pinning, redirects, limits, Markdown.

`Site` and the `site` fixture are shared by the other test_http_fetch_* files. Every connection
any of these tests opens goes to loopback; names resolve through an injected table, never real DNS.
"""

import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from longtail_mcp.errors import InvalidInput, Unavailable
from longtail_mcp.fetch.client import Policy, fetch
from longtail_mcp.fetch.guard import AllowList, IPAddress, Resolver
from longtail_mcp.fetch.reading import page_of
from longtail_mcp.fetch.text import decode, html_to_markdown

pytestmark = pytest.mark.anyio

PAGE = """<!doctype html><html><head><title>Local  page</title><style>body{color:red}</style>
<script>document.write("<p>injected</p>")</script></head><body>
<nav><a href="/">Home</a> <a href="/about">About</a></nav>
<main><h1>Welcome</h1><p>The local site answers <b>only</b> on loopback &amp; nowhere else.</p>
<p>Read <a href="/docs/intro">the introduction</a> first.</p><ul><li>first</li><li>second</li></ul></main>
<footer>footer text</footer></body></html>"""
ARTICLE = """<!doctype html><html><head><title>Guide</title><script>var tracking = 1;</script>
<style>.x{display:none}</style></head><body><nav>Home | Docs</nav><article>
<h2>Install</h2><p>Run this, then read the <a href="notes#a">notes</a>:</p>
<pre><code class="language-python">def greet(name):
    return f"hello {name}"  # indented, with  two spaces
</code></pre>
<ol start="3"><li>third step</li><li>fourth step</li></ol>
<table><tr><th>Flag</th><th>Meaning</th></tr><tr><td>-v</td><td>verbose output</td></tr></table>
<p hidden>hidden words</p><div style="display: none">invisible words</div>
<p><a href="javascript:alert(1)">click</a> <img src="/img/pic.png" alt="a  picture"></p>
</article><aside>related links</aside></body></html>"""


class Site:
    """A tiny HTTP site on 127.0.0.1 (and ::1 when the machine has it) recording every request it gets."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, str]] = []
        self.seen_headers: list[dict[str, str]] = []
        self.release = threading.Event()  # frees /slow handlers at teardown
        self.hung_up = threading.Event()  # a client closed /trickle's connection
        self.servers: list[ThreadingHTTPServer] = []
        self.port = 0
        self.port6: int | None = None

    @property
    def paths(self) -> list[str]:
        return [path for _method, path in self.hits]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self.servers.append(self._serve(socket.AF_INET, "127.0.0.1"))
        self.port = self.servers[0].server_address[1]
        try:
            self.servers.append(self._serve(socket.AF_INET6, "::1"))
            self.port6 = self.servers[-1].server_address[1]
        except OSError:
            self.port6 = None

    def stop(self) -> None:
        self.release.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def _serve(self, family: socket.AddressFamily, host: str) -> ThreadingHTTPServer:
        site = self

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                site.route(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

        server = Server((host, 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return server

    def route(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.hits.append((h.command, parts.path))
        self.seen_headers.append({k.lower(): v for k, v in h.headers.items()})
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if parts.path == "/json":
            self.send(h, 200, json.dumps({"hello": "world", "n": 1}).encode(), "application/json")
        elif parts.path == "/html":
            self.send(h, 200, PAGE.encode(), "text/html; charset=utf-8")
        elif parts.path == "/article":
            self.send(h, 200, ARTICLE.encode(), "text/html; charset=utf-8")
        elif parts.path == "/long":
            self.send(h, 200, "".join(f"{i:04d} " for i in range(int(query.get("n", 1000)))).encode(),
                      "text/plain; charset=utf-8")
        elif parts.path == "/text":
            self.send(h, 200, b"plain words\nsecond line", "text/plain; charset=utf-8")
        elif parts.path == "/binary":
            self.send(h, 200, bytes(range(256)), "application/octet-stream")
        elif parts.path == "/big":
            self.send(h, 200, b"x" * int(query.get("n", 1_000_000)), "text/plain")
        elif parts.path == "/slow":
            self.release.wait(10)
            self.send(h, 200, b"late", "text/plain")
        elif parts.path == "/trickle":  # a body that never ends, a little at a time, until the client hangs up
            h.send_response(200)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", str(1 << 30))
            h.end_headers()
            try:
                while not self.release.wait(0.05):
                    h.wfile.write(b"x" * 1000)
            except OSError:
                self.hung_up.set()
        elif parts.path == "/redirect":
            h.send_response(int(query.get("status", 302)))
            h.send_header("Location", query["to"])
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif parts.path == "/loop":
            n = int(query.get("n", 0))
            h.send_response(302)
            h.send_header("Location", f"/loop?n={n + 1}")
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif parts.path == "/echo":
            seen = {"method": h.command, "headers": self.seen_headers[-1], "body": body.decode()}
            self.send(h, 200, json.dumps(seen).encode(), "application/json")
        elif parts.path == "/secret":
            self.send(h, 200, b"the secret", "text/plain")
        else:
            self.send(h, 404, b"not found", "text/plain")

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    s.start()
    try:
        yield s
    finally:
        s.stop()


def table(entries: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    """A DNS stand-in: names resolve only through `entries` (real DNS is never asked)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if calls is not None:
            calls.append(host)
        if host not in entries:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the test table")
        return [ipaddress.ip_address(a) for a in entries[host]]

    return resolve


LOCAL_NAMES = {"localhost": ["127.0.0.1"], "allowed.test": ["127.0.0.1"], "evil.test": ["127.0.0.1"],
               "mixed.test": ["127.0.0.1", "8.8.8.8"], "secure.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}


def policy(*allow: str, max_bytes: int = 1_000_000, timeout: float = 5, resolve: Resolver | None = None,
           verify: ssl.SSLContext | bool = True) -> Policy:
    return Policy(AllowList(allow), max_bytes=max_bytes, timeout=timeout, resolve=resolve or table(LOCAL_NAMES),
                  verify=verify)


async def test_a_pinned_request_sends_the_original_host_and_resolves_once_per_hop(site: Site) -> None:
    calls: list[str] = []
    with anyio.fail_after(10):
        got = await fetch(policy("allowed.test", resolve=table(LOCAL_NAMES, calls)), "GET",
                          f"http://Allowed.Test.:{site.port}/echo")
    seen = json.loads(got.body)
    assert seen["headers"]["host"] == f"allowed.test:{site.port}"
    assert seen["headers"]["user-agent"] == "longtail-mcp"
    assert calls == ["allowed.test"], "one resolution, then the connection goes to the checked address"
    assert got.final_url == f"http://allowed.test:{site.port}/echo"


async def test_redirects_are_followed_and_listed_with_post_becoming_get(site: Site) -> None:
    with anyio.fail_after(10):
        got = await fetch(policy("127.0.0.1"), "POST", site.url("/redirect?to=/echo&status=302"), content=b"data",
                          headers={"Content-Type": "text/plain", "X-Trace": "t1"})
        kept = await fetch(policy("127.0.0.1"), "PUT", site.url("/redirect?to=/echo&status=307"), content=b"data")
    seen = json.loads(got.body)
    assert seen["method"] == "GET" and seen["body"] == "" and "content-type" not in seen["headers"]
    assert seen["headers"]["x-trace"] == "t1", "same origin: the caller's headers follow"
    assert [(h.status, urlsplit(h.url).path) for h in got.redirects] == [(302, "/redirect")]
    assert json.loads(kept.body)["method"] == "PUT" and json.loads(kept.body)["body"] == "data"


async def test_credentials_do_not_follow_a_redirect_to_another_origin(site: Site) -> None:
    to = f"http://allowed.test:{site.port}/echo"
    with anyio.fail_after(10):
        got = await fetch(policy("127.0.0.1", "allowed.test"), "GET", site.url(f"/redirect?to={to}"),
                          headers={"Authorization": "Bearer s3cret", "Cookie": "a=b", "X-Api-Key": "k",
                                   "Accept": "application/json"})
    headers = json.loads(got.body)["headers"]
    assert headers["host"] == f"allowed.test:{site.port}" and headers["accept"] == "application/json"
    assert not {"authorization", "cookie", "x-api-key"} & set(headers)
    assert site.seen_headers[0]["authorization"] == "Bearer s3cret", "the first origin got them"


async def test_follow_redirects_false_returns_the_redirect_itself(site: Site) -> None:
    with anyio.fail_after(10):
        got = await fetch(policy("127.0.0.1"), "GET", site.url("/redirect?to=/secret"), follow_redirects=False)
    assert got.status == 302 and got.header("location") == "/secret" and site.paths == ["/redirect"]


async def test_connection_headers_cannot_be_set(site: Site) -> None:
    for name in ("Host", "host", "Connection", "Transfer-Encoding", "Content-Length", "Upgrade", "Proxy-Authorization",
                 "Bad Name", "X-Split", "X-Accent"):
        value = {"X-Split": "a\r\nInjected: 1", "X-Accent": "caf\u00e9"}.get(name, "x")
        with anyio.fail_after(5), pytest.raises(InvalidInput):
            await fetch(policy("127.0.0.1"), "GET", site.url("/echo"), headers={name: value})
    assert site.hits == []


async def test_the_body_is_cut_at_max_bytes_and_flagged(site: Site) -> None:
    with anyio.fail_after(10):
        cut = await fetch(policy("127.0.0.1", max_bytes=1000), "GET", site.url("/big?n=500000"))
        whole = await fetch(policy("127.0.0.1", max_bytes=1000), "GET", site.url("/big?n=1000"))
    assert cut.truncated and cut.body == b"x" * 1000
    assert not whole.truncated and len(whole.body) == 1000


async def test_an_unanswered_request_times_out_as_unavailable(site: Site) -> None:
    started = anyio.current_time()
    with anyio.fail_after(5), pytest.raises(Unavailable, match=r"did not answer within 0\.3 s"):
        await fetch(policy("127.0.0.1", timeout=0.3), "GET", site.url("/slow"))
    assert anyio.current_time() - started < 3


async def test_a_refused_connection_and_an_unknown_name_are_unavailable(site: Site) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound, never listening: connections are refused
        with anyio.fail_after(5), pytest.raises(Unavailable, match="could not connect"):
            await fetch(policy("127.0.0.1"), "GET", f"http://127.0.0.1:{closed}/")
    with anyio.fail_after(5), pytest.raises(Unavailable, match=r"could not resolve nowhere\.test"):
        await fetch(policy(), "GET", "http://nowhere.test/")


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}"], check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
async def test_https_is_pinned_to_the_checked_address_but_verified_against_the_host_name(site: Site,
                                                                                      tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "secure.test")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    site.servers[0].socket = server_tls.wrap_socket(site.servers[0].socket, server_side=True)
    trust = ssl.create_default_context(cafile=str(cert))
    with anyio.fail_after(10):
        got = await fetch(policy("secure.test", "other.test", verify=trust), "GET",
                          f"https://secure.test:{site.port}/echo")
        assert json.loads(got.body)["headers"]["host"] == f"secure.test:{site.port}"
        with pytest.raises(Unavailable, match=r"other\.test"):  # same address, wrong name: the certificate fails
            await fetch(policy("secure.test", "other.test", verify=trust), "GET", f"https://other.test:{site.port}/")
    assert got.final_url.startswith("https://secure.test:")


def test_html_becomes_markdown_with_title_and_main_text_without_scripts_styles_or_navigation() -> None:
    page = html_to_markdown(PAGE, base_url="http://site.test/a/", links=True)
    assert page.title == "Local page"
    assert page.text.startswith("# Welcome\n\nThe local site answers **only** on loopback & nowhere else.")
    assert "[the introduction](http://site.test/docs/intro)" in page.text and "- first\n- second" in page.text
    assert not any(word in page.text for word in ("injected", "color", "Home", "About", "footer text"))
    plain = html_to_markdown(PAGE).text
    assert "Read the introduction first." in plain and "](" not in plain


def test_markdown_keeps_code_blocks_list_numbers_and_tables() -> None:
    page = html_to_markdown(ARTICLE * 2, base_url="http://site.test/guide/", links=True)
    assert page.title == "Guide"
    assert ('```python\ndef greet(name):\n    return f"hello {name}"  # indented, with  two spaces\n```'
            in page.text), "a code block keeps its language, indentation and spacing"
    assert "3. third step\n4. fourth step" in page.text, "an ordered list keeps its numbers"
    assert "| Flag | Meaning |\n| --- | --- |\n| -v | verbose output |" in page.text
    assert "[notes](http://site.test/guide/notes#a)" in page.text
    assert "![a picture](http://site.test/img/pic.png)" in page.text
    assert "click" in page.text and "javascript:" not in page.text, "a javascript: link keeps only its text"
    for dropped in ("tracking", "display", "Home | Docs", "hidden words", "invisible words", "related links"):
        assert dropped not in page.text, dropped


def test_a_page_without_title_uses_its_first_heading_and_meta_charset_decodes_it() -> None:
    body = '<html><head><meta charset="iso-8859-1"></head><body><h1>Caf\xe9</h1><p>ol\xe9</p></body>'.encode("latin-1")
    page = html_to_markdown(decode(body, None, html=True))
    assert page.title == "Café" and page.text == "# Café\n\nolé"


def test_a_page_nested_deeper_than_the_converter_recurses_still_gives_its_words() -> None:
    page = html_to_markdown("<body><p>before</p>" + "<div>" * 5000 + "deep words" + "</div>" * 5000 + "</body>")
    assert "before" in page.text and "deep words" in page.text


def test_text_is_cut_into_pages_with_the_start_of_the_next() -> None:
    first = page_of("abcdefghij", 0, 4)
    assert (first.text, first.total, first.next_start) == ("abcd", 10, 4)
    last = page_of("abcdefghij", 8, 4)
    assert (last.text, last.next_start) == ("ij", None)
    assert page_of("abcdefghij", 6, 4).next_start is None, "a page ending at the end is the last"
    assert (page_of("abc", 10, 4).text, page_of("abc", 10, 4).next_start) == ("", None)
    with pytest.raises(InvalidInput):
        page_of("abc", 0, 0)

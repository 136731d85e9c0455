"""One HTTP request with its redirects, each hop checked by the guard and pinned to the address it checked."""

import functools
import ipaddress
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin

import anyio
import httpx2

from longtail_mcp.config import Settings
from longtail_mcp.errors import InvalidInput, Unavailable
from longtail_mcp.fetch.guard import AllowList, IPAddress, Resolver, Target, check, parse_url, system_resolve

logger = logging.getLogger(__name__)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "longtail-mcp"
# The caller may not set these: the connection is ours (Host is pinned, framing is computed).
FORBIDDEN_HEADERS = frozenset({
    "host", "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade", "content-length", "expect",
})
# What survives a redirect to another origin: anything else may be a credential (Authorization,
# Cookie, X-Api-Key, ...), and the new origin was chosen by the server, not by the caller.
CROSS_ORIGIN_HEADERS = frozenset({"accept", "accept-language", "user-agent", "content-type", "content-language",
                                  "cache-control", "pragma"})
BODY_HEADERS = frozenset({"content-type", "content-language", "content-encoding", "content-location"})
ADDRESSES_TRIED = 4  # a name's addresses tried in turn when a connection is refused


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The system's CA bundle, loaded once: building it costs ~40 ms of CPU, and every hop has a client of its own."""
    return httpx2.create_ssl_context(trust_env=False)


@dataclass(frozen=True)
class Policy:
    """What a fetch may reach and how much it may take; `from_settings` bounds caller choices by Settings."""

    allow: AllowList
    max_bytes: int
    timeout: float
    resolve: Resolver = system_resolve
    verify: ssl.SSLContext | bool = field(default_factory=lambda: tls_context())

    @classmethod
    def from_settings(cls, settings: Settings, *, max_bytes: int | None = None, timeout: float | None = None,
                      resolve: Resolver = system_resolve) -> "Policy":
        """The caller's limits, capped by `http_max_bytes` and `http_timeout` (a larger ask gets the cap)."""
        return cls(AllowList(settings.http_allow),
                   max_bytes=min(max_bytes or settings.http_max_bytes, settings.http_max_bytes),
                   timeout=min(timeout or settings.http_timeout, settings.http_timeout), resolve=resolve)


@dataclass(frozen=True)
class Hop:
    """One redirect followed: the URL that answered and its status."""

    url: str
    status: int


@dataclass
class Fetched:
    """The final response. `truncated`: the body was longer than max_bytes and was cut there."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    final_url: str
    redirects: list[Hop] = field(default_factory=list)
    truncated: bool = False
    elapsed: float = 0.0

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for param in (self.header("content-type") or "").split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return None


@dataclass
class Transfer:
    """How far a fetch has got, for progress reports: the URL being asked now and its body bytes read so far."""

    url: str = ""
    received: int = 0


def request_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's headers, checked, with our User-Agent unless they set one.

    Raises:
        InvalidInput: a header the connection owns (Host, hop-by-hop, Content-Length), or a malformed one.
    """
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not name or not name.isascii() or any(c in name for c in " \t\r\n:()<>@,;\\\"/[]?={}"):
            raise InvalidInput(f"malformed header name {name!r}")
        if "\r" in value or "\n" in value or "\x00" in value:
            raise InvalidInput(f"header {name} has a line break in its value")
        if not value.isascii():
            raise InvalidInput(f"header {name} has non-ASCII characters in its value; percent-encode them")
        if name.lower() in FORBIDDEN_HEADERS:
            raise InvalidInput(f"header {name} may not be set: the connection sets it")
        if name.lower() in {k.lower() for k in out}:
            raise InvalidInput(f"header {name} given twice")
        out[name] = value
    if not any(k.lower() == "user-agent" for k in out):
        out["User-Agent"] = USER_AGENT
    return out


async def fetch(policy: Policy, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                content: bytes | None = None, follow_redirects: bool = True, approved: bool = False,
                transfer: Transfer | None = None) -> Fetched:
    """Send one request, following up to 5 redirects, every hop checked then pinned to its checked address.

    `approved=True` skips the address policy for hops on the approved URL's own origin (an approver
    allowed that call); a redirect elsewhere is checked as usual. The body is cut at `max_bytes`
    (`truncated=True`); the whole exchange, redirects included, must finish within `timeout`. `transfer`,
    if given, follows the URL and the bytes received (for progress). Cancelling the caller closes the
    connection: the request stops there.

    Raises:
        InvalidInput: a bad URL, method or header; a redirect to another scheme; more than 5 redirects.
        PolicyDenied: a hop's host is or resolves to an internal address (rule "internal_address").
        Unavailable: name resolution, connection or TLS failed, or the timeout ran out.
    """
    method = method.upper()
    if method not in METHODS:
        raise InvalidInput(f"method {method} is not one of {', '.join(METHODS)}")
    target = parse_url(url)
    approved_origin = target.origin if approved else None
    sent = request_headers(headers)
    started = anyio.current_time()
    hops: list[Hop] = []
    transfer = transfer if transfer is not None else Transfer()
    try:
        with anyio.fail_after(policy.timeout):
            for _ in range(MAX_REDIRECTS + 1):
                addresses = await check(target, policy.allow, resolve=policy.resolve,
                                        approved=target.origin == approved_origin)
                transfer.url, transfer.received = target.url, 0
                response = await _send_pinned(policy, target, addresses, method, sent, content, transfer)
                location = response.header("location")
                if not follow_redirects or response.status not in REDIRECTS or not location:
                    response.redirects = hops
                    response.elapsed = anyio.current_time() - started
                    return response
                hops.append(Hop(target.url, response.status))
                if len(hops) > MAX_REDIRECTS:
                    break
                following = _redirect_target(target, location)
                if (response.status in (301, 302) and method == "POST") or (
                        response.status == 303 and method not in ("GET", "HEAD")):
                    method, content = "GET", None  # as browsers do (Fetch standard)
                    sent = {k: v for k, v in sent.items() if k.lower() not in BODY_HEADERS}
                if following.origin != target.origin:
                    sent = {k: v for k, v in sent.items() if k.lower() in CROSS_ORIGIN_HEADERS}
                target = following
            raise InvalidInput(f"more than {MAX_REDIRECTS} redirects (the last from {target.host}); call again "
                               "with the final URL, or with follow_redirects=false")
    except TimeoutError:
        raise Unavailable(f"{target.host} did not answer within {policy.timeout:g} s") from None


def _redirect_target(current: Target, location: str) -> Target:
    try:
        return parse_url(urljoin(current.url, location))
    except InvalidInput as exc:
        raise InvalidInput(f"{current.host} redirected to a URL that is not fetched: {exc.message}") from None


async def _send_pinned(policy: Policy, target: Target, addresses: list[IPAddress], method: str,
                       headers: dict[str, str], content: bytes | None, transfer: Transfer) -> Fetched:
    """Connect to the checked addresses in turn (never resolving again), sending the original Host and SNI."""
    error: Exception | None = None
    for address in addresses[:ADDRESSES_TRIED]:
        try:
            return await _send_to(policy, target, address, method, headers, content, transfer)
        except httpx2.ConnectError as exc:
            logger.debug("connect to %s (%s) failed: %s", target.host, address, type(exc).__name__)
            error = exc
    raise Unavailable(f"could not connect to {target.host}: {error or 'no address'}")


async def _send_to(policy: Policy, target: Target, address: IPAddress, method: str,
                   headers: dict[str, str], content: bytes | None, transfer: Transfer) -> Fetched:
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    url = f"{target.scheme}://{host}:{target.port}{target.target}"
    # sni_hostname: TLS names the original host, and the certificate is verified against it.
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    # A client per hop: no connection is shared between hosts, no cookie carried between hops;
    # trust_env=False so that no proxy setting sends the request anywhere but the checked address.
    transport = httpx2.AsyncHTTPTransport(verify=policy.verify, trust_env=False)
    async with httpx2.AsyncClient(transport=transport, trust_env=False, follow_redirects=False,
                                  timeout=policy.timeout) as http:
        try:
            request = http.build_request(method, url, headers={**headers, "Host": target.authority},
                                         content=content, extensions=extensions)
        except (httpx2.InvalidURL, ValueError) as exc:
            raise InvalidInput(f"cannot send this request to {target.host}: {exc}") from None
        try:
            response = await http.send(request, stream=True)
        except httpx2.TimeoutException:
            raise TimeoutError from None
        except httpx2.ConnectError:
            raise
        except httpx2.HTTPError as exc:
            raise Unavailable(f"request to {target.host} failed: {type(exc).__name__}: {exc}") from None
        try:
            body, truncated = await _read(response, policy.max_bytes, transfer)
        except httpx2.TimeoutException:
            raise TimeoutError from None
        except httpx2.HTTPError as exc:
            raise Unavailable(f"reading the response of {target.host} failed: {type(exc).__name__}: {exc}") from None
        finally:
            await response.aclose()
    logger.debug("%s %s://%s:%s (%s) -> %s", method, target.scheme, target.host, target.port, address,
                 response.status_code)
    return Fetched(status=response.status_code, headers=list(response.headers.multi_items()), body=body,
                   final_url=target.url, truncated=truncated)


async def _read(response: httpx2.Response, limit: int, transfer: Transfer) -> tuple[bytes, bool]:
    """The body, decoded (gzip...) and cut at `limit` bytes: reading stops there (`transfer` counts it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
        transfer.received = size
    return b"".join(chunks), False


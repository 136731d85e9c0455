"""The family behind one HTTP endpoint: streamable HTTP at /mcp and legacy SSE at /sse, with API keys.

Every HTTP request must carry `Authorization: Bearer ltk_...` (an API key; its account's roles and
the key's scope apply) unless the server runs in loopback dev mode, where calls act as the local
operator. Both protocol eras are served by the SDK's session manager (the 2025-11-25 handshake and
the stateless 2026-07-28 era).
"""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from mcp.server import Server, ServerRequestContext
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from longtail_mcp.config import LOOPBACK
from longtail_mcp.errors import LongtailError, Unauthenticated
from longtail_mcp.humans.identity import SYSTEM, Principal, authenticate, split_key
from longtail_mcp.tools.spec import Services


def transport_security(host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection for a server listening on `host`: on a loopback address, every request
    must name a loopback Host (with a port) and, if it has an Origin, a loopback Origin. Behind a real
    hostname (serve --host 0.0.0.0 behind a proxy) the proxy decides which names reach us."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=host in LOOPBACK,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


class HostGuard:
    """ASGI middleware: the Host/Origin check of /mcp (`transport_security`) for every route of the app,
    so a DNS-rebinding page can read neither /events nor /health."""

    def __init__(self, app: ASGIApp, host: str) -> None:
        self.app = app
        self.check = TransportSecurityMiddleware(transport_security(host))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = await self.check.validate_request(Request(scope, receive), is_post=False)
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


KEY_CACHE_SECONDS = 5.0


class BearerAuth:
    """ASGI middleware: the request's principal from its API key (or the dev principal), else 401.

    A verified key is remembered for KEY_CACHE_SECONDS (so a session's calls cost no database round
    trips); a revocation, expiry or role change therefore takes effect within that time.
    """

    def __init__(self, app: ASGIApp, client: Services, *, dev: bool, cache_seconds: float = KEY_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.client = client
        self.dev = dev
        self.cache_seconds = cache_seconds
        self.clock = clock  # injectable, so a test can pass the cache period without waiting it out
        self._verified: dict[str, tuple[float, Principal]] = {}

    async def _principal(self, token: str) -> Principal:
        now = self.clock()
        hit = self._verified.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await authenticate(self.client.db, token)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (now + self.cache_seconds, principal)
        return principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal: Principal | None = SYSTEM if self.dev else None
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        if header:
            scheme, _, token = header.partition(" ")
            try:
                if scheme.lower() != "bearer" or not token:
                    raise Unauthenticated("use Authorization: Bearer <API key>")
                principal = await self._principal(token.strip())
            except LongtailError as exc:
                await self.refuse(scope, receive, send, exc.message)
                return
        if principal is None:
            await self.refuse(scope, receive, send, "an API key is required: Authorization: Bearer ltk_...")
            return
        scope.setdefault("state", {})["principal"] = principal
        if header:  # for a long-lived response (an event stream): who this key stands for now
            scope["state"]["reauthenticate"] = partial(self._principal, token.strip())
        if header:
            # The SDK binds an MCP session (streamable HTTP and SSE) to the user that opened it: a
            # request carrying another key is answered as if the session did not exist.
            key_id = split_key(token.strip())[0]
            scope["user"] = AuthenticatedUser(AccessToken(token=key_id, client_id=key_id, subject=principal.id,
                                                          scopes=[principal.scope]))
        await self.app(scope, receive, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        """Answer 401 with `message` (a door with its own error shape, like /api/v1, overrides this)."""
        await _refuse(scope, receive, send, message)


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    response = JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    await response(scope, receive, send)


async def request_principal(ctx: ServerRequestContext[Any]) -> Principal:
    """The principal BearerAuth attached to the HTTP request that carried this MCP message."""
    request = ctx.request
    state = getattr(request, "state", None) if request is not None else None
    principal = getattr(state, "principal", None) if state is not None else None
    if principal is None and isinstance(request, Request):
        principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise Unauthenticated("no authenticated principal on this request")
    return principal


def mcp_routes(server: Server[Any], client: Services, *, dev: bool,
               host: str) -> tuple[list[BaseRoute], Callable[[], Any]]:
    """Routes for /mcp (streamable HTTP) and /sse + /messages/ (legacy SSE), and the lifespan to run."""
    security = transport_security(host)
    manager = StreamableHTTPSessionManager(app=server, security_settings=security)
    sse = SseServerTransport("/messages/", security_settings=security)

    async def sse_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        async with sse.connect_sse(scope, receive, send) as (read, write):
            await server.run(read, write, server.create_initialization_options())

    routes: list[BaseRoute] = [
        Route("/mcp", endpoint=BearerAuth(StreamableHTTPASGIApp(manager), client, dev=dev)),
        Route("/sse", endpoint=BearerAuth(sse_endpoint, client, dev=dev)),
        Mount("/messages/", app=BearerAuth(sse.handle_post_message, client, dev=dev)),
    ]

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with manager.run():
            yield

    return routes, lifespan

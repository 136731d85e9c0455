"""Client sessions to registered MCP servers: one live session per server, shared by concurrent calls,
closed when idle, started again after the server died.

`RemoteSessions.run` holds the sessions in a task group for the app's lifetime (`Client` starts it
on `async with`, `serve` and `worker` in their own task groups); cancelling it closes every session,
stopping the stdio servers it started. The SDK's client is a context manager that must be entered and
left in one task, so each session lives in a task of its own that keeps it open until told to close;
callers in other tasks send their requests on it (an MCP session multiplexes requests). Without a
running pool a call opens a session for itself, as before there was one.
"""

import hashlib
import importlib
import json
import logging
import math
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread

from longtail_mcp.errors import InvalidInput, Unavailable

if TYPE_CHECKING:  # tools.spec imports this module
    from longtail_mcp.tools.spec import Progress

logger = logging.getLogger(__name__)
CONNECT_SECONDS = 30.0
# What a registered stdio server inherits from this process: enough to find programs and run them in
# the user's locale, nothing that carries a secret or our configuration.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR",
                 "SYSTEMROOT")


def child_env(registered: dict[str, str] | None) -> dict[str, str]:
    """The environment a registered stdio server starts with."""
    base = {k: v for k in INHERITED_ENV if (v := os.environ.get(k))}
    return {**base, **(registered or {})}


CLIENT_MODULES = ("mcp", "mcp.client.stdio", "mcp.client.sse", "mcp.client.streamable_http")


async def load_client() -> None:
    """Import the MCP client stack, in a thread the first time. It costs about a second: only processes
    that reach a registered server pay it (`import longtail_mcp` stays light), and imported inside a
    running step it would stall the event loop that long (a worker's 1 s lease ran out and a tool call
    that had been made was made again)."""
    if not all(name in sys.modules for name in CLIENT_MODULES):
        await anyio.to_thread.run_sync(lambda: [importlib.import_module(name) for name in CLIENT_MODULES])


def transport(server: dict[str, Any]) -> Any:
    """The SDK transport that reaches a registered server (a stdio command, an HTTP or SSE URL); call
    `load_client()` first."""
    from mcp import StdioServerParameters
    from mcp.client.sse import sse_client
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client

    if server["transport"] == "stdio":
        return stdio_client(StdioServerParameters(command=server["command"][0], args=list(server["command"][1:]),
                                                  env=child_env(server.get("env"))))
    if server["transport"] == "sse":
        return sse_client(server["url"])
    if server["transport"] == "http":
        return streamable_http_client(server["url"])
    raise InvalidInput(f"server {server['name']!r} is built in; call its tools directly")


@asynccontextmanager
async def connect(server: dict[str, Any], transport_: Any = None) -> AsyncIterator[Any]:
    """An MCP client session (`mcp.Client`) to a registered server, for as long as the block runs.

    Raises:
        Unavailable: it could not be reached.
    """
    await load_client()
    from mcp import Client as McpClient

    entered = False
    try:
        async with McpClient(transport_ if transport_ is not None else transport(server)) as client:
            entered = True
            yield client
    except Exception as exc:
        if entered:
            raise
        raise Unavailable(f"cannot connect to MCP server {server['name']!r}: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    """What went wrong, for a message: the first real error inside the SDK's task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__


def connection_key(server: dict[str, Any]) -> str:
    """What a session was opened with: registering the server again with other details means a new one."""
    details = [server["transport"], server.get("command"), server.get("url"), server.get("env") or {}]
    return hashlib.sha256(json.dumps(details, sort_keys=True, default=str).encode()).hexdigest()


def connection_lost(exc: BaseException) -> bool:
    """Whether a failed request means the session is gone (process exited, connection closed or refused),
    as opposed to an error answer from a live server."""
    from mcp import MCPError
    from mcp.types import CONNECTION_CLOSED, INVALID_REQUEST

    if isinstance(exc, MCPError):  # a streamable HTTP server that restarted no longer knows the session
        return exc.code == CONNECTION_CLOSED or (exc.code == INVALID_REQUEST and exc.error.message ==
                                                 "Session terminated")
    return isinstance(exc, (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError))


class _Watched:
    """A transport's read stream that reports its end: the server's stdout closed (it exited) or the
    connection did. The SDK's dispatcher reads it like the stream it wraps."""

    def __init__(self, inner: Any, on_end: Any) -> None:
        self.inner, self.on_end = inner, on_end

    @property
    def last_context(self) -> Any:
        return getattr(self.inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self.inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self.on_end()
            raise

    def __aiter__(self) -> "_Watched":
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> "_Watched":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@asynccontextmanager
async def _watched(inner: Any, on_end: Any) -> AsyncIterator[tuple[Any, Any]]:
    async with inner as (read, write):
        yield _Watched(read, on_end), write


@dataclass(eq=False)
class _Session:
    """One server's session and the task holding it open."""

    name: str
    key: str
    client: Any = None
    error: str = ""  # why it could not be opened
    usable: bool = True  # False once it is lost or closing: no new request is sent on it
    lost: bool = False
    retired: bool = False  # replaced by a new registration: close once its calls are done
    busy: int = 0
    last_used: float = 0.0
    ready: anyio.Event = field(default_factory=anyio.Event)
    wake: anyio.Event = field(default_factory=anyio.Event)

    def mark_lost(self) -> None:
        self.lost, self.usable = True, False
        self.wake.set()


class RemoteSessions:
    """The live client sessions of one process, one per registered server (see the module docstring)."""

    def __init__(self, idle_seconds: float = 300.0) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, _Session] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    def servers(self) -> list[str]:
        """The servers with a live session now."""
        return sorted(name for name, s in self._sessions.items() if s.usable and s.client is not None)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Hold sessions until cancelled, then close them all (stdio servers are stopped, not left behind)."""
        if self._tg is not None:
            raise RuntimeError("these sessions are already running")
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self._tg = None  # later calls connect for themselves; the holders are being cancelled

    async def call(self, server: dict[str, Any], tool: str, args: dict[str, Any], *, repeatable: bool,
                   meta: dict[str, Any] | None = None, progress: "Progress | None" = None) -> Any:
        """Call `tool` on the server's session (the SDK's `CallToolResult`), opening one when there is none.
        The server's progress notifications for this call go to `progress` (if given).

        A session found dead before the call is replaced before anything is sent. A session lost during
        the call is dropped; the call is sent again on a fresh one only if it is `repeatable` (the tool is
        marked read-only or idempotent), since the server may have run it before it died.

        Raises:
            Unavailable: the server cannot be reached, or was lost during a call that is not repeatable.
        """
        if self._tg is None:  # no pool running in this process: a session for this call alone
            async with connect(server) as client:
                return await client.call_tool(tool, args, progress_callback=progress, meta=meta)
        for attempt in (1, 2):
            session = await self._session(server)  # counted busy from here: it is not closed under the call
            try:
                return await session.client.call_tool(tool, args, progress_callback=progress, meta=meta)
            except Exception as exc:
                if not (session.lost or connection_lost(exc)):
                    raise
                session.mark_lost()
                logger.warning("MCP server %s: connection lost during %s (%s)", server["name"], tool, reason(exc))
                if not repeatable or attempt == 2:
                    again = " again" if attempt == 2 else ""
                    why = "" if repeatable else (", so the call may or may not have run and was not repeated "
                                                 "(the tool is not marked read-only or idempotent)")
                    raise Unavailable(f"MCP server {server['name']!r} died or its connection broke{again} during "
                                      f"{tool}{why}; the next call starts a new session") from exc
            finally:
                session.busy -= 1
                session.last_used = anyio.current_time()
                session.wake.set()
        raise AssertionError("unreachable")

    async def _session(self, server: dict[str, Any]) -> _Session:
        """The server's live session, started (once, however many callers wait for it) if there is none,
        with this caller counted in `busy`."""
        if self._tg is None:
            raise Unavailable(f"MCP server {server['name']!r}: this process is closing its sessions")
        name, key = server["name"], connection_key(server)
        session = self._sessions.get(name)
        if session is not None and session.key != key:  # registered again: new calls go to a new session
            session.retired, session.usable = True, False
            session.wake.set()
        if session is None or not session.usable:
            session = _Session(name, key, last_used=anyio.current_time())
            self._sessions[name] = session
            self._tg.start_soon(self._hold, server, session, name=f"MCP session {name}")
        session.busy += 1
        try:
            await session.ready.wait()
        except BaseException:  # cancelled while it connects
            session.busy -= 1
            session.wake.set()
            raise
        if session.client is None:
            session.busy -= 1
            raise Unavailable(session.error or f"MCP server {name!r}: the session closed as it opened")
        return session

    async def _hold(self, server: dict[str, Any], s: _Session) -> None:
        """Open the session, keep it open while it is used, close it when idle, lost or retired."""
        try:
            # The deadline bounds connecting only; it is lifted once connected. (A scope around the
            # whole session: the client's own scopes are left in order.)
            with anyio.CancelScope(deadline=anyio.current_time() + CONNECT_SECONDS) as connecting:
                await load_client()
                async with connect(server, _watched(transport(server), s.mark_lost)) as client:
                    connecting.deadline = math.inf
                    s.client, s.last_used = client, anyio.current_time()
                    s.ready.set()
                    await self._until_done(s)
                    s.usable = False
            if connecting.cancelled_caught and s.client is None:
                s.error = f"MCP server {server['name']!r} did not answer within {CONNECT_SECONDS:.0f}s"
        except Exception as exc:  # the session ends; callers see its requests fail, or this error
            if s.client is None:
                s.error = exc.message if isinstance(exc, Unavailable) else (
                    f"cannot connect to MCP server {server['name']!r}: {reason(exc)}")
            else:
                logger.warning("MCP server %s: session ended: %s", server["name"], reason(exc))
        finally:
            s.usable = False
            s.ready.set()
            if self._sessions.get(s.name) is s:
                del self._sessions[s.name]

    async def _until_done(self, s: _Session) -> None:
        while not s.lost:
            if s.busy == 0 and (s.retired or anyio.current_time() - s.last_used >= self.idle_seconds):
                return
            s.wake = anyio.Event()  # set by a finished call, a lost stream or a retirement
            wait = self.idle_seconds - (anyio.current_time() - s.last_used) if s.busy == 0 else math.inf
            with anyio.move_on_after(wait):
                await s.wake.wait()

"""The scripted model's server: a local Messages API (`POST /v1/messages`) answering from a script (agents/script.py).

Clients reach it through the real SDK: `anthropic.AsyncAnthropic(base_url=server.url, api_key="scripted",
max_retries=0)`. `GET /scripted/requests` lists the request bodies it received and `DELETE` forgets them, so a
test in another process can count the calls.
"""

import asyncio
import logging
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from longtail_mcp.agents.script import ReplyError, Script, load_script, render

logger = logging.getLogger(__name__)

STARTUP_SECONDS = 30.0
STOP_SECONDS = 10.0


def _error(message: str) -> JSONResponse:
    """A 400 in Anthropic's error shape, so the SDK raises `anthropic.BadRequestError` with `message`."""
    return JSONResponse({"type": "error", "error": {"type": "invalid_request_error", "message": message}},
                        status_code=400)


class _Uvicorn(uvicorn.Server):
    """uvicorn that says when it is listening."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class ScriptedServer:
    """A scripted Messages API on 127.0.0.1 (a port the OS picks unless given), served by uvicorn in a daemon thread
    with its own event loop so it outlives any one caller's event loop (tests, the CLI).

    `delay` replaces the script's default delay; a rule's own `delay` still wins. Raises ScriptInvalid
    (a ValueError) for a bad script."""

    def __init__(self, script: Script | str | Path | dict[str, Any], *, host: str = "127.0.0.1", port: int = 0,
                 delay: float | None = None) -> None:
        self.script = load_script(script)
        self.host = host
        self.delay = self.script.delay if delay is None else delay
        self.app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"]),
                                     Route("/scripted/requests", self._recorded, methods=["GET", "DELETE"])])
        self._port = port
        self._requests: list[dict[str, Any]] = []
        self._requests_lock = threading.Lock()
        self._running_lock = threading.Lock()
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        """The port it listens on (known once started, unless given)."""
        if not self._port:
            raise RuntimeError("the scripted server has not been started: its port is not known yet")
        return self._port

    @property
    def url(self) -> str:
        """The base URL for the SDK, without /v1."""
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request body received, in order, each with `_rule`: the rule that answered it (name or index,
        'otherwise'), or None when none did."""
        with self._requests_lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget the recorded requests."""
        with self._requests_lock:
            self._requests.clear()

    def start(self) -> "ScriptedServer":
        """Serve, returning once it accepts connections (a no-op when running). Raises OSError if it cannot listen."""
        with self._running_lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            ready = threading.Event()
            config = uvicorn.Config(self.app, host=self.host, port=self._port, log_level="warning", lifespan="off",
                                    log_config=None, ws="none", timeout_graceful_shutdown=2)
            server = _Uvicorn(config, ready)
            self._failure = None
            thread = threading.Thread(target=self._serve, args=(server, ready), name="scripted-llm", daemon=True)
            thread.start()
            ready.wait(STARTUP_SECONDS)
            if not server.started:
                server.should_exit = True
                thread.join(STOP_SECONDS)
                raise OSError(f"the scripted server could not listen on {self.host}:{self._port}: "
                              f"{self._failure!r}") from self._failure
            self._port = int(server.servers[0].sockets[0].getsockname()[1])
            self._server, self._thread = server, thread
        logger.info("scripted model %r serving on %s", self.script.model, self.url)
        return self

    def _serve(self, server: _Uvicorn, ready: threading.Event) -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as exc:  # uvicorn exits (SystemExit) when it cannot bind; start() reports it
            self._failure = exc
        finally:
            ready.set()

    def stop(self) -> None:
        """Stop serving and wait for the thread (a request still waiting out its delay is cut short)."""
        with self._running_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(STOP_SECONDS)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await anyio.to_thread.run_sync(self.stop)

    def _record(self, body: dict[str, Any], rule: str | int | None) -> None:
        with self._requests_lock:
            self._requests.append({**body, "_rule": rule})

    async def _messages(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error("the request body is not JSON")
        if not isinstance(body, dict):
            return _error("the request body is a JSON object")
        if body.get("stream"):
            self._record(body, None)
            return _error("streaming is not supported by the scripted model: call messages.create without stream")
        try:
            rule, reply, message = render(self.script, body)
        except ReplyError as exc:
            self._record(body, None)
            logger.info("scripted model: %s", exc)
            return _error(str(exc))
        self._record(body, rule)
        logger.debug("scripted model: turn %r answers round %s", rule, sum(
            1 for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "assistant"))
        delay = self.delay if reply.delay is None else reply.delay
        if delay:
            await anyio.sleep(delay)
        return JSONResponse(message)

    async def _recorded(self, request: Request) -> JSONResponse:
        if request.method == "DELETE":
            self.reset()
        requests = self.requests
        return JSONResponse({"count": len(requests), "requests": requests})


_shared: dict[tuple[str, float | None], ScriptedServer] = {}
_shared_lock = threading.Lock()


def shared_server(script: Path, delay: float | None = None) -> ScriptedServer:
    """The running server of this process for a script file and delay, started on first use and then kept
    (its thread is a daemon): what the `scripted` provider calls when no base URL is configured."""
    key = (str(Path(script).resolve()), delay)
    with _shared_lock:
        server = _shared.get(key)
        if server is None:
            server = ScriptedServer(Path(script), delay=delay).start()
            _shared[key] = server
        return server.start()

"""Open an MCP client session to one of our servers over any transport, acting as a given account."""

import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
import uvicorn
from mcp import Client as McpClient
from mcp import StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from longtail_mcp import LongTail
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.mcp_glue.server import fixed_principal
from longtail_mcp.tools import progress as progress_reports
from longtail_mcp.web.app import build_app
from system_servers import builder

ROOT = Path(__file__).resolve().parents[2]
TRANSPORTS = ["memory", "jsonrpc", "stdio", "http", "sse"]
Report = tuple[float, float | None, str | None]  # one progress notification: progress, total, message


def fast_progress(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.2) -> None:
    """Long calls of in-process servers report every `seconds` instead of every 2 s."""
    monkeypatch.setattr(progress_reports, "PROGRESS_SECONDS", seconds)


async def call_with_progress(c: McpClient, tool: str, args: dict[str, Any],
                             on_report: Any = None) -> tuple[types.CallToolResult, list[Report]]:
    """Call `tool` asking for progress: its result and the progress notifications that came first
    (each also handed to the async `on_report(report, reports)`, if given)."""
    reports: list[Report] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))
        if on_report is not None:
            await on_report(reports[-1], reports)

    with anyio.fail_after(30):
        result = await c.call_tool(tool, args, progress_callback=on_progress)
    return result, reports


async def cancel_after_progress(c: McpClient, tool: str, args: dict[str, Any], *, reports: int = 1,
                                before: Any = None, when: Any = None) -> list[Report]:
    """Call `tool` and cancel the call as a client does (over JSON-RPC: notifications/cancelled) once it has
    reported progress `reports` times and, if given, `when(reports so far)` holds (first awaiting `before()`,
    if given: a look at the work in flight); the reports."""
    seen: list[Report] = []
    with anyio.fail_after(30), anyio.CancelScope() as scope:

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))
            if len(seen) >= reports and (when is None or when(seen)) and not scope.cancel_called:
                if before is not None:
                    await before()
                scope.cancel()

        await c.call_tool(tool, args, progress_callback=on_progress)
        raise AssertionError(f"{tool} answered before it was cancelled")
    return seen


def growing(reports: list[Report]) -> bool:
    """Progress only grows, as the protocol requires."""
    values = [p for p, _, _ in reports]
    return all(a < b for a, b in pairwise(values))


def loud(records: list[logging.LogRecord]) -> list[str]:
    """What was logged at warning level or above, or with a traceback (a cancelled call logs neither)."""
    return [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.WARNING or r.exc_info]


@asynccontextmanager
async def http_server(app: LongTail, *, dev: bool = False) -> AsyncIterator[str]:
    """`serve`'s HTTP app (the whole family at /mcp and /sse) on a free 127.0.0.1 port."""
    sock = socket.socket()
    try:  # closed however the test ends (a failing one too), else Python warns of an unclosed socket later
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(build_app(app, mcp=True, dev=dev), log_level="warning", lifespan="on"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                    await anyio.sleep(0.01)
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True
    finally:
        sock.close()


@asynccontextmanager
async def session(transport: str, app: LongTail, server: str, account: str | None = None,
                  base: str | None = None, *, scope: str = "full") -> AsyncIterator[McpClient]:
    """A session to `server` acting as `account` (None: the local operator, `system`).

    `memory`/`jsonrpc` act as the account with a key of `scope`; `http`/`sse` reach the gateway at `base`
    (from `http_server`) with a fresh key of the account (of `scope`); `stdio` starts `longtail-mcp stdio
    <server> --as <account>`.
    """
    principal = SYSTEM if account is None else await ident.get_principal(app.db, account, scope=scope)
    if transport in ("memory", "jsonrpc"):
        build = builder(server)
        async with McpClient(build(app, fixed_principal(principal)),
                             mode="legacy" if transport == "jsonrpc" else "auto") as c:
            yield c
        return
    if transport == "stdio":
        env = {k: v for k, v in os.environ.items() if not k.startswith("LONGTAIL_")}
        env.update(DATABASE_URL=app.settings.database_url or "", PYTHONPATH=str(ROOT))
        if app.settings.files_root is not None:  # the files server in the child sees the app's root
            env["LONGTAIL_FILES_ROOT"] = str(app.settings.files_root)
        args = ["-m", "longtail_mcp", "stdio", server, *(["--as", account] if account else [])]
        async with McpClient(StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(ROOT))) as c:
            yield c
        return
    assert base is not None, "http and sse sessions need http_server()"
    owner = account or "admin"
    if account is None:
        await ident.ensure_admin(app.db)  # the superadmin `serve` creates on first start
    key = (await ident.create_key(app.db, SYSTEM, owner, scope=scope))["key"]
    headers = {"Authorization": f"Bearer {key}"}
    if transport == "http":
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
                McpClient(streamable_http_client(f"{base}/mcp", http_client=http)) as c:
            yield c
    else:
        async with McpClient(sse_client(f"{base}/sse", headers=headers, timeout=30)) as c:
            yield c

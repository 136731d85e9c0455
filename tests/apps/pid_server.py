"""An external MCP server that tells which process answered, for the session pool's tests:
`python -m tests.apps.pid_server` (stdio).

`pid`, `gather` and `count` (which reports progress) are read-only; `crash` (not annotated) and, the
first time, `flaky_pid` (read-only) end the process in the middle of the call, as a crashing server would.
"""

import os
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("pid")
READ_ONLY = ToolAnnotations(readOnlyHint=True)
_arrived = 0
_all_here = anyio.Event()


@server.tool(description="The process id of this server", annotations=READ_ONLY)
def pid() -> int:
    return os.getpid()


@server.tool(description="Wait until `n` calls of gather are in flight at once, then answer the process id",
             annotations=READ_ONLY)
async def gather(n: int) -> int:
    global _arrived
    _arrived += 1
    if _arrived >= n:
        _all_here.set()
    await _all_here.wait()
    return os.getpid()


@server.tool(description="The idempotency key the caller sent in the request's _meta (null without one)",
             annotations=READ_ONLY)
def idempotency_key(ctx: Context) -> str | None:
    meta = ctx.request_context.meta or {}
    return meta.get("io.longtail/idempotency-key")  # type: ignore[return-value]


@server.tool(description="Count to `n`, reporting progress at each number (when the caller asked for it)",
             annotations=READ_ONLY)
async def count(n: int, ctx: Context) -> int:
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"counted {i} of {n}")
    return n


@server.tool(description="End this server's process in the middle of the call")
def crash() -> str:
    os._exit(3)


@server.tool(description="The process id; the first call ever (marked by creating `marker`) ends the process "
                         "instead", annotations=READ_ONLY)
def flaky_pid(marker: str) -> int:
    path = Path(marker)
    if not path.exists():
        path.touch()
        os._exit(3)
    return os.getpid()


if __name__ == "__main__":
    server.run()

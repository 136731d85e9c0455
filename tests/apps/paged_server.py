"""An external MCP server whose tools/list comes in pages of two (`nextCursor`), for registry tests:
`python -m tests.apps.paged_server` (stdio)."""

from typing import Any

import anyio
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

TOOLS = [types.Tool(name=f"tool_{n}", description=f"Tool number {n}", input_schema={"type": "object"})
         for n in range(5)]


async def list_tools(ctx: ServerRequestContext[Any],
                     params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    start = int(params.cursor) if params is not None and params.cursor else 0
    more = start + 2 < len(TOOLS)
    return types.ListToolsResult(tools=TOOLS[start:start + 2], next_cursor=str(start + 2) if more else None)


server = Server("paged", on_list_tools=list_tools)


async def main() -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)

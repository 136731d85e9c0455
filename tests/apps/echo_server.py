"""A small external MCP server for registry tests: `python -m tests.apps.echo_server` (stdio).

Every call is appended to the file named by ECHO_LOG, so tests can count executions.
"""

import os

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("echo")


def _log(line: str) -> None:
    path = os.environ.get("ECHO_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@server.tool(description="Repeat the given text back, for testing connectivity")
def echo(text: str) -> str:
    _log(text)
    return text


@server.tool(description="Add two integers")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Always fails, to test error handling")
def boom(reason: str) -> str:
    raise ToolError(f"boom: {reason}")  # a ToolError's message reaches the caller


@server.tool(description="The names of the environment variables this server was started with")
def environ() -> list[str]:
    return sorted(os.environ)


if __name__ == "__main__":
    server.run()

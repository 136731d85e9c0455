"""The workflows server's registry tools: register external MCP servers, list them, find tools."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from longtail_mcp.tools import registry
from longtail_mcp.tools.spec import Args, NoArgs, ToolCall, ToolSpec

TAGS = ("tools", "discovery", "registry")


class RegisterIn(Args):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
                      description="Short name; its tools appear as <name>__<tool>")
    command: list[str] | None = Field(None, min_length=1, description="stdio: the command and its arguments")
    url: str | None = Field(None, max_length=2000, description="HTTP (streamable) or SSE endpoint URL")
    transport: Literal["stdio", "http", "sse"] | None = Field(None, description="Default: from command/url")
    env: dict[str, str] = Field(default_factory=dict, description="stdio: its environment besides PATH, HOME and "
                                                                  "the locale (write-only: never shown again)")
    description: str = Field("", max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=50, description="Discovery tags, e.g. storage, http")
    compile_hints: dict[str, Any] = Field(default_factory=dict, description="Hints for the pipeline compiler")
    access_roles: list[str] = Field(default_factory=list, max_length=50,
                                    description="Roles whose members may call its tools (default: superadmins only)")
    read_scope: bool = Field(False, description="Let read-scope keys call the tools it marks read-only")


class RegisterOut(BaseModel):
    name: str
    transport: str
    tools: list[str]
    access_roles: list[str]
    read_scope: bool


class ServersOut(BaseModel):
    servers: list[dict[str, Any]]


class FindIn(Args):
    query: str = Field("", max_length=500, description="Words to match in tool names, descriptions, arguments, tags")
    tags: list[str] | None = Field(None, description="Only tools carrying at least one of these tags")
    limit: int = Field(20, ge=1, le=200)


class FoundTool(BaseModel):
    qualified: str = Field(description="server/tool, as ctx.call_tool takes it")
    server: str
    name: str
    description: str
    tags: list[str]
    rank: float
    input_schema: dict[str, Any]


class FindOut(BaseModel):
    tools: list[FoundTool]


async def register_mcp_server(call: ToolCall, args: RegisterIn) -> RegisterOut:
    return RegisterOut.model_validate(await registry.register_server(
        call.client.db, call.principal, args.name, command=args.command, url=args.url, transport=args.transport,
        env=args.env, description=args.description, tags=args.tags, compile_hints=args.compile_hints,
        access_roles=args.access_roles, read_scope=args.read_scope,
    ))


async def list_mcp_servers(call: ToolCall, args: NoArgs) -> ServersOut:
    return ServersOut(servers=await registry.list_servers(call.client.db, call.principal))


async def find_tools(call: ToolCall, args: FindIn) -> FindOut:
    rows = await registry.find_tools(call.client.db, args.query, tags=args.tags, limit=args.limit)
    return FindOut(tools=[FoundTool.model_validate(r) for r in rows])


TOOLS = [
    ToolSpec("register_mcp_server", "Register an external MCP server (a stdio command, or an HTTP/SSE URL) with tags "
             "and compile hints; connects, caches its tools, and makes them callable by superadmins and the "
             "members of access_roles (superadmins only).",
             RegisterIn, RegisterOut, register_mcp_server, idempotent=True, open_world=True, tags=TAGS),
    ToolSpec("list_mcp_servers", "List the MCP servers known to the registry (built in and registered) with their "
             "tool counts and access (command lines and URLs are shown to superadmins only).",
             NoArgs, ServersOut, list_mcp_servers, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("find_tools", "Find tools across every known server by words (names, descriptions, argument names, "
             "tags; prefixes match) and tags, best match first.", FindIn, FindOut, find_tools,
             read_only=True, idempotent=True, tags=TAGS),
]

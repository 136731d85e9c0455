"""The low-level MCP server built from a list of `ToolSpec`s, and the one error boundary of MCP calls.

Each `ToolSpec` becomes an MCP tool (flat input JSON Schema, output schema, annotations); a call is
validated and run by `tools.invoke` (shared with in-run calls), and every error becomes an
`is_error` result a person can act on. The gateway's proxied tools (registered servers) go through
the same boundary.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

import mcp.types as types
from mcp.server import Server, ServerRequestContext

from longtail_mcp.errors import Forbidden, LongtailError, NotFound, PolicyDenied
from longtail_mcp.humans.identity import Principal
from longtail_mcp.tools.invoke import internal_error, invoke
from longtail_mcp.tools.spec import Services, ToolSpec

ERROR_META = "io.longtail/error"  # the `_meta` key of a tool error's structured details
PrincipalSource = Callable[[ServerRequestContext[Any]], Awaitable[Principal]]


def mcp_tool(spec: ToolSpec) -> types.Tool:
    """The MCP description of a tool, from its definition."""
    return types.Tool(
        name=spec.name,
        description=spec.description,
        input_schema=spec.input_schema(),
        output_schema=spec.output_schema(),
        annotations=types.ToolAnnotations(
            read_only_hint=spec.read_only,
            destructive_hint=spec.destructive,
            idempotent_hint=spec.idempotent,
            open_world_hint=spec.open_world,
        ),
    )


def error_result(exc: LongtailError) -> types.CallToolResult:
    """The one mapping of an error to a tool result: `[code] message` as text, and the error's code,
    message and data (e.g. an approval's escalation_id) under `_meta["io.longtail/error"]`.

    Not in structuredContent: clients validate that against the tool's output schema even on errors
    (the MCP Inspector does), so an error shape there would hide the error behind a validation failure.
    """
    details: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.data is not None:
        details["data"] = exc.data
    if isinstance(exc, PolicyDenied):
        details["rule"] = exc.rule
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"[{exc.code}] {exc.message}")],
                                is_error=True, _meta={ERROR_META: details})


class Proxy:
    """Tools of other servers shown through this one (the gateway): listed and called on demand."""

    async def tools(self, principal: Principal) -> list[types.Tool]:
        """The proxied tools `principal` may call."""
        raise NotImplementedError

    async def call(self, name: str, arguments: dict[str, Any], principal: Principal) -> dict[str, Any] | None:
        """The structured result, or None when `name` is not one of the proxied tools.

        Raises:
            LongtailError: the call was refused or failed (mapped to a tool error by the server).
        """
        raise NotImplementedError


def build_server(name: str, specs: list[ToolSpec], services: Services, principal_of: PrincipalSource,
                 *, instructions: str | None = None, version: str = "0.1.0", proxy: Proxy | None = None) -> Server[Any]:
    """A low-level MCP server exposing `specs`, calling them as the principal `principal_of` gives."""
    by_name = {s.name: s for s in specs}
    if len(by_name) != len(specs):
        raise ValueError(f"server {name}: duplicate tool names")
    tools = {s.name: mcp_tool(s) for s in specs}  # built once: schemas come from static models

    async def list_tools(ctx: ServerRequestContext[Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        principal = await principal_of(ctx)
        visible = [tools[s.name] for s in specs if s.read_only or principal.scope == "full"]
        if proxy is not None:
            visible += await proxy.tools(principal)
        return types.ListToolsResult(tools=visible)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = by_name.get(params.name)
        arguments = dict(params.arguments or {})
        try:
            principal = await principal_of(ctx)
            if spec is None:
                structured = await proxy.call(params.name, arguments, principal) if proxy is not None else None
                if structured is None:
                    raise NotFound(f"no tool named {params.name!r} on the {name} server")
            else:
                if not spec.read_only and principal.scope != "full":
                    raise Forbidden(f"{params.name} changes data; the calling key has read scope only")
                structured = await invoke(spec, name, services, principal, arguments)
        except LongtailError as exc:
            return error_result(exc)
        except Exception:
            return error_result(internal_error(f"tool {params.name}"))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(structured, indent=2))],
            structured_content=structured,
        )

    def input_schema(tool: str) -> dict[str, Any] | None:
        # The SDK asks for a tool's input schema on each call; without this it would run a whole
        # tools/list per call. Proxied tools answer None (their server validates them).
        known = tools.get(tool)
        return known.input_schema if known is not None else None

    return Server(name, version=version, instructions=instructions, on_list_tools=list_tools, on_call_tool=call_tool,
                  get_tool_input_schema=input_schema)


def fixed_principal(principal: Principal) -> PrincipalSource:
    """For stdio and in-process use: every call acts as one configured principal."""

    async def source(ctx: ServerRequestContext[Any]) -> Principal:
        return principal

    return source

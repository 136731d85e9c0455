"""The low-level MCP server built from a list of `ToolSpec`s, and the one error boundary of MCP calls.

Each `ToolSpec` becomes an MCP tool (flat input JSON Schema, output schema, annotations); a call is
validated and run by `tools.invoke` (shared with in-run calls), and every error becomes an
`is_error` result a person can act on. The gateway's proxied tools (registered servers) go through
the same boundary.
"""

import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import mcp.types as types
from anyio.abc import TaskStatus
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged

from longtail_mcp.errors import Forbidden, LongtailError, NotFound, PolicyDenied
from longtail_mcp.events import EventBus
from longtail_mcp.humans.identity import Principal
from longtail_mcp.mcp_glue.resources import content_handlers
from longtail_mcp.tools.invoke import internal_error, invoke
from longtail_mcp.tools.prompts import PromptSpec
from longtail_mcp.tools.resources import ResourceSpec
from longtail_mcp.tools.spec import Progress as Progress  # re-exported: its home is the tools layer
from longtail_mcp.tools.spec import Services, ToolSpec, no_progress

logger = logging.getLogger(__name__)
ERROR_META = "io.longtail/error"  # the `_meta` key of a tool error's structured details
PrincipalSource = Callable[[ServerRequestContext[Any]], Awaitable[Principal]]
TOOL_EVENTS = ["pipeline.activated", "pipeline.archived", "tools.changed"]  # what changes a tools list


class ListChanged:
    """Tells connected clients that a server's tools changed (a pipeline activated or archived, a server
    registered), in both protocol eras: `notifications/tools/list_changed` on every handshake-era
    session that has listed or called tools, and a tools-changed event on every 2026-07-28
    `subscriptions/listen` stream. `watch` follows the event feed, so a change made by any process
    reaches the clients of every process."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        # The SDK hands each request a fresh ServerSession; the connection beneath is what lives as long
        # as the client, so that is what is remembered (weakly: a closed connection drops out by itself).
        self._connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        self.sent = 0

    def track(self, session: ServerSession) -> None:
        """Remember the connection `session` belongs to, to tell it when the tools change."""
        connection = getattr(session, "_connection", None)  # not public in mcp 2.x; see platform-notes
        if isinstance(connection, Connection):
            self._connections.add(connection)

    async def tools_changed(self) -> None:
        self.sent += 1
        await self.bus.publish(ToolsListChanged())
        for connection in list(self._connections):
            try:
                await connection.send_tool_list_changed()
            except Exception as exc:  # a connection that went away: it no longer needs telling
                logger.debug("could not notify a client of changed tools: %s", exc)
                self._connections.discard(connection)

    async def watch(self, events: EventBus, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Until cancelled: a tools-changed notification for every event that changes a tools list (started
        once it hears them: `await task_group.start(list_changed.watch, events)`)."""
        async with events.subscribe(TOOL_EVENTS) as feed:
            task_status.started()
            async for _ in feed:
                await self.tools_changed()


def mcp_tool(spec: ToolSpec) -> types.Tool:
    """The MCP description of a tool, from its definition."""
    return types.Tool(
        name=spec.name,
        title=spec.display_title,
        description=spec.description,
        input_schema=spec.input_schema(),
        output_schema=spec.output_schema(),
        annotations=types.ToolAnnotations(
            title=spec.display_title,
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


def result_content(spec: ToolSpec | None, structured: dict[str, Any]) -> list[types.ContentBlock]:
    """What a client shows of a result: the structured result as JSON text, then the images the tool
    finds in it (`ToolSpec.images`, e.g. a picture read by files/read_file) as image content. The text
    names an image's field instead of repeating its base64 (structuredContent keeps the whole result)."""
    images = spec.images(structured) if spec is not None and spec.images is not None else []
    shown = dict(structured)
    for image in images:
        if image.field in shown:
            size = len(image.data) * 3 // 4 - (len(image.data) - len(image.data.rstrip("=")))  # base64's length
            shown[image.field] = f"({image.mime}, {size} bytes: in the image content)"
    content: list[types.ContentBlock] = [types.TextContent(type="text", text=json.dumps(shown, indent=2))]
    content += [types.ImageContent(type="image", data=image.data, mime_type=image.mime) for image in images]
    return content


class Proxy:
    """Tools of other servers shown through this one (the gateway): listed and called on demand."""

    async def tools(self, principal: Principal) -> list[types.Tool]:
        """The proxied tools `principal` may call."""
        raise NotImplementedError

    async def call(self, name: str, arguments: dict[str, Any], principal: Principal,
                   progress: Progress = no_progress) -> dict[str, Any] | None:
        """The structured result, or None when `name` is not one of the proxied tools. A long call may
        report its `progress`.

        Raises:
            LongtailError: the call was refused or failed (mapped to a tool error by the server).
        """
        raise NotImplementedError


def build_server(name: str, specs: list[ToolSpec], services: Services, principal_of: PrincipalSource,
                 *, instructions: str | None = None, version: str = "0.1.0", proxy: Proxy | None = None,
                 list_changed: ListChanged | None = None, resources: Sequence[ResourceSpec] = (),
                 prompts: Sequence[PromptSpec] = ()) -> Server[Any]:
    """A low-level MCP server exposing `specs` (and `resources` and `prompts`, read as the same principal),
    calling them as the principal `principal_of` gives. With `list_changed`, it announces `listChanged`
    and tells its clients when its tools change."""
    by_name = {s.name: s for s in specs}
    if len(by_name) != len(specs):
        raise ValueError(f"server {name}: duplicate tool names")
    tools = {s.name: mcp_tool(s) for s in specs}  # built once: schemas come from static models

    async def list_tools(ctx: ServerRequestContext[Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        if list_changed is not None:
            list_changed.track(ctx.session)
        principal = await principal_of(ctx)
        visible = [tools[s.name] for s in specs if s.read_only or principal.scope == "full"]
        if proxy is not None:
            visible += await proxy.tools(principal)
        return types.ListToolsResult(tools=visible)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = by_name.get(params.name)
        arguments = dict(params.arguments or {})
        if list_changed is not None:
            list_changed.track(ctx.session)
        # A no-op unless the client sent a progressToken (or, in process, a callback); a cancelled call
        # (notifications/cancelled) cancels this handler, and the tool stops with it (docs/clients.md).
        progress: Progress = ctx.session.report_progress
        try:
            principal = await principal_of(ctx)
            if spec is None:
                structured = (await proxy.call(params.name, arguments, principal, progress)
                              if proxy is not None else None)
                if structured is None:
                    raise NotFound(f"no tool named {params.name!r} on the {name} server")
            else:
                if not spec.read_only and principal.scope != "full":
                    raise Forbidden(f"{params.name} changes data; the calling key has read scope only")
                structured = await invoke(spec, name, services, principal, arguments, progress=progress)
            content = result_content(spec, structured)
        except LongtailError as exc:
            return error_result(exc)
        except Exception:
            return error_result(internal_error(f"tool {params.name}"))
        return types.CallToolResult(content=content, structured_content=structured)

    def input_schema(tool: str) -> dict[str, Any] | None:
        # The SDK asks for a tool's input schema on each call; without this it would run a whole
        # tools/list per call. Proxied tools answer None (their server validates them).
        known = tools.get(tool)
        return known.input_schema if known is not None else None

    # Resources and prompts: the SDK announces each capability when its handlers are given.
    content = content_handlers(name, resources, prompts, services, principal_of)
    if list_changed is None:
        return Server(name, version=version, instructions=instructions, on_list_tools=list_tools,
                      on_call_tool=call_tool, get_tool_input_schema=input_schema, **content)
    return _AnnouncingServer(name, version=version, instructions=instructions, on_list_tools=list_tools,
                             on_call_tool=call_tool, get_tool_input_schema=input_schema,
                             on_subscriptions_listen=ListenHandler(list_changed.bus), **content)


class _AnnouncingServer(Server[Any]):
    """A server whose handshake announces `tools.listChanged` (the SDK's default options announce none)."""

    def create_initialization_options(self, notification_options: NotificationOptions | None = None,
                                      experimental_capabilities: dict[str, dict[str, Any]] | None = None,
                                      extensions: dict[str, dict[str, Any]] | None = None) -> InitializationOptions:
        return super().create_initialization_options(notification_options or NotificationOptions(tools_changed=True),
                                                     experimental_capabilities, extensions)


def fixed_principal(principal: Principal) -> PrincipalSource:
    """For stdio and in-process use: every call acts as one configured principal."""

    async def source(ctx: ServerRequestContext[Any]) -> Principal:
        return principal

    return source

"""One way to define a tool, and the low-level MCP server built from a list of them.

A `ToolSpec` holds a pydantic input model and output model, a description, honest annotations,
tags and compile hints, and a thin handler that calls the core services. From it come the MCP
tool (flat input JSON Schema, output schema, structured content), the stored manifest used by
discovery, and the read/full scope gate (fail closed: only `read_only=True` tools are read tools).
Bad arguments never reach a handler; errors come back as `is_error` results a person can act on.
"""

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import mcp.types as types
from mcp.server import Server, ServerRequestContext
from pydantic import BaseModel, Field, ValidationError

from longtail_mcp.errors import Forbidden, InvalidInput, LongtailError, NotFound, PolicyDenied
from longtail_mcp.humans import approvals
from longtail_mcp.humans.identity import Principal
from longtail_mcp.runtime.client import Client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolCall:
    """What a handler gets besides its arguments: the services and who is calling.

    `approved` is True only when this exact call spent an approval (see `Approvable`): the handler
    then skips the policy check that the approval covers, and only that one.
    """

    client: Client
    principal: Principal
    approved: bool = False


class Approvable(BaseModel):
    """Input mixin of tools whose refusals by policy can become approvals (docs/security.md)."""

    request_approval: bool = Field(False, description="If a safety policy refuses this call, ask the approver role "
                                                      "to allow this exact call once (the error names the escalation)")
    approval_id: str | None = Field(None, min_length=1, max_length=300,
                                    description="An approved escalation for this exact call: it goes through once")


Handler = Callable[[ToolCall, Any], Awaitable[BaseModel | dict[str, Any]]]


@dataclass(frozen=True)
class ToolSpec:
    """One tool, defined once."""

    name: str
    description: str
    input: type[BaseModel]
    output: type[BaseModel]
    handler: Handler
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False
    tags: tuple[str, ...] = ()
    compile_hints: dict[str, Any] = field(default_factory=dict)

    def input_schema(self) -> dict[str, Any]:
        return _flat_schema(self.input)

    def output_schema(self) -> dict[str, Any]:
        return _flat_schema(self.output)

    def tool(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            description=self.description,
            input_schema=self.input_schema(),
            output_schema=self.output_schema(),
            annotations=types.ToolAnnotations(
                read_only_hint=self.read_only,
                destructive_hint=self.destructive,
                idempotent_hint=self.idempotent,
                open_world_hint=self.open_world,
            ),
        )

    def manifest(self, server: str) -> dict[str, Any]:
        """The stored description of the tool used by discovery and agents (never written by hand)."""
        return {
            "server": server, "name": self.name, "description": self.description,
            "input_schema": self.input_schema(), "output_schema": self.output_schema(),
            "annotations": {"readOnlyHint": self.read_only, "destructiveHint": self.destructive,
                            "idempotentHint": self.idempotent, "openWorldHint": self.open_world},
            "tags": list(self.tags), "compile_hints": self.compile_hints,
        }


def _flat_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


ERROR_META = "io.longtail/error"  # the `_meta` key of a tool error's structured details


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


def _describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors()[:8]:
        where = ".".join(str(p) for p in e["loc"]) or "(arguments)"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


PrincipalSource = Callable[[ServerRequestContext[Any]], Awaitable[Principal]]


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


def build_server(name: str, specs: list[ToolSpec], client: Client, principal_of: PrincipalSource,
                 *, instructions: str | None = None, version: str = "0.1.0", proxy: Proxy | None = None) -> Server[Any]:
    """A low-level MCP server exposing `specs`, calling them as the principal `principal_of` gives."""
    by_name = {s.name: s for s in specs}
    if len(by_name) != len(specs):
        raise ValueError(f"server {name}: duplicate tool names")
    tools = {s.name: s.tool() for s in specs}  # built once: schemas come from static models

    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
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
                structured = await invoke(spec, name, client, principal, arguments)
        except LongtailError as exc:
            return error_result(exc)
        except Exception:
            ref = uuid.uuid4().hex[:10]
            logger.exception("tool %s failed (ref %s)", params.name, ref)
            return error_result(LongtailError(f"internal error (ref {ref})"))
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


def parse_args(spec: ToolSpec, arguments: dict[str, Any]) -> BaseModel:
    """The tool's input model from raw arguments.

    Raises:
        InvalidInput: they do not match its schema (the message lists what is wrong).
    """
    try:
        return spec.input.model_validate(arguments)
    except ValidationError as exc:
        raise InvalidInput(f"{spec.name}: {_describe(exc)}") from None


async def invoke(spec: ToolSpec, server: str, client: Client, principal: Principal,
                 arguments: dict[str, Any], *, explain: bool = True) -> dict[str, Any]:
    """Call one tool as `principal`: validate the arguments, spend an approval if one is given, run the
    handler, and return its structured result. The MCP servers and in-run calls (`ctx.call_tool`) share it.

    A refusal by policy (`PolicyDenied`) of an `Approvable` tool called with `request_approval: true` opens
    an escalation to the approver role bound to this exact call, and the error names it; without it, the
    error says how to ask (unless `explain` is False: a run asks by itself).

    Raises:
        InvalidInput: the arguments do not match the tool's schema (nothing was called).
        PolicyDenied, Forbidden, NotFound, Conflict, ...: from the handler or the approval.
    """
    args = parse_args(spec, arguments)
    approved = False
    action: tuple[str, dict[str, Any]] | None = None
    if isinstance(args, Approvable):
        action = (f"{server}/{spec.name}", approvals.canonical(args))
        if args.approval_id is not None:
            await approvals.spend(client.db, principal, args.approval_id, *action)
            approved = True
    try:
        result = await spec.handler(ToolCall(client, principal, approved), args)
    except PolicyDenied as exc:
        if action is None or approved or not explain:
            raise
        assert isinstance(args, Approvable)
        if not args.request_approval:
            raise PolicyDenied(f"{exc.message}. To ask the {client.settings.approver_role!r} role to allow this exact "
                               "call once, call again with request_approval: true", rule=exc.rule) from None
        row = await approvals.request(client.db, principal, client.settings.approver_role, *action,
                                      reason=exc.message, rule=exc.rule)
        raise PolicyDenied(f"{exc.message}. Approval requested: escalation {row['id']!r} for role {row['role']!r} "
                           f"(human-queue check_resolution shows the decision). Once approved, call {spec.name} again "
                           f"with the same arguments and approval_id={row['id']!r}: it goes through once",
                           rule=exc.rule, data={"escalation_id": row["id"]}) from None
    return spec.output.model_validate(result).model_dump(mode="json")


def fixed_principal(principal: Principal) -> PrincipalSource:
    """For stdio and in-process use: every call acts as one configured principal."""

    async def source(ctx: ServerRequestContext[Any]) -> Principal:
        return principal

    return source

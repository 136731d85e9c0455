"""The JSON API at /api/v1, for backends that are not MCP clients: runs and escalations over plain HTTP.

Each endpoint is one of the family's tools seen through HTTP: the same input model (its fields taken
from the path, the query string or a JSON body), the same handler and so the same service functions,
visibility rule and RBAC, the same output model, called through `tools.invoke` as an MCP call is.
Keys are those of /mcp (`BearerAuth`, so `serve --dev` on loopback acts as the local operator); a
read-scope key may use GET only. Every error is `{"error": {code, message, data?}}` with the HTTP status
of its kind; `openapi.json` describes it all and needs no key.
"""

import json
from typing import Any
from urllib.parse import quote, unquote

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from longtail_mcp.errors import (
    Forbidden,
    InvalidInput,
    LongtailError,
    NotFound,
    PolicyDenied,
    Unauthenticated,
)
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans.identity import Principal
from longtail_mcp.humans.models import Escalation
from longtail_mcp.mcp_glue.http import BearerAuth
from longtail_mcp.tools.invoke import internal_error, invoke
from longtail_mcp.tools.spec import Services, ToolCall, ToolSpec, describe_errors
from longtail_mcp.web.errors import status_code
from longtail_mcp.web.openapi import Endpoint, document
from system_servers.human_queue import server as human_queue
from system_servers.workflows import server as workflows

MAX_BODY_BYTES = 4 << 20


def _tool(tools: list[ToolSpec], name: str) -> ToolSpec:
    return next(s for s in tools if s.name == name)


async def get_escalation(call: ToolCall, args: human_queue.Ref) -> Escalation:
    return await esc.get_escalation(call.client.db, call.principal, args.escalation_id)


# Not an MCP tool (check_resolution answers the outcome only): a backend holding an id reads the whole request.
GET_ESCALATION = ToolSpec("get_escalation", "An escalation you may see: of your roles, claimed by you, or asked "
                          "by you.", human_queue.Ref, Escalation, get_escalation, read_only=True, idempotent=True)

WF, HQ = "workflows", "human-queue"
ENDPOINTS = [
    Endpoint("GET", "/workflow-types", WF, _tool(workflows.TOOLS, "list_workflow_types"), "List the workflow types"),
    Endpoint("POST", "/runs", WF, _tool(workflows.TOOLS, "start_workflow"), "Start a run", status=201,
             location="/runs/{workflow_id}"),
    Endpoint("GET", "/runs", WF, _tool(workflows.TOOLS, "list_runs"), "List the runs you may see"),
    Endpoint("GET", "/runs/{workflow_id}", WF, _tool(workflows.TOOLS, "get_run"), "Get a run"),
    Endpoint("GET", "/runs/{workflow_id}/wait", WF, _tool(workflows.TOOLS, "wait_for_run"),
             "Wait (at most 50 s) for a run to end"),
    Endpoint("GET", "/runs/{workflow_id}/export", WF, _tool(workflows.TOOLS, "export_run"), "Export a run's history"),
    Endpoint("POST", "/runs/{workflow_id}/signal", WF, _tool(workflows.TOOLS, "signal_run"), "Signal a run"),
    Endpoint("POST", "/runs/{workflow_id}/cancel", WF, _tool(workflows.TOOLS, "cancel_run"), "Cancel a run"),
    Endpoint("POST", "/escalations", HQ, _tool(human_queue.TOOLS, "escalate_to_human"), "Ask a role for a decision",
             status=201, location="/escalations/{id}"),
    Endpoint("GET", "/escalations", HQ, _tool(human_queue.TOOLS, "get_available_work"), "List what you may claim"),
    Endpoint("GET", "/claims", HQ, _tool(human_queue.TOOLS, "list_my_work"), "List what you hold a claim on"),
    Endpoint("GET", "/escalations/{escalation_id}", HQ, GET_ESCALATION, "Get an escalation"),
    Endpoint("POST", "/escalations/{escalation_id}/claim", HQ, _tool(human_queue.TOOLS, "claim_escalation"),
             "Claim an escalation"),
    Endpoint("POST", "/escalations/{escalation_id}/resolve", HQ, _tool(human_queue.TOOLS, "resolve_escalation"),
             "Resolve an escalation"),
    Endpoint("POST", "/escalations/{escalation_id}/release", HQ, _tool(human_queue.TOOLS, "release_escalation"),
             "Release your claim"),
    Endpoint("POST", "/escalations/{escalation_id}/reroute", HQ, _tool(human_queue.TOOLS, "reroute_escalation"),
             "Send an escalation to another role"),
    Endpoint("POST", "/escalations/{escalation_id}/cancel", HQ, _tool(human_queue.TOOLS, "cancel_escalation"),
             "Withdraw an escalation"),
    Endpoint("GET", "/escalations/{escalation_id}/history", HQ, _tool(human_queue.TOOLS, "escalation_history"),
             "What happened to an escalation"),
]


class JsonApi:
    """The ASGI app mounted at /api/v1: `openapi.json` for anyone, every other path behind an API key."""

    def __init__(self, client: Services, *, dev: bool) -> None:
        self.client = client
        self.document = document(ENDPOINTS)
        self.guarded = ApiAuth(self.serve, client, dev=dev)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await WebSocketClose()(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "GET" and route_segments(scope) == ["openapi.json"]:
            await JSONResponse(self.document)(scope, receive, send)
            return
        await self.guarded(scope, receive, send)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        segments = route_segments(request.scope)
        try:
            endpoint, params, allowed = match(segments, request.method)
            if endpoint is None:
                if allowed:
                    return JSONResponse({"error": {"code": "method_not_allowed", "message": (
                        f"/{'/'.join(segments)} takes {' or '.join(sorted(allowed))}, not {request.method}")}},
                        status_code=405, headers={"Allow": ", ".join(sorted(allowed))})
                raise NotFound(f"no endpoint {request.method} /api/v1/{'/'.join(segments)} (see /api/v1/openapi.json)")
            principal: Principal = request.scope["state"]["principal"]
            if principal.scope != "full" and not (endpoint.method == "GET" and endpoint.tool.read_only):
                raise Forbidden(f"{endpoint.method} {endpoint.path} changes data; the calling key has read scope only")
            arguments = await arguments_of(request, endpoint, params)
            result = await invoke(endpoint.tool, endpoint.server, self.client, principal, arguments)
        except LongtailError as exc:
            return error_response(exc)
        except Exception:
            return error_response(internal_error(f"{request.method} /api/v1/{'/'.join(segments)}"))
        status = endpoint.status
        if status == 201 and result.get("created") is False:
            status = 200  # an idempotent start: the first run, not a new one
        headers = {}
        if endpoint.location:
            path = "/".join(quote(str(result[s[1:-1]]), safe="") if s.startswith("{") else s
                            for s in endpoint.location.split("/"))
            headers["Location"] = f"{request.scope.get('root_path', '')}{path}"
        return JSONResponse(result, status_code=status, headers=headers)


class ApiAuth(BearerAuth):
    """BearerAuth answering 401 in the API's error shape."""

    async def refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        response = error_response(Unauthenticated(message))
        response.headers["WWW-Authenticate"] = "Bearer"
        await response(scope, receive, send)


def error_response(exc: LongtailError) -> JSONResponse:
    """The one mapping of an error to an HTTP answer: the status of its kind (500 for any other)."""
    detail: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.data is not None:
        detail["data"] = exc.data
    if isinstance(exc, PolicyDenied):
        detail["rule"] = exc.rule
    return JSONResponse({"error": detail}, status_code=status_code(exc))


def route_segments(scope: Scope) -> list[str]:
    """The path below the mount as decoded segments: a run id with a `/` in it (a child's) arrives as one
    `%2F`-encoded segment, which the decoded `path` alone cannot tell from two."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    route = path[len(root):] if root and path.startswith(root) else path
    raw = scope.get("raw_path")
    if raw:
        parts = raw.decode("latin-1").split("?")[0].split("/")
        for n in range(1, len(parts) + 1):  # the raw tail that decodes to the route
            if "/" + unquote("/".join(parts[-n:])) == route:
                return [unquote(p) for p in parts[-n:] if p]
    return [p for p in route.split("/") if p]


def match(segments: list[str], method: str) -> tuple[Endpoint | None, dict[str, str], list[str]]:
    """The endpoint for a path and method, with the path's fields; else None and the methods the path
    takes (none: no such path). A literal segment wins over a field (`/claims`, not a run)."""
    allowed: list[str] = []
    for endpoint in sorted(ENDPOINTS, key=lambda e: [s.startswith("{") for s in e.segments]):
        if len(endpoint.segments) != len(segments):
            continue
        params: dict[str, str] = {}
        for pattern, value in zip(endpoint.segments, segments, strict=True):
            if pattern.startswith("{"):
                params[pattern[1:-1]] = value
            elif pattern != value:
                break
        else:
            if endpoint.method == method:
                return endpoint, params, []
            allowed.append(endpoint.method)
    return None, {}, allowed


async def arguments_of(request: Request, endpoint: Endpoint, params: dict[str, str]) -> dict[str, Any]:
    """The tool's arguments from the path, and the query string (GET) or JSON body (POST), checked against
    its input model.

    Raises:
        InvalidInput: not JSON, a field given twice, or fields the model refuses (each in `data.errors`).
    """
    sources: dict[str, dict[str, Any]] = {"path": params}
    if endpoint.method == "GET":
        sources["query"] = dict(request.query_params)
    else:
        if request.query_params:
            raise InvalidInput(f"{endpoint.method} {endpoint.path} takes its fields as a JSON body, not in the query")
        sources["body"] = await json_body(request)
    arguments: dict[str, Any] = {}
    where: dict[str, str] = {}
    for source, values in sources.items():
        for key, value in values.items():
            if key in arguments:
                raise InvalidInput(f"{key} is given twice: in the {where[key]} and in the {source}",
                                   data={"errors": [{"field": key, "in": source, "message": "given twice"}]})
            arguments[key], where[key] = value, source
    try:
        endpoint.tool.input.model_validate(arguments)
    except ValidationError as exc:
        fallback = "query" if endpoint.method == "GET" else "body"
        errors = [{"field": ".".join(map(str, e["loc"])) or "(body)",
                   "in": where.get(str(e["loc"][0]), fallback) if e["loc"] else fallback, "message": e["msg"]}
                  for e in exc.errors()]
        raise InvalidInput(f"{endpoint.tool.name}: {describe_errors(exc)}", data={"errors": errors}) from None
    return arguments


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body).

    Raises:
        InvalidInput: too large, not sent as application/json, not JSON, or not an object.
    """
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise InvalidInput(f"the body is over {MAX_BODY_BYTES:,} bytes")
    if not raw.strip():
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise InvalidInput(f"send the body as Content-Type: application/json, not {kind or 'no type'!r}")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidInput(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")

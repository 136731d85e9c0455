"""MCP resources, resource templates and prompts from `ResourceSpec`s and `PromptSpec`s.

Every read and every prompt runs as the calling principal, through the same core functions as the
tools. A resource or prompt that cannot be given is a protocol error (resources/read and prompts/get
have no error result): an `MCPError` whose message starts with the code like a tool error's text,
`[not_found] no run 'x'`, with `{code, message, uri or prompt, data, rule}` as its data; anything
unexpected is logged and reported as `internal error (ref ...)`, never as `str(exc)`.
"""

import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import mcp.types as types
from mcp import MCPError
from mcp.server import ServerRequestContext

from longtail_mcp.errors import LongtailError, NotFound, PolicyDenied
from longtail_mcp.humans.identity import Principal
from longtail_mcp.tools.invoke import internal_error
from longtail_mcp.tools.prompts import Message, PromptSpec
from longtail_mcp.tools.resources import Contents, ResourceSpec
from longtail_mcp.tools.spec import Services, ToolCall

logger = logging.getLogger(__name__)
# What the server, not the request, got wrong: the rest (not found, forbidden, bad input) is the caller's to fix.
SERVER_SIDE = frozenset({"internal", "unavailable", "configuration"})


def protocol_error(exc: LongtailError, **where: str) -> MCPError:
    """The one mapping of an error to a JSON-RPC error: `[code] message`, and the details as its data."""
    details: dict[str, Any] = {"code": exc.code, "message": exc.message, **where}
    if exc.data is not None:
        details["data"] = exc.data
    if isinstance(exc, PolicyDenied):
        details["rule"] = exc.rule
    code = types.INTERNAL_ERROR if exc.code in SERVER_SIDE else types.INVALID_PARAMS
    return MCPError(code, f"[{exc.code}] {exc.message}", data=details)


def resource_contents(uri: str, contents: Contents) -> types.TextResourceContents | types.BlobResourceContents:
    if contents.data is not None:
        return types.BlobResourceContents(uri=uri, mime_type=contents.mime, _meta=contents.meta,
                                          blob=base64.b64encode(contents.data).decode("ascii"))
    return types.TextResourceContents(uri=uri, mime_type=contents.mime, _meta=contents.meta, text=contents.text or "")


def prompt_message(message: Message) -> types.PromptMessage:
    if message.resource is not None:
        uri, contents = message.resource
        return types.PromptMessage(role=message.role, content=types.EmbeddedResource(
            type="resource", resource=resource_contents(uri, contents)))
    return types.PromptMessage(role=message.role, content=types.TextContent(type="text", text=message.text or ""))


def content_handlers(server: str, resources: Sequence[ResourceSpec], prompts: Sequence[PromptSpec],
                     services: Services,
                     principal_of: Callable[[ServerRequestContext[Any]], Awaitable[Principal]]) -> dict[str, Any]:
    """The low-level Server's resource and prompt handlers (`on_list_resources=`, ...) for these definitions;
    none for an empty list, so a server without resources or prompts does not announce them."""
    fixed = [r for r in resources if not r.is_template]
    templates = [r for r in resources if r.is_template]
    prompt_by_name = {p.name: p for p in prompts}
    if len({r.uri for r in resources}) != len(resources) or len(prompt_by_name) != len(prompts):
        raise ValueError(f"server {server}: duplicate resource URIs or prompt names")
    handlers: dict[str, Any] = {}

    async def call_of(ctx: ServerRequestContext[Any], **where: str) -> ToolCall:
        try:
            return ToolCall(services, await principal_of(ctx))
        except LongtailError as exc:
            raise protocol_error(exc, **where) from None

    async def list_resources(ctx: ServerRequestContext[Any],
                             params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        call = await call_of(ctx)
        shown = [types.Resource(uri=r.uri, name=r.name, title=r.display_title, description=r.description,
                                mime_type=r.mime) for r in fixed]
        for spec in templates:
            if spec.listing is None:
                continue
            try:
                listed = await spec.listing(call)
            except LongtailError as exc:  # one source that cannot list (no role, say) leaves the others listed
                logger.info("resources of %s not listed for %s: %s", spec.uri, call.principal.id, exc)
                continue
            except Exception:
                internal_error(f"listing resources {spec.uri}")
                continue
            shown += [types.Resource(uri=item.uri, name=item.name, title=item.title or None,
                                     description=item.description or None, mime_type=item.mime or spec.mime)
                      for item in listed]
        return types.ListResourcesResult(resources=shown)

    async def list_templates(ctx: ServerRequestContext[Any],
                             params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(uri_template=r.uri, name=r.name, title=r.display_title, description=r.description,
                                   mime_type=r.mime) for r in templates])

    def find(uri: str) -> tuple[ResourceSpec, dict[str, str]]:
        for spec in resources:
            values = spec.match(uri)
            if values is not None:
                return spec, values
        raise protocol_error(NotFound(f"no resource {uri!r} on the {server} server; resources/templates/list "
                                      "shows the URIs it serves"), uri=uri)

    async def read_resource(ctx: ServerRequestContext[Any],
                            params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        spec, values = find(uri)
        call = await call_of(ctx, uri=uri)
        try:
            contents = await spec.read(call, values)
        except LongtailError as exc:
            raise protocol_error(exc, uri=uri) from None
        except Exception:
            raise protocol_error(internal_error(f"resource {uri}"), uri=uri) from None
        return types.ReadResourceResult(contents=[resource_contents(uri, contents)])

    if resources:
        handlers.update(on_list_resources=list_resources, on_list_resource_templates=list_templates,
                        on_read_resource=read_resource)

    async def list_prompts(ctx: ServerRequestContext[Any],
                           params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[
            types.Prompt(name=p.name, title=p.display_title, description=p.description, arguments=[
                types.PromptArgument(name=a.name, description=a.description, required=a.required)
                for a in p.arguments()]) for p in prompts])

    async def get_prompt(ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> types.GetPromptResult:
        spec = prompt_by_name.get(params.name)
        if spec is None:
            raise protocol_error(NotFound(f"no prompt named {params.name!r} on the {server} server; one of "
                                          f"{', '.join(sorted(prompt_by_name))}"), prompt=params.name)
        try:
            args = spec.parse(params.arguments)
            messages = await spec.render(await call_of(ctx, prompt=spec.name), args)
        except MCPError:
            raise
        except LongtailError as exc:
            raise protocol_error(exc, prompt=spec.name) from None
        except Exception:
            raise protocol_error(internal_error(f"prompt {spec.name}"), prompt=spec.name) from None
        return types.GetPromptResult(description=spec.description, messages=[prompt_message(m) for m in messages])

    if prompts:
        handlers.update(on_list_prompts=list_prompts, on_get_prompt=get_prompt)
    return handlers

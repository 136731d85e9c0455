"""The http-fetch server: HTTP requests to the public internet, refusing internal addresses."""

import json
from typing import Any, Literal

from mcp.server import Server
from pydantic import BaseModel, ConfigDict, Field, model_validator

from longtail_mcp.fetch import reading
from longtail_mcp.fetch.client import Fetched, Policy, Transfer, fetch
from longtail_mcp.mcp_glue.server import PrincipalSource, build_server
from longtail_mcp.tools.progress import reporting
from longtail_mcp.tools.prompts import PromptSpec
from longtail_mcp.tools.resources import ResourceSpec
from longtail_mcp.tools.spec import Approvable, Services, ToolCall, ToolSpec

NAME = "http-fetch"
TAGS = ("http", "fetch", "web")
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class Args(Approvable):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=8192, description="An absolute http:// or https:// URL. Internal "
                     "addresses (loopback, private, link-local, metadata...) are refused unless allowed")
    headers: dict[str, str] = Field(default_factory=dict, max_length=50,
                                    description="Request headers (not Host, Content-Length or hop-by-hop ones). "
                                                "Only Accept*, User-Agent and Content-* follow a redirect to "
                                                "another origin")
    timeout_seconds: float | None = Field(None, gt=0, le=300, description="Whole request, redirects included "
                                          "(default and cap: the server's LONGTAIL_HTTP_TIMEOUT)")
    max_bytes: int | None = Field(None, ge=1, le=1 << 30, description="Cut the body after this many bytes and "
                                  "set truncated (default and cap: LONGTAIL_HTTP_MAX_BYTES)")


class RequestIn(Args):
    method: Method = Field("GET", description="HTTP method")
    body: str | None = Field(None, max_length=10_000_000, description="Request body as text (UTF-8)")
    json_body: Any = Field(None, description="Request body as JSON (sets Content-Type: application/json); "
                                             "not together with body")
    follow_redirects: bool = Field(True, description="Follow up to 5 redirects (each one checked); false "
                                   "returns the 3xx response itself")

    @model_validator(mode="after")
    def _one_body(self) -> "RequestIn":
        if self.body is not None and self.json_body is not None:
            raise ValueError("give body or json_body, not both")
        return self


class TextIn(Args):
    links: bool = Field(False, description="Keep links as [text](absolute url) and images as ![alt](absolute url)")
    max_length: int = Field(reading.DEFAULT_PAGE_CHARS, ge=1, le=reading.MAX_PAGE_CHARS,
                            description="Most characters of text to return in this page")
    start_index: int = Field(0, ge=0, description="First character to return: 0, then next_start from the "
                                                  "previous page")


class Redirect(BaseModel):
    url: str
    status: int


class RequestOut(BaseModel):
    status: int
    headers: dict[str, str] = Field(description="Response headers, repeated ones joined with ', '")
    body: str
    body_encoding: Literal["text", "base64"] = Field(description="text for textual content, else base64")
    final_url: str
    redirects: list[Redirect] = Field(description="Each redirect followed, in order")
    truncated: bool = Field(description="The body was longer than max_bytes and was cut there")
    elapsed: float = Field(description="Seconds, redirects included")


class JsonOut(BaseModel):
    data: Any
    status: int
    final_url: str


class TextOut(BaseModel):
    title: str | None
    text: str = Field(description="This page of the content: Markdown for HTML, else the text as it is")
    content_type: str
    status: int
    final_url: str
    truncated: bool = Field(description="More text follows this page: call again with start_index=next_start")
    next_start: int | None = Field(description="The start_index of the next page, or null on the last one")
    total_length: int = Field(description="Characters in the whole text (every page)")
    body_truncated: bool = Field(description="The response was longer than max_bytes and was cut there, so the "
                                             "text ends early; raise max_bytes to read further")


def _policy(call: ToolCall, args: Args) -> Policy:
    return Policy.from_settings(call.client.settings, max_bytes=args.max_bytes, timeout=args.timeout_seconds)


async def _fetch(call: ToolCall, args: Args, method: str, **options: Any) -> Fetched:
    """`fetch`, telling the caller meanwhile which URL it asks and how many bytes came; a cancelled call
    closes the connection."""
    policy = _policy(call, args)
    transfer = Transfer()

    async def status() -> str:
        got = f": {transfer.received:,} bytes received" if transfer.received else ""
        return f"fetching {transfer.url or args.url}{got}"

    return await reporting(call.progress, fetch(policy, method, args.url, approved=call.approved, transfer=transfer,
                                                **options), total=policy.timeout, status=status)


async def http_request(call: ToolCall, args: RequestIn) -> RequestOut:
    headers = dict(args.headers)
    content = args.body.encode() if args.body is not None else None
    if args.json_body is not None:
        content = json.dumps(args.json_body).encode()
        headers = reading.with_default(headers, "Content-Type", "application/json")
    response = await _fetch(call, args, args.method, headers=headers, content=content,
                            follow_redirects=args.follow_redirects)
    body, encoding = reading.body(response)
    return RequestOut(status=response.status, headers=reading.joined_headers(response), body=body,
                      body_encoding=encoding,
                      final_url=response.final_url, redirects=[Redirect(url=h.url, status=h.status)
                                                               for h in response.redirects],
                      truncated=response.truncated, elapsed=round(response.elapsed, 4))


async def fetch_json(call: ToolCall, args: Args) -> JsonOut:
    accept = reading.with_default(args.headers, "Accept", reading.JSON_ACCEPT)
    response = await _fetch(call, args, "GET", headers=accept)
    return JsonOut(data=reading.as_json(response), status=response.status, final_url=response.final_url)


async def fetch_text(call: ToolCall, args: TextIn) -> TextOut:
    accept = reading.with_default(args.headers, "Accept", reading.TEXT_ACCEPT)
    response = await _fetch(call, args, "GET", headers=accept)
    title, text = await reading.as_text(response, links=args.links)
    page = reading.page_of(text, args.start_index, args.max_length)
    return TextOut(title=title, text=page.text, content_type=response.content_type, status=response.status,
                   final_url=response.final_url, truncated=page.next_start is not None, next_start=page.next_start,
                   total_length=page.total, body_truncated=response.truncated)


_REFUSALS = (" Internal addresses (loopback, private, link-local, cloud metadata, ...) are refused, in every "
             "spelling and after every redirect, unless LONGTAIL_HTTP_ALLOW allows them.")

TOOLS = [
    ToolSpec("http_request", "Send an HTTP request (any method) and return status, headers and body (text, or "
             "base64 for binary content; cut at max_bytes with truncated=true). Follows up to 5 redirects."
             + _REFUSALS, RequestIn, RequestOut, http_request, destructive=True, open_world=True, tags=TAGS),
    ToolSpec("fetch_json", "GET a URL and return its JSON body parsed (an error if the body is not JSON)."
             + _REFUSALS, Args, JsonOut, fetch_json, read_only=True, idempotent=True, open_world=True, tags=TAGS),
    ToolSpec("fetch_text", "GET a page and return its title and its content as Markdown (headings, lists, code "
             "blocks and tables kept; scripts, styles and navigation dropped; plain text passes through), "
             "max_length characters at a time (default 5000): while truncated is true, call again with "
             "start_index=next_start." + _REFUSALS, TextIn, TextOut, fetch_text,
             read_only=True, idempotent=True, open_world=True, tags=TAGS),
]

RESOURCES: list[ResourceSpec] = []  # what it reads is the web: nothing of its own to publish
PROMPTS: list[PromptSpec] = []


def build(services: Services, principal_of: PrincipalSource) -> Server[Any]:
    return build_server(NAME, TOOLS, services, principal_of, instructions="HTTP requests to public addresses "
                        "(internal ones only through LONGTAIL_HTTP_ALLOW or an approval).")

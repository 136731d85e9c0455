"""What a fetched response says: its body as text or base64, as JSON, or as Markdown read a page at a time.

The same rules for the http-fetch tools, the CLI and Python callers.
"""

import base64
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from longtail_mcp.errors import InvalidInput
from longtail_mcp.fetch.client import Fetched
from longtail_mcp.fetch.text import decode, html_to_markdown

TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded",
              "application/xhtml+xml", "application/ld+json", "image/svg+xml")
HTML_TYPES = ("text/html", "application/xhtml+xml")
JSON_ACCEPT = "application/json"
TEXT_ACCEPT = "text/html, text/plain;q=0.9, */*;q=0.5"
DEFAULT_PAGE_CHARS = 5000  # as the reference MCP fetch server
MAX_PAGE_CHARS = 100_000  # bounds one result, which carries the page twice (text and structured content)


def with_default(headers: Mapping[str, str], name: str, value: str) -> dict[str, str]:
    """`headers` plus a default `name` header unless the caller set one (in any case)."""
    if any(k.lower() == name.lower() for k in headers):
        return dict(headers)
    return {**headers, name: value}


def is_text(response: Fetched) -> bool:
    kind = response.content_type
    return kind.startswith("text/") or kind in TEXT_TYPES or kind.endswith(("+json", "+xml"))


def body(response: Fetched) -> tuple[str, Literal["text", "base64"]]:
    """The body as text when it is textual (or valid UTF-8), else base64."""
    if is_text(response):
        return decode(response.body, response.charset), "text"
    try:
        return response.body.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(response.body).decode("ascii"), "base64"


def joined_headers(response: Fetched) -> dict[str, str]:
    """Response headers by lower-case name, repeated ones joined with ', '."""
    joined: dict[str, str] = {}
    for name, value in response.headers:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def as_json(response: Fetched) -> Any:
    """The body parsed as JSON.

    Raises:
        InvalidInput: the body was cut at max_bytes, or is not JSON.
    """
    if response.truncated:
        raise InvalidInput(f"the JSON from {response.final_url} is larger than max_bytes; raise max_bytes "
                           "(the server caps it at LONGTAIL_HTTP_MAX_BYTES)")
    try:
        return json.loads(decode(response.body, response.charset))
    except ValueError:
        raise InvalidInput(f"the response from {response.final_url} (status {response.status}, "
                           f"{response.content_type or 'no content type'}) is not JSON") from None


async def as_text(response: Fetched, *, links: bool = False) -> tuple[str | None, str]:
    """(title, text): HTML as Markdown (its main content), plain text as it is.

    The conversion runs in a worker thread: a large page costs seconds of CPU, which must not stall
    the event loop.

    Raises:
        InvalidInput: the body is not text (an image, a PDF...).
    """
    kind = response.content_type
    start = response.body[:512].lstrip().lower()
    if kind in HTML_TYPES or (not kind and start.startswith((b"<!doctype html", b"<html"))):
        html = decode(response.body, response.charset, html=True)
        page = await anyio.to_thread.run_sync(functools.partial(html_to_markdown, html, base_url=response.final_url,
                                                                links=links))
        return page.title, page.text
    if not kind or is_text(response):
        return None, decode(response.body, response.charset)
    raise InvalidInput(f"{response.final_url} answered {kind}, which is not text; use http_request "
                       "(it returns other content as base64)")


@dataclass(frozen=True)
class TextPage:
    """`length` characters of a text from `start`; `next_start` is where the next page begins (None: the last)."""

    text: str
    start: int
    total: int
    next_start: int | None


def page_of(text: str, start: int, length: int) -> TextPage:
    """One page of `text`: at most `length` characters from `start` (empty past the end).

    Raises:
        InvalidInput: a negative start or a length under 1.
    """
    if start < 0 or length < 1:
        raise InvalidInput("start_index must be 0 or more and max_length at least 1")
    end = start + length
    return TextPage(text=text[start:end], start=start, total=len(text),
                    next_start=end if end < len(text) else None)

"""What a fetched response says: its body as text or base64, as JSON, or as readable text.

The same rules for the http-fetch tools, the CLI and Python callers.
"""

import base64
import json
from collections.abc import Mapping
from typing import Any, Literal

from longtail_mcp.errors import InvalidInput
from longtail_mcp.fetch.client import Fetched
from longtail_mcp.fetch.text import decode, html_to_text

TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded",
              "application/xhtml+xml", "application/ld+json", "image/svg+xml")
HTML_TYPES = ("text/html", "application/xhtml+xml")
JSON_ACCEPT = "application/json"
TEXT_ACCEPT = "text/html, text/plain;q=0.9, */*;q=0.5"


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


def as_text(response: Fetched, *, links: bool = False) -> tuple[str | None, str]:
    """(title, readable text): HTML reduced to its main text, plain text as it is.

    Raises:
        InvalidInput: the body is not text (an image, a PDF...).
    """
    kind = response.content_type
    start = response.body[:512].lstrip().lower()
    if kind in HTML_TYPES or (not kind and start.startswith((b"<!doctype html", b"<html"))):
        page = html_to_text(decode(response.body, response.charset, html=True), base_url=response.final_url,
                            links=links)
        return page.title, page.text
    if not kind or is_text(response):
        return None, decode(response.body, response.charset)
    raise InvalidInput(f"{response.final_url} answered {kind}, which is not text; use http_request "
                       "(it returns other content as base64)")

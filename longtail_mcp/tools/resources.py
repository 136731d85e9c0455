"""One way to define a resource: `ResourceSpec` (a URI, or a URI template with a reader and a bounded lister).

A server publishes a run, an escalation, a pipeline's YAML, the schema or a file as a resource whose
reader calls the same core function as the matching tool, as the reading principal, so a resource
is never a second way around a visibility rule. `mcp_glue` turns these into MCP resources and
templates; nothing here knows MCP.
"""

import functools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from pydantic import BaseModel, ValidationError

from longtail_mcp.errors import InvalidInput
from longtail_mcp.tools.spec import ToolCall, describe_errors, title_of

M = TypeVar("M", bound=BaseModel)
_PARAM = re.compile(r"\{(\+?)([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Contents:
    """What a resource read gives: `text`, or binary `data` (sent base64 as a blob), with its MIME type."""

    mime: str
    text: str | None = None
    data: bytes | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Listed:
    """One concrete resource shown in a resources listing (e.g. a recent run of the reader's)."""

    uri: str
    name: str
    title: str = ""
    description: str = ""
    mime: str | None = None


# A reader gets the caller and the template's values (percent-decoded); a lister the caller only.
Reader = Callable[[ToolCall, dict[str, str]], Awaitable[Contents]]
Lister = Callable[[ToolCall], Awaitable[list[Listed]]]


@dataclass(frozen=True)
class ResourceSpec:
    """A resource (`uri` without braces: `longtail://schema`) or a family of them (a URI template:
    `longtail://runs/{id}` for one path segment, `longtail://files/{+path}` for a path with slashes).

    `listing`, for a template, names a bounded set of its resources worth showing in a client's list
    (the reader's recent runs, open escalations); a fixed resource is always listed.
    """

    uri: str
    name: str
    description: str
    read: Reader
    mime: str | None = None
    listing: Lister | None = None
    title: str = ""

    @property
    def display_title(self) -> str:
        return self.title or title_of(self.name)

    @property
    def is_template(self) -> bool:
        return _PARAM.search(self.uri) is not None

    def match(self, uri: str) -> dict[str, str] | None:
        """The template's values in `uri` (percent-decoded), or None when `uri` is not one of these resources."""
        found = _pattern(self.uri).fullmatch(uri)
        if found is None:
            return None
        values = {k: unquote(v) for k, v in found.groupdict().items()}
        return values if all(values.values()) else None


@functools.cache  # a handful of templates per process
def _pattern(template: str) -> re.Pattern[str]:
    parts, end = [], 0
    for param in _PARAM.finditer(template):
        parts.append(re.escape(template[end:param.start()]))
        # {name}: one path segment (a '/' in the value comes percent-encoded); {+name}: slashes allowed.
        parts.append(f"(?P<{param.group(2)}>{'[^?#]+' if param.group(1) else '[^/?#]+'})")
        end = param.end()
    parts.append(re.escape(template[end:]))
    return re.compile("".join(parts))


def uri_of(template: str, **values: str | int) -> str:
    """A template filled in: `uri_of("longtail://runs/{id}", id="a/1")` -> `longtail://runs/a%2F1`."""

    def fill(param: re.Match[str]) -> str:
        return quote(str(values[param.group(2)]), safe="/" if param.group(1) else "")

    return _PARAM.sub(fill, template)


def json_contents(value: BaseModel | dict[str, Any] | list[Any]) -> Contents:
    """A JSON resource: a typed record or plain data, indented for a person."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return Contents(mime="application/json", text=json.dumps(data, indent=2, default=str))


def parse_values(model: type[M], values: dict[str, str]) -> M:
    """A template's values as a tool's input model (`{version}` becomes an int, a name is checked).

    Raises:
        InvalidInput: they do not fit (the message says which and why).
    """
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput(f"resource URI: {describe_errors(exc)}") from None

"""One way to define a tool: `ToolSpec`, what its handler receives (`ToolCall`), and argument parsing.

A `ToolSpec` holds a pydantic input model and output model, a description, honest annotations,
tags and compile hints, and a thin handler that calls the core services. From it come the MCP tool
(`mcp_glue`), the stored manifest used by discovery, the read/full scope gate (fail closed: only
`read_only=True` tools are read tools), and in-run calls (`ctx.call_tool`). Nothing here knows MCP.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from longtail_mcp.config import Settings
from longtail_mcp.db.pool import Database
from longtail_mcp.errors import InvalidInput
from longtail_mcp.events import EventBus
from longtail_mcp.humans.identity import Principal
from longtail_mcp.tools.sessions import RemoteSessions

if TYPE_CHECKING:
    from longtail_mcp.tools.catalog import Catalog


class Services(Protocol):
    """What a tool handler may use: the database, the settings, the event feed, the sessions to registered
    servers, and which workflow types this process runs. The composition root's `Client` (and
    `LongTail`) provide it."""

    @property
    def db(self) -> Database: ...

    settings: Settings
    events: EventBus
    remote_sessions: RemoteSessions

    def served_workflows(self) -> list[str]: ...

    def family_tool(self, server: str, tool: str) -> "ToolSpec | None":
        """One of the family's own tools by server and name (loaded on first use)."""
        ...

    async def tool_catalog(self) -> "Catalog":
        """Every tool a run can call now (the family's and registered servers'), for pipelines."""
        ...


# Reports a call's progress to its caller: (progress, total, message). Progress only grows; total may be None.
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


async def no_progress(progress: float, total: float | None = None, message: str | None = None) -> None:
    """The progress of a call nobody watches (in-run calls, and callers that asked for none)."""


class Args(BaseModel):
    """Base of every tool's input model: unknown arguments are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class NoArgs(Args):
    """The input of a tool that takes no arguments."""


@dataclass(frozen=True)
class ToolCall:
    """What a handler gets besides its arguments: the services and who is calling.

    `approved` is True only when this exact call spent an approval (see `Approvable`): the handler
    then skips the policy check that the approval covers, and only that one. `progress` tells the
    caller how a long call is going (`tools.progress.reporting`); a no-op unless an MCP client asked.
    """

    client: Services
    principal: Principal
    approved: bool = False
    progress: Progress = no_progress


class Approvable(BaseModel):
    """Input mixin of tools whose refusals by policy can become approvals (docs/security.md)."""

    request_approval: bool = Field(False, description="If a safety policy refuses this call, ask the approver role "
                                                      "to allow this exact call once (the error names the escalation)")
    approval_id: str | None = Field(None, min_length=1, max_length=300,
                                    description="An approved escalation for this exact call: it goes through once")


Handler = Callable[[ToolCall, Any], Awaitable[BaseModel | dict[str, Any]]]


@dataclass(frozen=True)
class Image:
    """An image a result carries, for clients that show images: base64 `data` and its MIME type, and the
    top-level `field` of the result that holds it (the text copy of the result leaves that field's base64
    out: the image content carries it, and a model reading the text would pay for it twice)."""

    data: str
    mime: str
    field: str | None = None


# The images in a tool's validated structured result (often none).
ImagesOf = Callable[[dict[str, Any]], list[Image]]


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
    # Images to show besides the result (MCP image content); the structured result stays as it is.
    images: ImagesOf | None = None
    title: str = ""  # what a person reads in a client; default: from the name (`run_sql` -> "Run SQL")

    @property
    def display_title(self) -> str:
        return self.title or title_of(self.name)

    def input_schema(self) -> dict[str, Any]:
        return flat_schema(self.input)

    def output_schema(self) -> dict[str, Any]:
        return flat_schema(self.output)

    def annotations(self) -> dict[str, bool]:
        return {"readOnlyHint": self.read_only, "destructiveHint": self.destructive,
                "idempotentHint": self.idempotent, "openWorldHint": self.open_world}

    def manifest(self, server: str) -> dict[str, Any]:
        """The stored description of the tool used by discovery and agents (never written by hand)."""
        return {
            "server": server, "name": self.name, "description": self.description,
            "input_schema": self.input_schema(), "output_schema": self.output_schema(),
            "annotations": self.annotations(), "tags": list(self.tags), "compile_hints": self.compile_hints,
        }


_WORDS = {"sql": "SQL", "json": "JSON", "http": "HTTP", "mcp": "MCP", "id": "ID", "url": "URL", "yaml": "YAML"}


def title_of(name: str) -> str:
    """A tool's name as a title: `get_escalation_stats` -> "Get escalation stats", `fetch_json` -> "Fetch JSON"."""
    words = [_WORDS.get(w, w) for w in name.replace("-", "_").split("_") if w]
    if not words:
        return name
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def flat_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


def describe_errors(error: ValidationError) -> str:
    """A validation error in a line a person can act on: each wrong field and what is wrong with it."""
    parts = []
    for e in error.errors()[:8]:
        where = ".".join(str(p) for p in e["loc"]) or "(arguments)"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def parse_args(spec: ToolSpec, arguments: dict[str, Any]) -> BaseModel:
    """The tool's input model from raw arguments.

    Raises:
        InvalidInput: they do not match its schema (the message lists what is wrong).
    """
    try:
        return spec.input.model_validate(arguments)
    except ValidationError as exc:
        raise InvalidInput(f"{spec.name}: {describe_errors(exc)}") from None

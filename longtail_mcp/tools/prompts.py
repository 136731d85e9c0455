"""One way to define a prompt: `PromptSpec` (its arguments as a pydantic model, and a renderer).

A prompt's renderer fetches what the prompt is about (a run, the reader's queue, an escalation) with the
same core functions as the tools, as the principal asking, and returns messages: instructions naming
the tools to use, and the data as embedded resources. `mcp_glue` turns these into MCP prompts; nothing
here knows MCP.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from longtail_mcp.errors import InvalidInput
from longtail_mcp.tools.resources import Contents
from longtail_mcp.tools.spec import ToolCall, describe_errors, title_of


@dataclass(frozen=True)
class Message:
    """One message of a rendered prompt: text, or a resource embedded with its URI."""

    text: str | None = None
    resource: tuple[str, Contents] | None = None
    role: Literal["user", "assistant"] = "user"


@dataclass(frozen=True)
class Argument:
    name: str
    description: str
    required: bool


Renderer = Callable[[ToolCall, Any], Awaitable[list[Message]]]


@dataclass(frozen=True)
class PromptSpec:
    """One prompt. `input` is an `Args` model of string fields (MCP prompt arguments are strings); its field
    descriptions are the arguments' descriptions, and a field without a default is required."""

    name: str
    description: str
    input: type[BaseModel]
    render: Renderer
    title: str = ""

    @property
    def display_title(self) -> str:
        return self.title or title_of(self.name)

    def arguments(self) -> list[Argument]:
        return [Argument(name, info.description or "", info.is_required())
                for name, info in self.input.model_fields.items()]

    def parse(self, arguments: dict[str, Any] | None) -> BaseModel:
        """The prompt's arguments, validated.

        Raises:
            InvalidInput: they do not match (the message lists what is wrong and names the arguments).
        """
        try:
            return self.input.model_validate(arguments or {})
        except ValidationError as exc:
            known = ", ".join(a.name + ("" if a.required else " (optional)") for a in self.arguments()) or "none"
            raise InvalidInput(f"prompt {self.name}: {describe_errors(exc)}; its arguments: {known}") from None

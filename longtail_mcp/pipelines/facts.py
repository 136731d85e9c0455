"""What the compilers need to know of a tool (`KnownTool`), and the `ToolLookup` that finds it."""

from collections.abc import Callable
from typing import Any, Protocol


class KnownTool(Protocol):
    """Any description of a tool with these facts (`ToolFacts`, or the catalog's `ToolInfo`)."""

    @property
    def read_only(self) -> bool: ...

    @property
    def hints(self) -> dict[str, Any]: ...

    @property
    def input_schema(self) -> dict[str, Any]: ...


ToolLookup = Callable[[str], KnownTool | None]  # "server/tool" -> its facts, None when unknown

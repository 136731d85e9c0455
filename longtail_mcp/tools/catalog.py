"""The tool catalog: every tool a run can call by `server/tool` (the family's own and registered servers'),
with what validating and compiling a pipeline needs to know of each."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from longtail_mcp.db.pool import Database
from longtail_mcp.tools import registry
from longtail_mcp.tools.spec import ToolSpec


@dataclass(frozen=True)
class ToolInfo:
    """A tool as pipelines see it."""

    read_only: bool
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    hints: dict[str, Any] = field(default_factory=dict)  # compile hints (docs/pipelines.md)
    description: str = ""
    tags: tuple[str, ...] = ()


class Catalog:
    """A snapshot of the tools known now: the family's (from their definitions) and registered servers'
    (from their cached manifests, with their server's compile hints for the tool)."""

    def __init__(self, family: Callable[[str, str], ToolSpec | None], registered: dict[str, ToolInfo],
                 family_names: Iterable[str] = ()) -> None:
        self._family = family
        self._registered = registered
        self._family_names = list(family_names)

    def names(self) -> list[str]:
        """Every known tool as `server/tool` (an unknown tool's error suggests the closest)."""
        return sorted({*self._family_names, *self._registered})

    def all(self) -> list[tuple[str, ToolInfo]]:
        """Every known tool with what is known of it, by `server/tool`."""
        return [(name, info) for name in self.names() if (info := self(name)) is not None]

    def __call__(self, qualified: str) -> ToolInfo | None:
        server, _, tool = qualified.partition("/")
        spec = self._family(server, tool) if server and tool else None
        if spec is not None:
            return ToolInfo(spec.read_only, spec.input_schema(), spec.output_schema(), dict(spec.compile_hints),
                            spec.description, tuple(spec.tags))
        return self._registered.get(qualified)

    @classmethod
    async def load(cls, db: Database, family: Callable[[str, str], ToolSpec | None],
                   family_names: Iterable[str] = ()) -> "Catalog":
        registered: dict[str, ToolInfo] = {}
        hints = {s["name"]: s["compile_hints"] or {} for s in await registry.list_servers(db)}
        for row in await registry.manifests_for_gateway(db):
            server_hints = hints.get(row["server"], {})
            registered[f"{row['server']}/{row['name']}"] = ToolInfo(
                read_only=bool((row["annotations"] or {}).get("readOnlyHint")),
                input_schema=row["input_schema"] or {}, output_schema=row["output_schema"],
                hints=dict(server_hints.get(row["name"], {})) if isinstance(server_hints, dict) else {},
                description=row["description"] or "", tags=tuple(row.get("tags") or ()))
        return cls(family, registered, family_names)

"""The tools an agent is offered: chosen from the catalog (the family's and registered servers') by tags or
names, under model-facing names (`server__tool`: the Messages API allows no `/`), and — when more than
MAX_SHOWN match — replaced by `find_tools`, which searches them and adds what it finds."""

import re
from typing import Any, Protocol

from longtail_mcp.errors import InvalidInput
from longtail_mcp.tools.catalog import Catalog, ToolInfo

MAX_SHOWN = 40
FIND_TOOLS = "find_tools"
ESCALATE = "human-queue/escalate_and_wait"
# Servers that manage longtail-mcp itself: offered only when asked for by tag or name.
MANAGING = frozenset({"workflows", "compiler", "human-queue"})
_FIND = {
    "name": FIND_TOOLS,
    "description": "Search the available tools by what they do; the ones found can be called from the next turn.",
    "input_schema": {"type": "object", "required": ["query"], "properties": {
        "query": {"type": "string", "description": "words describing the capability you need"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5}}},
}


class HasCatalog(Protocol):
    async def tool_catalog(self) -> Catalog: ...


def model_name(qualified: str) -> str:
    """`db-query/run_sql` -> `db-query__run_sql` (letters, digits, `_` and `-` only, at most 64)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", qualified.replace("/", "__", 1))[:64]


def definition(qualified: str, info: ToolInfo) -> dict[str, Any]:
    schema = info.input_schema or {"type": "object", "properties": {}}
    return {"name": model_name(qualified), "description": (info.description or qualified)[:1024],
            "input_schema": schema}


def matching(catalog: Catalog, tags: list[str] | None, tools: list[str] | None) -> list[tuple[str, ToolInfo]]:
    everything = catalog.all()
    if tools is not None:
        known = dict(everything)
        unknown = [t for t in tools if t not in known]
        if unknown:
            raise InvalidInput(f"unknown tools {unknown}; known tools look like 'files/read_file'")
        return [(t, known[t]) for t in tools]
    if tags:
        wanted = set(tags)
        chosen = [(q, i) for q, i in everything if wanted & {q.partition("/")[0], *i.tags}]
    else:
        chosen = [(q, i) for q, i in everything if q.partition("/")[0] not in MANAGING]
    if not any(q == ESCALATE for q, _ in chosen) and (escalate := catalog(ESCALATE)) is not None:
        chosen.append((ESCALATE, escalate))
    return chosen


async def select(services: HasCatalog, tags: list[str] | None, tools: list[str] | None) -> dict[str, Any]:
    """The first turn's offer: `{names: {model name: server/tool}, tools: [definitions]}`."""
    chosen = matching(await services.tool_catalog(), tags, tools)
    if len(chosen) > MAX_SHOWN:
        chosen = [(q, i) for q, i in chosen if q == ESCALATE]
        return {"names": {model_name(q): q for q, _ in chosen},
                "tools": [_FIND, *(definition(q, i) for q, i in chosen)]}
    return {"names": {model_name(q): q for q, _ in chosen}, "tools": [definition(q, i) for q, i in chosen]}


def score(words: set[str], qualified: str, info: ToolInfo) -> int:
    text = f"{qualified} {info.description} {' '.join(info.tags)}".lower()
    haystack = set(re.findall(r"[a-z0-9]+", text))
    return sum(2 if w in haystack else 1 for w in words if w in text)


async def find(services: HasCatalog, args: dict[str, Any], tags: list[str] | None,
               tools: list[str] | None) -> dict[str, Any]:
    """`find_tools`: the best matches among the tools the run may use, ranked by the words they share."""
    words = set(re.findall(r"[a-z0-9]+", str(args.get("query", "")).lower()))
    limit = max(1, min(10, int(args.get("limit") or 5)))
    ranked = sorted(((score(words, q, i), q, i) for q, i in matching(await services.tool_catalog(), tags, tools)),
                    key=lambda r: (-r[0], r[1]))
    best = [(q, i) for points, q, i in ranked if points > 0][:limit]
    return {"names": {model_name(q): q for q, _ in best}, "tools": [definition(q, i) for q, i in best],
            "summary": [{"name": model_name(q), "description": i.description} for q, i in best]}

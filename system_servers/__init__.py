"""The MCP servers of the family: schemas and thin handlers over the longtail_mcp services."""

from collections.abc import Callable
from typing import Any

from system_servers.human_queue import server as human_queue
from system_servers.workflows import server as workflows

SERVERS: dict[str, Any] = {workflows.NAME: workflows, human_queue.NAME: human_queue}


def builder(name: str) -> Callable[..., Any]:
    """The `build(client, principal_of)` of a server by name (`workflows`, `human-queue`)."""
    try:
        return SERVERS[name].build  # type: ignore[no-any-return]
    except KeyError:
        raise KeyError(f"no server named {name!r}; one of {', '.join(sorted(SERVERS))}") from None

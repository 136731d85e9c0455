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


def gateway(client: Any, principal_of: Any) -> Any:
    """Every tool of the family behind one server (tool names are unique across it)."""
    from longtail_mcp.mcp_glue.server import build_server

    tools = [spec for module in SERVERS.values() for spec in module.TOOLS]
    return build_server("longtail", tools, client, principal_of,
                        instructions="longtail-mcp: durable workflow runs and the human queue.")

"""The MCP servers of the family: schemas and thin handlers over the longtail_mcp services."""

import logging
from collections.abc import Callable
from typing import Any

import mcp.types as types

from longtail_mcp.errors import NotFound
from longtail_mcp.humans.identity import Principal
from longtail_mcp.mcp_glue.server import ListChanged, Proxy, build_server
from longtail_mcp.tools import registry
from longtail_mcp.tools.spec import Progress, no_progress
from system_servers.compiler import server as compiler
from system_servers.db_query import server as db_query
from system_servers.files import server as files
from system_servers.http_fetch import server as http_fetch
from system_servers.human_queue import server as human_queue
from system_servers.runnables import PipelineTools, Proxies, WorkflowTools
from system_servers.workflows import server as workflows

logger = logging.getLogger(__name__)
SERVERS: dict[str, Any] = {module.NAME: module
                           for module in (workflows, human_queue, compiler, db_query, files, http_fetch)}


def builder(name: str) -> Callable[..., Any]:
    """The `build(client, principal_of)` of a server by name (`workflows`, `human-queue`)."""
    try:
        return SERVERS[name].build  # type: ignore[no-any-return]
    except KeyError:
        raise KeyError(f"no server named {name!r}; one of {', '.join(sorted(SERVERS))}") from None


async def publish_manifests(client: Any, *, refresh_registered: bool = True) -> None:
    """Store our own servers' manifests (generated from the definitions) so find_tools sees them, and
    reconnect to every registered server to refresh its cached tools (failures are recorded, not fatal)."""
    for name, module in SERVERS.items():
        await registry.register_builtin(client.db, name, [spec.manifest(name) for spec in module.TOOLS],
                                        description=f"longtail-mcp {name} server", tags=list(module.TAGS))
    if refresh_registered:
        for server in await registry.list_servers(client.db):
            if server["transport"] != "builtin":
                try:
                    await registry.refresh(client.db, server["name"])
                except Exception as exc:  # recorded in mcp_server.last_error by refresh()
                    logger.warning("could not refresh MCP server %s: %s", server["name"], exc)


class RegisteredTools(Proxy):
    """Registered servers' tools, shown in the gateway as `<server>__<tool>` and called through it, to
    the principals each server's registration allows (see tools/registry.py)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def tools(self, principal: Principal) -> list[types.Tool]:
        out = []
        for row in await registry.manifests_for_gateway(self.client.db):
            read_only = bool((row["annotations"] or {}).get("readOnlyHint"))
            if not registry.may_call(principal, row, read_only):
                continue
            out.append(types.Tool(
                name=f"{row['server']}__{row['name']}", description=f"[{row['server']}] {row['description']}",
                input_schema=row["input_schema"] or {"type": "object"},
                annotations=types.ToolAnnotations.model_validate(row["annotations"] or {}),
            ))
        return out

    async def call(self, name: str, arguments: dict[str, Any], principal: Principal,
                   progress: Progress = no_progress) -> dict[str, Any] | None:
        server, sep, tool = name.partition("__")
        if not sep:
            return None
        try:
            result = await registry.call_tool(self.client.db, server, tool, arguments, principal=principal,
                                              sessions=self.client.remote_sessions,
                                              progress=None if progress is no_progress else progress)
        except NotFound:  # no such registered tool (its manifest, read once, there): not one of ours
            return None
        return result if isinstance(result, dict) else {"result": result}


def gateway(client: Any, principal_of: Any, list_changed: ListChanged | None = None) -> Any:
    """Every tool of the family behind one server (names unique across it), plus the active pipelines, the
    workflow types published as tools, and registered servers' tools; and every server's resources and prompts."""
    tools = [spec for module in SERVERS.values() for spec in module.TOOLS]
    resources = [spec for module in SERVERS.values() for spec in module.RESOURCES]
    prompts = [spec for module in SERVERS.values() for spec in module.PROMPTS]
    proxy = Proxies(PipelineTools(client), WorkflowTools(client), RegisteredTools(client))
    return build_server("longtail", tools, client, principal_of, proxy=proxy, list_changed=list_changed,
                        resources=resources, prompts=prompts,
                        instructions="longtail-mcp: durable workflow runs, the human queue, pipelines (each active "
                                     "one is a tool), and registered tools.")

"""The family's own tools, called in process from a run (`ctx.call_tool("files/write_file", ...)`).

The servers live in `system_servers/`, above the core; this module is the one place the runtime
reaches them, on first use, so the core never imports them at load time.
"""

from typing import Any

from longtail_mcp.humans.identity import Principal
from longtail_mcp.mcp_glue.server import ToolSpec, invoke


def find(server: str, tool: str) -> ToolSpec | None:
    """The definition of `server/tool` if it is one of the family's own tools."""
    from system_servers import SERVERS  # the family sits above the core: imported on first use only

    module = SERVERS.get(server)
    if module is None:
        return None
    return next((spec for spec in module.TOOLS if spec.name == tool), None)


async def call(client: Any, server: str, spec: ToolSpec, principal: Principal, arguments: dict[str, Any]) -> Any:
    """One in-process call, exactly as over MCP (validation, approvals, handler), returning structured content.
    A refusal by policy is raised as it is: the run asks the approver itself (Context.call_tool)."""
    return await invoke(spec, server, client, principal, arguments, explain=False)

"""How the composition root plugs the layers into the runtime kernel's extension points."""

from longtail_mcp.agents import triage
from longtail_mcp.db.pool import Database
from longtail_mcp.humans.certified import CertifiedInterceptor
from longtail_mcp.humans.identity import Principal
from longtail_mcp.humans.runs import RolesInterceptor
from longtail_mcp.humans.waits import EscalationWait, cancel_listener, deadline_task
from longtail_mcp.runtime.ports import Extensions
from longtail_mcp.tools.invoker import Family, FamilyInvoker
from longtail_mcp.tools.spec import Services


def family_tools() -> Family:
    """The tools of the family's servers (system_servers), by server name.

    Imported when a run first calls one, not when `longtail_mcp` is imported: the MCP stack the
    servers pull in costs about a second, which a program that only starts runs should not pay.
    """
    import system_servers

    return {name: module.TOOLS for name, module in system_servers.SERVERS.items()}


def extensions(services: Services, db: Database) -> Extensions:
    """Everything above the kernel that a worker, a handle or the cancel service needs."""
    certified = CertifiedInterceptor(db)
    return Extensions(
        tools=FamilyInvoker(services, family_tools),
        waits={"escalation": EscalationWait(db)},
        interceptors=[RolesInterceptor(), certified],  # the first is outermost: refused before certified
        periodic=[("escalation deadlines", deadline_task(db)), ("certified workflow types", certified.refresh),
                  ("escalation strategies", triage.dispatch_task(db))],
        on_cancel=[cancel_listener(db)],
        principal=Principal.from_json,
    )

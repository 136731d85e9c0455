"""longtail-mcp: durable workflows for agents and humans on Postgres, served over MCP.

Everything a program needs is here: the app and client, the workflow context, typed results, the
human queue as a principal sees it, and the errors it may catch. `tests/test_public_api.py` pins
this list: adding a name is an API decision.
"""

from typing import TYPE_CHECKING, Any

from longtail_mcp.errors import (
    ConfigurationError,
    Conflict,
    EscalationClosed,
    Forbidden,
    InvalidInput,
    LongtailError,
    NonDeterminism,
    NonRetryableError,
    NotFound,
    PolicyDenied,
    StepFailed,
    Unauthenticated,
    Unavailable,
    WaitTimeout,
    WorkflowFailed,
)

if TYPE_CHECKING:
    from longtail_mcp.app import Client, LongTail
    from longtail_mcp.config import Settings, load_settings
    from longtail_mcp.events import Event
    from longtail_mcp.humans.certified import Escalation
    from longtail_mcp.humans.identity import Principal
    from longtail_mcp.humans.models import Escalation as EscalationRecord
    from longtail_mcp.humans.models import EscalationStats, EscalationStatus
    from longtail_mcp.humans.queue import HumanQueue
    from longtail_mcp.humans.runs import Runs
    from longtail_mcp.records import Record
    from longtail_mcp.runtime.context import Context, StepInfo, current_step
    from longtail_mcp.runtime.handle import Handle
    from longtail_mcp.runtime.models import Run, RunExport, RunInfo, RunStatus, RunSummary, Schedule, Step

# The rest is imported on first use (PEP 562), so `import longtail_mcp.cli` and `longtail-mcp --help` do
# not load the database driver, the runtime and the servers before they are needed.
_LAZY = {
    "Client": ("longtail_mcp.app", "Client"), "LongTail": ("longtail_mcp.app", "LongTail"),
    "Settings": ("longtail_mcp.config", "Settings"), "load_settings": ("longtail_mcp.config", "load_settings"),
    "Event": ("longtail_mcp.events", "Event"), "Escalation": ("longtail_mcp.humans.certified", "Escalation"),
    "Principal": ("longtail_mcp.humans.identity", "Principal"),
    "EscalationRecord": ("longtail_mcp.humans.models", "Escalation"),
    "EscalationStats": ("longtail_mcp.humans.models", "EscalationStats"),
    "EscalationStatus": ("longtail_mcp.humans.models", "EscalationStatus"),
    "HumanQueue": ("longtail_mcp.humans.queue", "HumanQueue"), "Runs": ("longtail_mcp.humans.runs", "Runs"),
    "Record": ("longtail_mcp.records", "Record"), "Context": ("longtail_mcp.runtime.context", "Context"),
    "StepInfo": ("longtail_mcp.runtime.context", "StepInfo"),
    "current_step": ("longtail_mcp.runtime.context", "current_step"),
    "Handle": ("longtail_mcp.runtime.handle", "Handle"),
    **{name: ("longtail_mcp.runtime.models", name)
       for name in ("Run", "RunExport", "RunInfo", "RunStatus", "RunSummary", "Schedule", "Step")},
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'longtail_mcp' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Client",
    "ConfigurationError",
    "Conflict",
    "Context",
    "Escalation",
    "EscalationClosed",
    "EscalationRecord",
    "EscalationStats",
    "EscalationStatus",
    "Event",
    "Forbidden",
    "Handle",
    "HumanQueue",
    "InvalidInput",
    "LongTail",
    "LongtailError",
    "NonDeterminism",
    "NonRetryableError",
    "NotFound",
    "PolicyDenied",
    "Principal",
    "Record",
    "Run",
    "RunExport",
    "RunInfo",
    "RunStatus",
    "RunSummary",
    "Runs",
    "Schedule",
    "Settings",
    "Step",
    "StepFailed",
    "StepInfo",
    "Unauthenticated",
    "Unavailable",
    "WaitTimeout",
    "WorkflowFailed",
    "current_step",
    "load_settings",
]

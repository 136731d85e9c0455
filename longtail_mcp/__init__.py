"""longtail-mcp: durable workflows for agents and humans on Postgres, served over MCP.

Everything a program needs is here: the app and client, the workflow context, typed results, the
human queue as a principal sees it, and the errors it may catch. `tests/test_public_api.py` pins
this list: adding a name is an API decision.
"""

from longtail_mcp.app import Client, LongTail
from longtail_mcp.config import Settings, load_settings
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

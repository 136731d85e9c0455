"""longtail-mcp: durable workflows for agents and humans on Postgres, served over MCP."""

from longtail_mcp.app import Client, LongTail
from longtail_mcp.config import Settings, load_settings
from longtail_mcp.errors import (
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
    Unavailable,
    WaitTimeout,
    WorkflowFailed,
)
from longtail_mcp.events import Event
from longtail_mcp.humans.certified import Escalation
from longtail_mcp.humans.identity import Principal
from longtail_mcp.runtime.context import Context, StepInfo, current_step
from longtail_mcp.runtime.handle import Handle

__all__ = [
    "Client",
    "Conflict",
    "Context",
    "Escalation",
    "EscalationClosed",
    "Event",
    "Forbidden",
    "Handle",
    "InvalidInput",
    "LongTail",
    "LongtailError",
    "NonDeterminism",
    "NonRetryableError",
    "NotFound",
    "PolicyDenied",
    "Principal",
    "Settings",
    "StepFailed",
    "StepInfo",
    "Unavailable",
    "WaitTimeout",
    "WorkflowFailed",
    "current_step",
    "load_settings",
]

"""The human queue's typed results, defined once: what the services return and the servers publish."""

from typing import Any, Literal

from pydantic import Field

from longtail_mcp.records import Record

EscalationStatus = Literal["pending", "resolved", "cancelled", "expired"]
EscalationSort = Literal["priority", "oldest", "newest"]  # inbox.SORTS: most urgent first (then oldest), by age
Membership = Literal["member", "admin", "superadmin"]


class Escalation(Record):
    """One request for a person's decision."""

    id: str
    role: str
    status: EscalationStatus
    type: str = "review"
    message: str
    priority: int
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    form_schema: dict[str, Any] | None = None
    form_version: int | None = None
    assigned_to: str | None = None
    assigned_until: str | None = None
    deadline_at: str | None = None
    stage: int = 0
    action_hash: str | None = Field(None, description="sha256 of the exact call an approval is for")
    approval_used_at: str | None = None
    resolution: dict[str, Any] | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None
    reason: str | None = None
    workflow_id: str | None = None
    seq: int | None = None
    created_by: str | None = None
    created_at: str
    updated_at: str | None = None


class EscalationStats(Record):
    """Counts by status and role, and throughput over the last hour and day."""

    by_status: dict[str, int]
    by_role: dict[str, dict[str, int]]
    created_1h: int
    created_1d: int
    resolved_1h: int
    resolved_1d: int

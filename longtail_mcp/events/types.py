"""The event vocabulary. Payloads stay small (ids, names, statuses), never inputs, results or secrets."""

import json
from dataclasses import asdict, dataclass
from typing import Any

EVENT_TYPES = (
    "run.started",
    "run.completed",
    "run.failed",
    "run.waiting",
    "run.cancelled",
    "step.completed",
    "escalation.created",
    "escalation.claimed",
    "escalation.released",
    "escalation.resolved",
    "escalation.expired",
    "escalation.cancelled",
    "escalation.escalated",
    "pipeline.activated",
    "pipeline.archived",
    "tools.changed",
    "file.written",
    "file.deleted",
)


@dataclass(frozen=True)
class Event:
    """One change. `workflow_id` names the run it concerns (if any)."""

    type: str
    workflow_id: str | None = None
    name: str | None = None
    status: str | None = None
    seq: int | None = None
    kind: str | None = None
    id: str | None = None  # the escalation, pipeline or file it concerns
    at: float | None = None

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Event":
        data: dict[str, Any] = json.loads(text)
        fields: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**fields)


def matches(event_type: str, patterns: list[str] | None) -> bool:
    """`run.completed` matches `run.completed`, `run.*` and `*`; no patterns match everything."""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False

"""The runtime's typed results, defined once: what the services return and the servers publish."""

from typing import Any, Literal

from pydantic import Field

from longtail_mcp.records import Record

RunStatus = Literal["pending", "running", "waiting", "completed", "failed", "cancelled"]
RunKind = Literal["workflow", "hook"]
StepStatus = Literal["completed", "failed", "waiting", "retrying"]


class RunSummary(Record):
    """A run in a listing."""

    id: str
    name: str
    kind: RunKind = "workflow"
    status: RunStatus
    parent_id: str | None = None
    waiting_for: str | None = Field(None, description="What a waiting run waits on: sleep, signal:NAME, child, "
                                                       "hooks, retry:STEP, escalation:ID")
    created_at: str
    updated_at: str | None = None
    completed_at: str | None = None


class RunInfo(RunSummary):
    """A run as its watchers see it: its input, and its result or error once it has ended."""

    input: Any = None
    result: Any = None
    error: dict[str, Any] | None = None


class Run(RunInfo):
    """A run's whole row: also its entity state, who it acts for, and how workers hold it."""

    state: Any = None
    parent_seq: int | None = None
    principal: dict[str, Any] | None = None
    owner: str | None = None
    lease_epoch: int = 0
    due_at: str | None = None
    claims: int = 0


class FoundRun(RunSummary):
    """A run found by its entity state (`find_runs`)."""

    state: Any = None


class Step(Record):
    """One journal entry of a run."""

    seq: int
    key: str | None = Field(None, description="A keyed entry's stable key (a pipeline step: `id` or `id:item`)")
    kind: str
    name: str
    status: StepStatus
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 1
    wake_at: str | None = None
    epoch: int | None = None
    worker: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class Signal(Record):
    """A signal a run received (consumed by the wait at `consumed_seq`, or still buffered)."""

    id: int
    name: str
    payload: Any = None
    consumed_seq: int | None = None
    created_at: str


class RunExport(Record):
    """A run's full history."""

    run: Run
    steps: list[Step]
    signals: list[Signal]


class Schedule(Record):
    """A cron schedule."""

    name: str
    workflow: str
    cron: str
    input: Any = None
    enabled: bool = True
    next_at: str | None = None
    last_at: str | None = None
    last_run_id: str | None = None


class WorkflowType(Record):
    """A workflow type some live worker runs."""

    name: str
    workers: int
    cron: str | None = None


class WorkflowTool(Record):
    """A workflow type published as an MCP tool (`@app.workflow(..., tool=True)`)."""

    name: str
    description: str = ""
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    wrapped: bool = Field(False, description="Its input is one value, passed as the argument `input`")
    roles: list[str] = Field(default_factory=list)

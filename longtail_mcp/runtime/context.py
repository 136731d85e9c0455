"""The workflow context: every operation a workflow body performs, checkpointed and replayable.

`Context` is assembled from one module per concept: the replay cursor (`replay.py`: sequence
numbers, journal lookups and writes), steps (`steps.py`: `run`, `call_tool`, `gather`, recorded
values), waits (`waits.py`: sleep, signals, children, hooks, external waits such as `escalate`) and
entity state (`state.py`).
"""

from typing import TYPE_CHECKING, Any

from longtail_mcp.runtime.replay import Record, StepInfo, Suspend, current_step
from longtail_mcp.runtime.state import State, StateOps
from longtail_mcp.runtime.steps import Steps
from longtail_mcp.runtime.waits import Waits

if TYPE_CHECKING:
    from longtail_mcp.runtime.worker import Worker

__all__ = ["Context", "Record", "StepInfo", "Suspend", "current_step"]


class Context(Steps, Waits, StateOps):
    """Passed to every workflow body as its first argument.

    Each method allocates the next sequence number when it is *called* (not when awaited), so
    `ctx.gather(ctx.run(a), ctx.run(b))` numbers a and b in argument order on every replay.
    """

    def __init__(
        self,
        worker: "Worker",
        *,
        workflow_id: str,
        name: str,
        input: Any,
        epoch: int,
        journal: dict[int, Record],
        entity_id: str | None = None,
        principal: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(worker, workflow_id=workflow_id, epoch=epoch, journal=journal, entity_id=entity_id)
        self.name = name
        self.input = input
        self.principal_json = principal
        self.principal = worker.extensions.principal(principal)  # who the run acts for, or None
        self.resolver: Any = None  # certified workflows: the payload of the resolution that re-ran them
        self.state = State(self)

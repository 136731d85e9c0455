"""The kernel's extension points: what the packages above it plug in, without the kernel importing them.

The composition root (`longtail_mcp.app`) fills one `Extensions` and hands it to workers, handles and
the cancel service:

- `tools`: the `ToolInvoker` behind `ctx.call_tool` (the tools package: the family's own tools,
  registered MCP servers, the denial -> approval flow).
- `waits`: durable external waits by journal kind (`ctx.wait_external`); the human queue plugs in
  `escalation`, which `ctx.escalate` uses.
- `interceptors`: code wrapped around a workflow body (certified workflows).
- `periodic`: tasks every worker runs every poll interval (escalation deadlines, ...).
- `on_cancel`: called in the transaction that cancels runs (e.g. to close what they waited on).
- `principal`: turns a run's stored principal (JSON) into the object steps see as `ctx.principal`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from longtail_mcp.db.pool import Conn

if TYPE_CHECKING:
    from longtail_mcp.runtime.context import Context
    from longtail_mcp.runtime.registry import RetryPolicy, WorkflowSpec


class ToolInvoker(Protocol):
    """Runs `ctx.call_tool(qualified, args)`: at least one journaled step of kind `tool` at `seq`."""

    async def call(self, ctx: "Context", seq: int, qualified: str, args: dict[str, Any], retry: "RetryPolicy") -> Any:
        ...


@dataclass(frozen=True)
class WaitOutcome:
    """Where an external wait stands: still `pending`, `resolved` with a value, or `failed` with an error
    (raised into the workflow, e.g. WaitTimeout for an expired escalation)."""

    status: Literal["pending", "resolved", "failed"]
    value: Any = None
    error: BaseException | None = None


class ExternalWait(Protocol):
    """A durable wait for something outside the run (a person's decision, ...), journaled as `kind`.

    `open` runs in the transaction that records the wait in the journal (so the wait exists exactly
    when the run waits for it) and returns the key of what was opened (e.g. the escalation id);
    `outcome` reads it back, in a transaction holding the run's row.
    """

    kind: str
    key_name: str  # how the journal entry's input names the key (e.g. "escalation_id")

    async def open(self, conn: Conn, *, workflow_id: str, seq: int, label: str, principal: Any,
                   request: dict[str, Any]) -> str:
        """`label` names the wait within its run: its key if it is keyed, else its seq."""
        ...

    async def outcome(self, conn: Conn, *, workflow_id: str, seq: int, key: str) -> WaitOutcome:
        ...


class Interceptor(Protocol):
    """Code around a workflow body: `applies` decides per workflow type; `run` calls `body()` (maybe
    several times) and returns the run's result."""

    def applies(self, spec: "WorkflowSpec") -> bool:
        ...

    async def run(self, ctx: "Context", spec: "WorkflowSpec", body: Callable[[], Awaitable[Any]]) -> Any:
        ...


PeriodicTask = Callable[[], Awaitable[Any]]
CancelListener = Callable[[Conn, list[str], str], Awaitable[None]]


def _as_is(principal: dict[str, Any] | None) -> Any:
    return principal


@dataclass
class Extensions:
    """What the layers above plug into the kernel (see the module docstring)."""

    tools: ToolInvoker | None = None
    waits: dict[str, ExternalWait] = field(default_factory=dict)
    interceptors: list[Interceptor] = field(default_factory=list)
    periodic: list[tuple[str, PeriodicTask]] = field(default_factory=list)
    on_cancel: list[CancelListener] = field(default_factory=list)
    principal: Callable[[dict[str, Any] | None], Any] = _as_is

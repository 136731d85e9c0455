"""Pipelines and workflow types published as MCP tools of their own.

Each active pipeline is a tool named after it, with its input schema, and an output that wraps its
output schema: `{workflow_id, status, done, output}`. Calling it starts a run as the caller (so the
run is visible to them and its tool calls are made as them) and waits for it a while; a longer run
returns `done: false` with the run's id, to follow with `wait_for_run`. A workflow type registered
with `tool=True` is published the same way.
"""

import contextlib
from typing import Any, Generic, TypeVar

import anyio
import mcp.types as types
from pydantic import BaseModel, Field

from longtail_mcp.errors import Forbidden, InvalidInput, WorkflowFailed
from longtail_mcp.humans import runs
from longtail_mcp.humans.identity import Principal, may_use
from longtail_mcp.mcp_glue.server import Proxy
from longtail_mcp.pipelines import runner, store
from longtail_mcp.pipelines.model import Pipeline
from longtail_mcp.pipelines.records import PipelineInfo
from longtail_mcp.runtime import service
from longtail_mcp.runtime.handle import Handle
from longtail_mcp.runtime.models import RunStatus
from longtail_mcp.tools.progress import reporting
from longtail_mcp.tools.spec import Progress, Services, ToolCall, no_progress, title_of

TERMINAL: tuple[RunStatus, ...] = ("completed", "failed", "cancelled")
R = TypeVar("R", bound=BaseModel)


def output_schema(inner: dict[str, Any] | None) -> dict[str, Any]:
    """The tool's output: the run's id and status, and once it completed, its output."""
    return {
        "type": "object",
        "required": ["workflow_id", "status", "done"],
        "properties": {
            "workflow_id": {"type": "string", "description": "The run; follow it with wait_for_run"},
            "status": {"type": "string", "enum": ["pending", "running", "waiting", "completed", "failed",
                                                  "cancelled"]},
            "done": {"type": "boolean", "description": "False when the run was still going after the wait"},
            "output": inner or {},
            "error": {"type": ["object", "null"]},
        },
    }


async def start_and_wait(services: Services, principal: Principal, workflow: str, input: Any,
                         progress: Progress = no_progress, *, reads_only: bool = False) -> dict[str, Any]:
    """Start a run as `principal`, wait for it at most `tool_wait_seconds` (telling `progress` where it
    stands every few seconds), and say where it stands. A cancelled call stops waiting; the run goes on.
    `reads_only`: a run that only reads, which a read-scope key may start (runs.start_run)."""
    seconds = services.settings.tool_wait_seconds
    wid, _ = await runs.start_run(services.db, principal, workflow, input, reads_only=reads_only)
    handle = await runs.handle(services.db, principal, wid)
    with anyio.move_on_after(seconds), contextlib.suppress(WorkflowFailed):  # failed or cancelled: reported below
        await reporting(progress, handle.result(), total=seconds, status=lambda: run_progress(handle))
    run = await handle.info()
    out: dict[str, Any] = {"workflow_id": wid, "status": run.status, "done": run.status in TERMINAL}
    if run.status == "completed":
        out["output"] = run.result
    elif run.error is not None:
        out["error"] = {"code": run.error.get("code"), "message": run.error.get("message")}
    return out


async def run_progress(handle: Handle) -> str:
    """Where a run someone waits for stands, for a progress message."""
    run = await handle.info()
    waiting_for = run.waiting_for or ""
    if waiting_for.startswith("escalation:"):
        return f"run {run.id} is waiting for a person (escalation {waiting_for.partition(':')[2]})"
    if waiting_for.startswith("signal:"):
        return f"run {run.id} is waiting for the signal {waiting_for.partition(':')[2]!r}"
    if run.status == "waiting":
        return f"run {run.id} is waiting ({waiting_for or 'for a person or a signal'})"
    return f"run {run.id} is {run.status}"


class Started(BaseModel, Generic[R]):
    """A run a tool started and waited for (the `query`, `triage_escalation` and `design_pipeline` tools):
    where it stands, and its result once it completed."""

    workflow_id: str = Field(description="The run (follow it with wait_for_run when done is false)")
    status: RunStatus
    done: bool = Field(description="False when the run was still going after the wait")
    result: R | None = Field(None, description="The run's result, once it completed")
    error: dict[str, Any] | None = None


async def start_for(call: ToolCall, workflow: str, args: BaseModel, result: type[R]) -> Started[R]:
    """Start `workflow` with the tool's arguments as the caller, wait (start_and_wait, reporting progress), and
    say where it stands."""
    out = await start_and_wait(call.client, call.principal, workflow, args.model_dump(exclude_none=True),
                               call.progress)
    return Started[result](  # type: ignore[valid-type]
        workflow_id=out["workflow_id"], status=out["status"], done=out["done"], error=out.get("error"),
        result=result.model_validate(out["output"]) if out.get("output") else None)


def _tool(name: str, description: str, input_schema: dict[str, Any], inner: dict[str, Any] | None,
          read_only: bool) -> types.Tool:
    return types.Tool(
        name=name, title=title_of(name), description=description, input_schema=input_schema or {"type": "object"},
        output_schema=output_schema(inner),
        annotations=types.ToolAnnotations(read_only_hint=read_only, destructive_hint=not read_only,
                                          idempotent_hint=False, open_world_hint=not read_only),
    )


class PipelineTools(Proxy):
    """Every active pipeline as a tool (its active version's schemas).

    The tools are kept between listings while `pipeline_stamp` says the pipelines did not change (one row
    read per tools/list, instead of every active definition: clients list again after each list_changed),
    and filtered per caller by access each time."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._listed: tuple[int, list[tuple[PipelineInfo, types.Tool]]] | None = None

    async def tools(self, principal: Principal) -> list[types.Tool]:
        stamp = await store.active_stamp(self.services.db)  # before the rows: a change in between re-reads
        if self._listed is None or self._listed[0] != stamp:
            self._listed = (stamp, [
                (info, _tool(info.name, _describe(pipeline), pipeline.input_schema, pipeline.output_schema,
                             info.read_only))
                for info, pipeline, _ in await store.active_tools(self.services.db)])
        return [tool for info, tool in self._listed[1] if may_use(principal, info.access_roles, info.read_only)]

    async def call(self, name: str, arguments: dict[str, Any], principal: Principal,
                   progress: Progress = no_progress) -> dict[str, Any] | None:
        served = await store.active_tool(self.services.db, name)
        if served is None:
            return None
        info, pipeline, digest = served
        if not may_use(principal, info.access_roles, info.read_only):
            raise Forbidden(f"{principal.id} may not call pipeline {name!r}"
                            + (" with a read-scope key" if principal.scope != "full" else ""))
        runner.check(pipeline.input_schema, arguments, f"the input of {name}")
        return await start_and_wait(self.services, principal, runner.WORKFLOW,
                                    store.run_input(name, info.version, digest, arguments), progress,
                                    reads_only=info.read_only)


def _describe(pipeline: Pipeline) -> str:
    steps = ", ".join(s.tool if s.tool else f"ask {s.human.role if s.human else '?'}" for s in pipeline.steps)
    return f"{pipeline.description or pipeline.name} (pipeline: {steps})"


class WorkflowTools(Proxy):
    """Workflow types registered with `tool=True` by live workers, as tools (their published schemas)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def tools(self, principal: Principal) -> list[types.Tool]:
        return [_tool(t.name, t.description, t.input_schema, t.output_schema, False)
                for t in await service.workflow_tools(self.services.db) if may_use(principal, t.roles, False)]

    async def call(self, name: str, arguments: dict[str, Any], principal: Principal,
                   progress: Progress = no_progress) -> dict[str, Any] | None:
        found = {t.name: t for t in await service.workflow_tools(self.services.db)}
        if name not in found:
            return None
        tool = found[name]
        if not may_use(principal, tool.roles, False):
            raise Forbidden(f"{principal.id} may not start workflow {name!r}")
        runner.check(tool.input_schema, arguments, f"the input of {name}")
        if tool.wrapped:  # a workflow taking one scalar or list input: the tool's one argument carries it
            if "input" not in arguments:
                raise InvalidInput(f"{name} takes its input as the argument `input`")
            arguments = arguments["input"]
        return await start_and_wait(self.services, principal, name, arguments, progress)


class Proxies(Proxy):
    """Several proxies behind one server, asked in order."""

    def __init__(self, *proxies: Proxy) -> None:
        self.proxies = proxies

    async def tools(self, principal: Principal) -> list[types.Tool]:
        out: list[types.Tool] = []
        for proxy in self.proxies:
            out += await proxy.tools(principal)
        return out

    async def call(self, name: str, arguments: dict[str, Any], principal: Principal,
                   progress: Progress = no_progress) -> dict[str, Any] | None:
        for proxy in self.proxies:
            result = await proxy.call(name, arguments, principal, progress)
            if result is not None:
                return result
        return None

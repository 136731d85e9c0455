"""The workflows server: start, watch, signal, cancel and export durable runs."""

import contextlib
from typing import Any

import anyio
from mcp.server import Server
from pydantic import BaseModel, Field

from longtail_mcp.agents import router
from longtail_mcp.agents.router import QueryResult
from longtail_mcp.errors import InvalidInput
from longtail_mcp.humans import runs
from longtail_mcp.mcp_glue.server import ListChanged, PrincipalSource, build_server
from longtail_mcp.runtime import service
from longtail_mcp.runtime.models import Run, RunExport, RunInfo, RunStatus, RunSummary, WorkflowType
from longtail_mcp.tools.progress import reporting
from longtail_mcp.tools.prompts import Message, PromptSpec
from longtail_mcp.tools.resources import Contents, Listed, ResourceSpec, json_contents, uri_of
from longtail_mcp.tools.spec import Args, NoArgs, Services, ToolCall, ToolSpec
from system_servers.runnables import PipelineTools, Proxies, Started, WorkflowTools, run_progress, start_for
from system_servers.workflows.registry_tools import TOOLS as REGISTRY_TOOLS

NAME = "workflows"
DYNAMIC = True  # its tools change (pipelines activated or archived, workflow tools published)
TAGS = ("workflows", "durable", "runs")


class RunRef(Args):
    workflow_id: str = Field(min_length=1, max_length=200, description="The run's id")




class StartIn(Args):
    name: str = Field(min_length=1, max_length=200, description="Workflow type to run (see list_workflow_types)")
    input: Any = Field(None, description="The run's input (any JSON value)")
    workflow_id: str | None = Field(None, min_length=1, max_length=200,
                                    description="Idempotency key: starting the same id again returns the first run")


class StartOut(BaseModel):
    workflow_id: str
    created: bool = Field(description="False when the id already existed (the first run is returned)")
    status: RunStatus


class WaitIn(RunRef):
    timeout_seconds: float = Field(30, gt=0, le=50,
                                   description="How long to wait (at most 50 s, under client timeouts)")


class WaitOut(BaseModel):
    done: bool = Field(description="True when the run has ended; false when the wait ran out first")
    run: RunInfo


class SignalIn(RunRef):
    name: str = Field(min_length=1, max_length=200, description="Signal name the run waits for")
    payload: Any = Field(None, description="JSON payload the run receives")


class SignalOut(BaseModel):
    delivered: bool


class CancelIn(RunRef):
    reason: str | None = Field(None, max_length=2000)


class CancelOut(BaseModel):
    cancelled: list[str] = Field(description="The run and its live children and hooks")


class ListIn(Args):
    status: RunStatus | None = None
    name: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, description="Skip this many runs (pass the previous page's next_offset)")




class ListOut(BaseModel):
    runs: list[RunSummary]
    next_offset: int | None = Field(None, description="Offset of the next page; null when this is the last")




class TypesOut(BaseModel):
    workflow_types: list[WorkflowType] = Field(description="The types live workers run, with their cron schedules")


class QueryIn(Args):
    request: str = Field(min_length=1, max_length=20_000, description="What you want done, in plain words")
    tags: list[str] | None = Field(None, max_length=20, description="Consider only pipelines and tools with one of "
                                                                   "these tags")
    escalate_to: str | None = Field(None, min_length=1, max_length=100,
                                    description="A role to hand the work to if the agent cannot finish it")


QueryOut = Started[QueryResult]


def _run(run: Run) -> RunInfo:
    return RunInfo.of(run)  # what watchers see: not the run's principal, state or lease


async def list_workflow_types(call: ToolCall, args: NoArgs) -> TypesOut:
    return TypesOut(workflow_types=await service.list_workflow_types(call.client.db))


async def start_workflow(call: ToolCall, args: StartIn) -> StartOut:
    known = {t["name"] for t in await service.list_workflow_types(call.client.db)}
    known |= set(call.client.served_workflows())  # a serving LongTail runs its own workflows too
    if args.name not in known:
        raise InvalidInput(f"no live worker runs workflow type {args.name!r}; known types: "
                           f"{', '.join(sorted(known)) or 'none (start a worker with --app)'}")
    wid, created = await runs.start_run(call.client.db, call.principal, args.name, args.input,
                                        workflow_id=args.workflow_id)
    return StartOut(workflow_id=wid, created=created, status=(await service.get_run(call.client.db, wid)).status)


async def get_run(call: ToolCall, args: RunRef) -> RunInfo:
    return _run(await runs.get_run(call.client.db, call.principal, args.workflow_id))


async def wait_for_run(call: ToolCall, args: WaitIn) -> WaitOut:
    handle = await runs.handle(call.client.db, call.principal, args.workflow_id)
    # A run that failed or was cancelled is reported below like any other: its error is not this tool's.
    # A cancelled call only stops waiting: the run goes on (cancel_run stops it).
    with anyio.move_on_after(args.timeout_seconds), contextlib.suppress(Exception):
        await reporting(call.progress, handle.result(), total=args.timeout_seconds,
                        status=lambda: run_progress(handle))
    run = _run(await handle.info())
    return WaitOut(done=run.status in ("completed", "failed", "cancelled"), run=run)


async def signal_run(call: ToolCall, args: SignalIn) -> SignalOut:
    await runs.signal_run(call.client.db, call.principal, args.workflow_id, args.name, args.payload)
    return SignalOut(delivered=True)


async def cancel_run(call: ToolCall, args: CancelIn) -> CancelOut:
    return CancelOut(cancelled=await runs.cancel_run(call.client.db, call.principal, args.workflow_id, args.reason))


async def list_runs(call: ToolCall, args: ListIn) -> ListOut:
    rows = await runs.list_runs(call.client.db, call.principal, status=args.status, name=args.name,
                                limit=args.limit + 1, offset=args.offset)
    more = len(rows) > args.limit
    return ListOut(runs=rows[:args.limit],
                   next_offset=args.offset + args.limit if more else None)


async def query(call: ToolCall, args: QueryIn) -> QueryOut:
    return await start_for(call, router.WORKFLOW, args, QueryResult)


class ExportIn(RunRef):
    offset: int = Field(0, ge=0, description="Skip this many journal entries (pass the previous page's next_offset)")


class ExportOut(RunExport):
    steps_total: int = Field(description="How many journal entries the run has")
    next_offset: int | None = Field(None, description="Where the next page of journal entries starts (call again "
                                                      "with offset=next_offset); null when this page ends the "
                                                      "journal")


async def export_run(call: ToolCall, args: ExportIn) -> ExportOut:
    page, next_offset, total = await runs.export_page(call.client.db, call.principal, args.workflow_id,
                                                      offset=args.offset)
    return ExportOut(run=page.run, steps=page.steps, signals=page.signals, steps_total=total,
                     next_offset=next_offset)


TOOLS = [
    ToolSpec("list_workflow_types", "List the workflow types live workers can run, with their cron schedules.",
             NoArgs, TypesOut, list_workflow_types, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("start_workflow", "Start a durable run of a workflow type. The optional workflow_id is an idempotency "
             "key: starting it again returns your first run instead of a second one (an id another account used is a "
             "conflict).",
             StartIn, StartOut, start_workflow, idempotent=True, tags=TAGS,
             compile_hints={"input": "input", "result": "workflow_id"}),
    ToolSpec("get_run", "Get a run's status, input, result or error, and what it is waiting for (runs you "
             "started or that asked one of your roles; superadmins see all).",
             RunRef, RunInfo, get_run, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("wait_for_run", "Wait (at most 50 s) for a run to end; returns done=false with the run as it is when "
             "the wait runs out, so call it again for longer waits. Cancelling the call stops the wait, not the run "
             "(cancel_run does that).",
             WaitIn, WaitOut, wait_for_run, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("signal_run", "Send a named signal with a JSON payload to a live run; buffered until the run waits "
             "for it.",
             SignalIn, SignalOut, signal_run, tags=TAGS),
    ToolSpec("cancel_run", "Cancel a live run, its children and its hooks. Steps already done are not undone.",
             CancelIn, CancelOut, cancel_run, destructive=True, idempotent=False, tags=TAGS),
    ToolSpec("list_runs", "List the runs you may see (started by you, or that asked one of your roles), newest "
             "first, optionally by status and workflow type, a page at a time.",
             ListIn, ListOut, list_runs, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("query", "Ask for something in plain words. An active pipeline whose request template fits answers "
             "it with no model call; else the closest pipeline a model judges fit; else an agent works it out with "
             "the tools (and, by policy, its run becomes a new pipeline). Says which path ran and why; a long run "
             "answers done=false with its id for wait_for_run.",
             QueryIn, QueryOut, query, tags=TAGS),
    ToolSpec("export_run", "Export a run's full history: the run, every journal entry with timings, every signal. "
             "A long history comes in pages of about 512 KiB: call again with offset=next_offset while it is set.",
             ExportIn, ExportOut, export_run, read_only=True, idempotent=True, tags=TAGS),
]


TOOLS += REGISTRY_TOOLS

RUN_URI = "longtail://runs/{id}"
RECENT_RUNS = 20  # runs shown in a resources listing (the rest by template or list_runs)


async def read_run(call: ToolCall, uri: dict[str, str]) -> Contents:
    page, next_offset, total = await runs.export_page(call.client.db, call.principal, uri["id"])
    return json_contents(ExportOut(run=page.run, steps=page.steps, signals=page.signals, steps_total=total,
                                   next_offset=next_offset))


async def recent_runs(call: ToolCall) -> list[Listed]:
    return [Listed(uri=uri_of(RUN_URI, id=r.id), name=r.id, title=f"{r.name} run {r.id} ({r.status})",
                   description=f"Started {r.created_at}" + (f", waiting for {r.waiting_for}" if r.waiting_for else ""))
            for r in await runs.list_runs(call.client.db, call.principal, limit=RECENT_RUNS)]


RESOURCES = [
    ResourceSpec(RUN_URI, "run", "A run with its history, as JSON: the run (status, input, result or error, what it "
                 "waits for), its journal entries with timings and errors, its signals (export_run's first page: "
                 "a longer journal goes on with export_run and offset=next_offset). Runs you "
                 f"started or that asked one of your roles (superadmins: all); your {RECENT_RUNS} latest are listed.",
                 read_run,
                 mime="application/json", listing=recent_runs),
]


class InvestigateIn(Args):
    run_id: str = Field(min_length=1, max_length=200, description="The run to investigate (its workflow_id)")


async def investigate_failed_run(call: ToolCall, args: InvestigateIn) -> list[Message]:
    history = await runs.export_run(call.client.db, call.principal, args.run_id)
    run = history.run
    failed = [s for s in history.steps if s.status == "failed"]
    state = (f"It failed: {run.error.get('message') if run.error else 'no error recorded'}." if run.status == "failed"
             else f"Its status is {run.status!r}, not failed: say where it stands instead (what it waits for, "
                  "which steps failed and were retried).")
    first = (f" The first failed journal entry is seq {failed[0].seq} ({failed[0].kind} {failed[0].name!r})."
             if failed else "")
    return [Message(
        f"Investigate run {run.id!r} (workflow type {run.name!r}). {state}{first} Its export follows: the run "
        "(input, error, what it waited for), every journal entry in order (kind, name, input, output, error, "
        "attempts, timings) and its signals.\n\n"
        "Find the first thing that went wrong and why: a step of the workflow's own code (kind step), a tool it "
        "called (kind tool: the tool and its arguments are in the entry's input), a person's decision or an "
        "expired escalation (kind escalation), a child run (kind child: read longtail://runs/{child id}), or the "
        "run's input. Tools that help: export_run and get_run (workflows) to read it again; find_runs and "
        "get_process_summary (db-query) to see whether other runs of this type fail the same way; "
        "escalation_history (human-queue) for an escalation it waited on. To retry, start_workflow with the same "
        "name and input under a new workflow_id.\n\n"
        "Answer with what failed, the likely cause, and the next step. Do not start, signal or cancel runs "
        "without asking me first."),
        Message(resource=(uri_of(RUN_URI, id=run.id), json_contents(history)))]


PROMPTS = [
    PromptSpec("investigate_failed_run", "Investigate a failed run: its history is embedded, with instructions "
               "naming the tools that help find the cause.", InvestigateIn, investigate_failed_run),
]


def build(services: Services, principal_of: PrincipalSource, list_changed: ListChanged | None = None) -> Server[Any]:
    """The workflows server: its own tools, plus each active pipeline and each workflow type published as a
    tool (which come and go: with `list_changed`, connected clients are told)."""
    return build_server(NAME, TOOLS, services, principal_of, proxy=Proxies(PipelineTools(services),
                                                                         WorkflowTools(services)),
                        list_changed=list_changed, resources=RESOURCES, prompts=PROMPTS,
                        instructions="Durable workflow runs: start them, wait for them, signal, cancel, export; "
                                     "every active pipeline is a tool here too.")

"""Pipeline services above the store: compile a run into a draft, verify a version by running it, run one.

The same functions back the compiler MCP server, the CLI and the Python API.
"""

from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio

from longtail_mcp.db.pool import Database
from longtail_mcp.errors import Conflict, WorkflowFailed
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import runs
from longtail_mcp.humans.identity import SYSTEM, Principal, require_write
from longtail_mcp.pipelines import compiler, store
from longtail_mcp.pipelines.facts import ToolLookup
from longtail_mcp.pipelines.loader import to_yaml
from longtail_mcp.pipelines.model import Pipeline
from longtail_mcp.pipelines.records import PipelineInfo
from longtail_mcp.pipelines.runner import check
from longtail_mcp.runtime import service
from longtail_mcp.runtime.handle import Handle
from longtail_mcp.runtime.models import RunExport

VERIFY_SECONDS = 120.0


async def compile_run(db: Database, actor: Principal, workflow_id: str, *, tools: Any, name: str | None = None,
                      description: str | None = None,
                      request: str | None = None) -> tuple[PipelineInfo, str, list[str]]:
    """Compile a run the caller may see into a draft pipeline (deterministic: no LLM). Returns the draft,
    its YAML, and the compiler's notes. An `agent` run's request is its input's `request` unless given.

    Raises:
        NotFound: no such run (or not visible).  InvalidInput: nothing to compile (no completed tool call).
    """
    return await compile_runs(db, actor, [workflow_id], tools=tools, name=name, description=description,
                              request=request)


KEEP: Any = object()  # compile_runs: the run's own result


async def compile_runs(db: Database, actor: Principal, workflow_ids: list[str], *, tools: Any,
                       name: str | Callable[[Pipeline], str] | None = None, description: str | None = None,
                       request: str | None = None, result: Any = KEEP,
                       run_input: Any = KEEP) -> tuple[PipelineInfo, str, list[str]]:
    """Compile the journals of several runs, one after the other, as if one run had made all their calls
    (a routed pipeline's finished steps, then the agent's that went on from them). The last run is the
    draft's source; its input is the run's input. `name` may be a function of the compiled draft;
    `result` stands for the last run's result (what the pipeline's output is compiled from): an agent's
    result is mostly bookkeeping, so the closed loop passes what the agent answered or decided; and
    `run_input` for the last run's input (values found in it become inputs): an agent's input holds its
    own settings and context, which no later request supplies, so the closed loop passes `{}` and the
    inputs come from the request text alone."""
    require_write(actor)
    exports = [await runs.export_run(db, actor, wid) for wid in workflow_ids]
    asked: dict[str, dict[str, Any]] = {}
    for export in exports:
        for step in export.steps:
            if step.kind == "escalation" and isinstance(step.input, dict) and step.input.get("escalation_id"):
                # The run's own escalations: visible with the run (which the caller may see), so read as the system.
                found = await esc.get_escalation(db, SYSTEM, step.input["escalation_id"])
                asked[found.id] = {"message": found.message, "data": found.data, "form_schema": found.form_schema}
    last = exports[-1]
    if request is None and last.run.name == "agent" and isinstance(last.run.input, dict):
        request = last.run.input.get("request")
    journal = last.to_json()
    if result is not KEEP:
        journal["run"]["result"] = result
    if run_input is not KEEP:
        journal["run"]["input"] = run_input
    if len(exports) > 1:
        ordered = [s.to_json() for e in exports for s in sorted(e.steps, key=lambda s: s.seq)]
        journal["steps"] = [{**s, "seq": n, "key": None} for n, s in enumerate(ordered, 1)]
    compiled = compiler.compile_run(journal, tools=tools, name=name if isinstance(name, str) else None,
                                    description=description, request=request, escalations=asked)
    pipeline = compiled.pipeline
    if callable(name):
        pipeline = pipeline.model_copy(update={"name": name(pipeline)})
    text = to_yaml(pipeline)
    info = await store.save(db, actor, text, tools=tools, source_run=last.run.id)
    return info, text, list(compiled.notes)


def shape(value: Any) -> Any:
    """The type skeleton of a JSON value: what verification compares (not the values themselves)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def _calls(export: RunExport) -> list[tuple[str, str]]:
    """(tool, result shape) of each completed tool call, in journal order."""
    return [(s.name, repr(shape(s.output))) for s in export.steps if s.kind == "tool" and s.status == "completed"]


async def verify(db: Database, actor: Principal, name: str, *, tools: ToolLookup | None = None,
                 seconds: float = VERIFY_SECONDS) -> PipelineInfo:
    """Run the latest version on its example inputs (a compiled pipeline: the original run's) and record
    whether it passed: the run completed, and — for a compiled pipeline — it called the same tools, the
    tools with effects in the same order of first use, with results of the same shapes as the run it was
    compiled from. Read-only tools (per `tools`; without it every tool counts as having effects) may run
    in any order: a pipeline starts a step as soon as the steps it reads have finished.

    It really runs: the tools' effects happen. A pipeline with a human step waits for a person; if no
    one decides within `seconds`, verification fails (say so, then verify again once decided).
    """
    require_write(actor)
    info = await store.get(db, name)
    found = await store.version(db, name, info.version)
    pipeline = await store.pinned(db, name, info.version, found.hash)
    source = await service.export_run(db, info.source_run) if info.source_run else None
    inputs = pipeline.examples[0] if pipeline.examples else {}
    wid, _ = await runs.start_run(db, actor, store.WORKFLOW, store.run_input(name, info.version, found.hash, inputs))
    handle = Handle(db, wid)
    problems: list[str] = []
    with anyio.move_on_after(seconds) as waited:
        try:
            await handle.result()
        except WorkflowFailed as exc:
            problems.append(f"the run {exc.status}: {(exc.error or {}).get('message', '')}")
    if waited.cancelled_caught:
        problems.append(f"the run had not finished after {seconds:g} s (it is {(await handle.info()).status})")
    made = _calls(await handle.export())
    if source is not None and not problems:
        problems += _compare(pipeline, _calls(source), made, tools)
    verification = {"passed": not problems, "version": info.version, "workflow_id": wid, "problems": problems,
                    "tools": [t for t, _ in made]}
    return await store.record_verification(db, name, info.version, verification)


def _compare(pipeline: Pipeline, source: list[tuple[str, str]], made: list[tuple[str, str]],
             tools: ToolLookup | None) -> list[str]:
    used = {s.tool for s in pipeline.steps if s.tool}
    first = list(dict.fromkeys(t for t, _ in source if t in used))
    now = list(dict.fromkeys(t for t, _ in made))
    problems = []
    if set(first) != set(now):
        problems.append(f"tools differ: the source run called {sorted(first)}, the pipeline called {sorted(now)}")

    def effects(sequence: list[str]) -> list[str]:
        facts = {t: tools(t) if tools is not None else None for t in sequence}
        return [t for t in sequence if facts[t] is None or not facts[t].read_only]  # type: ignore[union-attr]

    if not problems and effects(first) != effects(now):
        problems.append(f"the order of the tools with effects differs: the source run called {effects(first)}, "
                        f"the pipeline called {effects(now)}")
    shapes_then = {t: Counter(s for tt, s in source if tt == t) for t in used}
    for tool in used:
        then, later = set(shapes_then[tool]), {s for tt, s in made if tt == tool}
        if later - then:
            problems.append(f"{tool} returned a result of another shape than in the source run")
    return problems


async def run(db: Database, actor: Principal, name: str, inputs: dict[str, Any], *,
              version: int | None = None) -> Handle:
    """Start a run of a pipeline as `actor`: its active version, or `version` (a draft's, to try it).

    Raises:
        Conflict: not active and no version given.  InvalidInput: the inputs do not match its schema.
    """
    number = version
    if number is None:
        info = await store.get(db, name)
        if info.active_version is None:
            raise Conflict(f"pipeline {name!r} is {info.status}; give a version to run it anyway")
        number = info.active_version
    found = await store.version(db, name, number)
    pipeline = await store.pinned(db, name, number, found.hash)
    check(pipeline.input_schema, inputs, f"the input of pipeline {name!r}")
    wid, _ = await runs.start_run(db, actor, store.WORKFLOW, store.run_input(name, number, found.hash, inputs))
    return Handle(db, wid)

"""Running a pipeline: one durable workflow (type `pipeline`) whose steps are the same journaled tool steps
and human waits as `ctx.call_tool` and `ctx.escalate` — same invoker, same approvals, same idempotency.

Each step's operations are keyed by the step's id (`fetch`, and `fetch:3` for the fourth item of a
`for_each`), so steps start the moment the steps they read have finished, in whatever order that
happens, and a replay after a crash finds each step's recorded outcome under its key: nothing that
committed runs again. A tool step's idempotency key is `<run id>:<step id>[:<item>]`.
"""

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import anyio

from longtail_mcp import schemas
from longtail_mcp.db.pool import Database
from longtail_mcp.errors import InvalidInput
from longtail_mcp.humans.identity import Principal, require_use
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.expressions import render, truthy
from longtail_mcp.pipelines.loader import dependencies, order
from longtail_mcp.pipelines.model import Pipeline, Step
from longtail_mcp.runtime.context import Context
from longtail_mcp.runtime.journal import Interrupted
from longtail_mcp.runtime.registry import StepSpec
from longtail_mcp.runtime.replay import Suspend

WORKFLOW = store.WORKFLOW


def check(schema: dict[str, Any] | None, value: Any, what: str) -> None:
    """Raises InvalidInput listing what is wrong when `value` does not match the JSON Schema."""
    found = schemas.problems(schema, value)
    if found:
        raise InvalidInput(f"{what} does not match its schema: {schemas.summary(found)}")


def workflow(db: Callable[[], Database]) -> Callable[[Context, dict[str, Any]], Any]:
    """The `pipeline` workflow, bound to the app's database (where the pinned definitions are read)."""

    async def pipeline(ctx: Context, input: dict[str, Any]) -> Any:
        name = str(input["pipeline"])
        number = input.get("version")
        if number is None:  # a scheduled run: pin the version served now, once, in the journal
            number = await ctx.run(StepSpec(fn=partial(_serving, db, name), name="pipeline.version"))
        definition = await store.pinned(db(), name, int(number), input.get("hash"))
        if isinstance(ctx.principal, Principal):  # the pinned version's access, whichever door started the run
            require_use(ctx.principal, definition.access.roles, True, f"run pipeline {name!r}")
        return await execute(ctx, definition, dict(input.get("inputs") or {}))

    return pipeline


async def _serving(db: Callable[[], Database], name: str) -> int:
    info = await store.get(db(), name)
    if info.status != "active" or info.active_version is None:
        raise InvalidInput(f"pipeline {name!r} is {info.status}, not active")
    return info.active_version


async def execute(ctx: Context, pipeline: Pipeline, inputs: dict[str, Any]) -> Any:
    """Run the DAG and return the rendered `output` (the last step's result when there is none).

    Independent steps run concurrently. If a step must wait (a person, an approval, a retry's
    backoff), the others still run as far as they can before the run leaves the worker. After a
    failure no new step starts; the first failure (in file order) is raised.
    """
    check(pipeline.input_schema, inputs, f"the input of pipeline {pipeline.name!r}")
    needs = dependencies(pipeline)
    steps = {s.id: s for s in pipeline.steps}
    sequence = order(pipeline)
    results: dict[str, Any] = {}
    outcomes: dict[str, BaseException] = {}
    started: set[str] = set()

    def context(**more: Any) -> dict[str, Any]:
        return {"inputs": inputs, "steps": dict(results), "run": {"id": ctx.workflow_id}, **more}

    async with anyio.create_task_group() as tg:

        def launch() -> None:
            if outcomes:
                return
            for sid in sequence:
                if sid not in started and needs[sid] <= results.keys():
                    started.add(sid)
                    tg.start_soon(run, sid)

        async def run(sid: str) -> None:
            try:
                results[sid] = await _step(ctx, steps[sid], context)
            except (Suspend, Interrupted, Exception) as exc:
                outcomes[sid] = exc
                return
            launch()

        launch()
    _raise_first(outcomes, sequence)
    if pipeline.output is None:
        return results[sequence[-1]] if sequence else None
    output = render(pipeline.output, context())
    check(pipeline.output_schema, output, f"the output of pipeline {pipeline.name!r}")
    return output


def _raise_first(outcomes: Mapping[str, BaseException], sequence: list[str]) -> None:
    ordered = [outcomes[sid] for sid in sequence if sid in outcomes]
    for kind in (Interrupted, Exception):  # lease lost or database gone first: the run stops here
        found = [e for e in ordered if isinstance(e, kind)]
        if found:
            raise found[0]
    waits = [e for e in ordered if isinstance(e, Suspend)]
    if waits:
        untils = [w.until for w in waits if w.until is not None]
        raise Suspend(min(untils) if len(untils) == len(waits) else None, waits[0].reason)


async def _step(ctx: Context, step: Step, context: Callable[..., dict[str, Any]]) -> Any:
    if step.when is not None and not truthy(render(step.when, context())):
        return None
    if step.for_each is None:
        return await _call(ctx, step, step.id, context())
    items = render(step.for_each, context())
    if not isinstance(items, list):
        raise InvalidInput(f"step {step.id!r}: for_each gave {type(items).__name__}, not a list")
    out: list[Any] = [None] * len(items)
    outcomes: dict[int, BaseException] = {}
    limiter = anyio.CapacityLimiter(step.concurrency)

    async def one(index: int, item: Any) -> None:
        async with limiter:
            try:
                out[index] = await _call(ctx, step, f"{step.id}:{index}", context(item=item, index=index))
            except (Suspend, Interrupted, Exception) as exc:
                outcomes[index] = exc

    async with anyio.create_task_group() as tg:
        for index, item in enumerate(items):
            tg.start_soon(one, index, item)
    _raise_first({str(i): e for i, e in outcomes.items()}, [str(i) for i in range(len(items))])
    return out


async def _call(ctx: Context, step: Step, key: str, scope: dict[str, Any]) -> Any:
    if step.human is not None:
        human = step.human
        return await ctx.escalate(human.role, render(human.message, scope), render(human.data, scope),
                                  form_schema=human.form_schema, priority=human.priority,
                                  timeout=human.timeout_seconds, key=key)
    assert step.tool is not None  # the model guarantees exactly one of tool and human
    return await ctx.call_tool(step.tool, render(step.args, scope), retries=step.retries, key=key)

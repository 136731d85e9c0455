"""`longtail-mcp query "<text>"` and `longtail-mcp agents policy ...`: the router and the closed-loop policy
from the shell (the same workflows and services as the `query` tool)."""

import argparse
import contextlib
from typing import Any

import anyio

from longtail_mcp.agents import closed_loop, designer, triage
from longtail_mcp.agents.designer import DesignInput
from longtail_mcp.agents.router import WORKFLOW, QueryInput
from longtail_mcp.app import LongTail
from longtail_mcp.cli.people import _print, actor_for, as_json, client_for, safe
from longtail_mcp.errors import InvalidInput, WorkflowFailed
from longtail_mcp.humans import runs
from longtail_mcp.runtime import service
from longtail_mcp.runtime.handle import Handle


async def run_here(args: argparse.Namespace, workflow: str, input: dict[str, Any]) -> dict[str, Any] | None:
    """Start a run and wait for it, running a worker in this process meanwhile (a `serve` or `worker`
    attached to the same database may take it instead: either way it runs once). Prints the run with
    --json, or a line when it did not complete; returns its result for the caller to print."""
    app = LongTail()
    await app.open(attach=True)
    try:
        actor = await actor_for(app, args.as_account)
        async with anyio.create_task_group() as tg:
            await tg.start(app.worker().run)
            wid, _ = await runs.start_run(app.db, actor, workflow, input)
            handle = Handle(app.db, wid)
            with anyio.move_on_after(args.wait), contextlib.suppress(WorkflowFailed):  # shown below
                await handle.result()
            tg.cancel_scope.cancel()
        run = await handle.info()
    finally:
        await app.close()
    if args.json:
        print(as_json(run))
        return None
    if isinstance(run.result, dict):
        return {**run.result, "run": run.id}
    error = (run.error or {}).get("message", "") if isinstance(run.error, dict) else ""
    print(f"{run.id} {run.status}" + (f": {safe(error)}" if error else
                                        f" (still going: longtail-mcp runs show {run.id})"))
    return None


def _compiled(result: dict[str, Any]) -> None:
    if result.get("compiled"):
        compiled = result["compiled"]
        print("compiled " + (safe(compiled["error"]) if "error" in compiled else
                             f"{compiled['pipeline']} v{compiled['version']} ({compiled['status']})"))


async def cmd_query(args: argparse.Namespace) -> None:
    """`query`: the router, with a worker in this process while it waits."""
    tags = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None
    try:
        request = QueryInput(request=args.request, tags=tags, escalate_to=args.escalate_to)
    except ValueError as exc:
        raise InvalidInput(f"the request is not valid: {exc}") from None
    result = await run_here(args, WORKFLOW, request.model_dump(exclude_none=True))
    if result is None:
        return
    print(f"path     {result['path']}: {safe(result['why'])}")
    print(f"status   {result['status']}  (run {result['run']}; {result['llm_calls']} model call(s))")
    if result.get("pipeline"):
        print(f"pipeline {result['pipeline']} v{result['version']}")
    _compiled(result)
    output = result.get("output")
    print(output if isinstance(output, str) else as_json(output))


async def cmd_triage(args: argparse.Namespace) -> None:
    """`escalations triage ID`: the triage router on one escalation, now."""
    result = await run_here(args, triage.WORKFLOW, {"escalation_id": args.id})
    if result is None:
        return
    print(f"decision {result['decision']}" + (f" (to role {result['role']})" if result.get("role") else "")
          + f"  (run {result['run']})")
    print(f"path     {result['path']}: {safe(result['why'])}  ({result['llm_calls']} model call(s))")
    for key in ("resolution", "findings"):
        if result.get(key):
            print(f"{key:8} {safe(result[key]) if isinstance(result[key], str) else as_json(result[key], indent=None)}")
    _compiled(result)


async def cmd_design(args: argparse.Namespace) -> None:
    """`pipelines design "<text>"`: the designer, with a worker in this process while it waits."""
    tags = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None
    try:
        request = DesignInput(description=args.description, name=args.name, tags=tags)
    except ValueError as exc:
        raise InvalidInput(f"the request is not valid: {exc}") from None
    result = await run_here(args, designer.WORKFLOW, request.model_dump(exclude_none=True))
    if result is None:
        return
    if result["status"] == "drafted":
        print(result["yaml"], end="" if str(result["yaml"]).endswith("\n") else "\n")
        print(f"# drafted {result['pipeline']} v{result['version']} in {result['rounds']} round(s); next: "
              f"{result['next']}")
    elif result["status"] == "missing":
        print(f"missing capability: {safe(result['missing'])}\nnext: {result['next']}")
    else:
        print(f"no valid draft after {result['rounds']} round(s):")
        for problem in result["problems"]:
            print(f"  {safe(problem)}")
        raise SystemExit(1)


async def cmd_agents(args: argparse.Namespace) -> None:
    async with client_for(args) as client:
        actor = await actor_for(client, args.as_account)
        if args.action == "strategies":
            _print(await triage.list_strategies(client.db), args.json, ["role", "strategy", "updated_by"])
        elif args.action == "strategy":
            known = [t.name for t in await service.list_workflow_types(client.db)]
            row = await triage.set_strategy(client.db, actor, args.role, args.strategy, known=known)
            _print(row, args.json, ["role", "strategy", "updated_by"])
        elif args.action == "list":
            _print(await closed_loop.list_policies(client.db), args.json, ["scope", "auto_compile", "updated_by"])
        elif args.action == "set":
            row = await closed_loop.set_policy(client.db, actor, args.policy, router=args.router, tag=args.tag)
            _print(row, args.json, ["scope", "auto_compile", "updated_by"])
        else:
            await closed_loop.clear_policy(client.db, actor, router=args.router, tag=args.tag)
            scope = f"router:{args.router}" if args.router else f"tag:{args.tag}"
            print(as_json({"cleared": scope}) if args.json else f"policy for {scope} cleared")

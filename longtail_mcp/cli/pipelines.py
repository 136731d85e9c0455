"""`longtail-mcp pipelines ...`: the compiler server's verbs from the shell (same services, same rules)."""

import argparse
import contextlib
import importlib
import json
from typing import Any

import anyio

from longtail_mcp.cli.people import _print, actor_for, as_json, client_for, safe
from longtail_mcp.errors import InvalidInput, WorkflowFailed
from longtail_mcp.pipelines import service, store
from longtail_mcp.pipelines.source import compile_source

COLUMNS = ["name", "status", "version", "active_version", "verified_version", "tools"]


async def cmd_pipelines(args: argparse.Namespace) -> None:
    async with client_for(args) as client:
        actor = await actor_for(client, args.as_account)
        db, verb = client.db, args.action
        if verb == "create":
            text = await _read(args.file)
            info = await store.save(db, actor, text, tools=await client.tool_catalog())
            _print(info, args.json, COLUMNS)
        elif verb == "list":
            _print(await store.search(db, status=args.status, query=args.query, limit=args.limit), args.json, COLUMNS)
        elif verb == "show":
            info = await store.get(db, args.name)
            found = await store.version(db, args.name, args.version)
            print(as_json({"pipeline": info, "version": found.version, "yaml": found.yaml}) if args.json
                  else found.yaml or "", end="" if not args.json else "\n")
        elif verb == "versions":
            _print(await store.versions(db, args.name), args.json, ["version", "hash", "created_by", "created_at"])
        elif verb == "compile":
            info, text, notes = await service.compile_run(db, actor, args.id, tools=await client.tool_catalog(),
                                                          name=args.name, request=args.request)
            if args.json:
                print(as_json({"pipeline": info, "yaml": text, "notes": notes}))
            else:
                print(text, end="")
                for note in notes:
                    print(f"# {safe(note)}")
        elif verb == "compile-source":
            compiled = compile_source(_load_function(args.target), name=args.name, tools=await client.tool_catalog())
            info = await store.save(db, actor, store.yaml_of(compiled.pipeline), tools=await client.tool_catalog())
            if args.json:
                print(as_json({"pipeline": info, "notes": compiled.notes}))
            else:
                print(store.yaml_of(compiled.pipeline), end="")
        elif verb == "verify":
            info = await service.verify(db, actor, args.name, tools=await client.tool_catalog())
            verdict = "passed" if info.verified_version == info.version else "failed"
            print(as_json(info) if args.json else f"{info.name}: version {info.version} {verdict}"
                  + "".join(f"\n  {safe(p)}" for p in (info.verification or {}).get("problems", [])))
        elif verb in ("deploy", "activate", "archive", "restore"):
            if verb == "activate":
                info = await store.activate(db, actor, args.name, force=args.force)
            else:
                move = {"deploy": store.deploy, "archive": store.archive, "restore": store.restore}[verb]
                info = await move(db, actor, args.name)
            _print(info, args.json, COLUMNS)
        elif verb == "delete":
            await store.delete(db, actor, args.name)
            print(as_json({"deleted": args.name}) if args.json else f"pipeline {args.name} deleted")
        else:  # run
            handle = await service.run(db, actor, args.name, _json(args.input), version=args.version)
            with anyio.move_on_after(args.wait), contextlib.suppress(WorkflowFailed):  # shown below
                await handle.result()
            run = await handle.info()
            print(as_json(run) if args.json else f"{run.id} {run.status}\n{as_json(run.result)}")


async def _read(path: str) -> str:
    try:
        return await anyio.Path(path).read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"--input is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput("--input must be a JSON object (the pipeline's named inputs)")
    return value


def _load_function(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    if not attr:
        raise InvalidInput("compile-source takes MODULE:FUNCTION (the workflow function)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"cannot import {module_name!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise InvalidInput(f"{module_name} has no {attr!r}")
    return fn

"""`status` and `db`: what is running for this home. Light to import (no runtime, no MCP): they answer in
a few hundred milliseconds when nothing runs; the client that lists live workers is imported only when
a database answers."""

import argparse
import contextlib
import json
import re
from typing import Any

import anyio
import psycopg

from longtail_mcp.config import Settings, load_settings
from longtail_mcp.db import keeper
from longtail_mcp.db.embedded import pid_alive
from longtail_mcp.errors import ConfigurationError, LongtailError


def _serves(settings: Settings) -> list[dict[str, Any]]:
    """The live `serve`s of this home (files of dead ones are removed)."""
    found = []
    for path in sorted(settings.home.glob("serve-*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            serve = json.loads(path.read_text())
            if pid_alive(int(serve["pid"])):
                found.append(serve)
            else:
                path.unlink()
    return found


async def cmd_status(args: argparse.Namespace) -> None:
    """What is running: the database (embedded or DATABASE_URL), the serves of this home, live workers."""
    settings = load_settings()
    report: dict[str, Any] = {"home": str(settings.home)}
    if settings.database_url is None:
        report["database"] = await anyio.to_thread.run_sync(keeper.status, settings)
    else:
        report["database"] = {"kind": "DATABASE_URL", "url": _no_password(settings.database_url)}
    report["serves"] = _serves(settings)
    report["workers"] = []
    if settings.database_url is not None or report["database"]["running"]:
        from longtail_mcp.app import Client  # the runtime, only to ask a live database
        from longtail_mcp.runtime import service

        client = Client(settings=settings)
        client.attach_embedded = "only"
        try:
            async with client:
                report["workers"] = await service.live_workers(client.db, stale_seconds=settings.lease_seconds * 2)
            report["database"]["reachable"] = True
        except (LongtailError, OSError, psycopg.Error) as exc:
            report["database"]["reachable"] = False
            report["database"]["error"] = str(exc).splitlines()[0]
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return
    db = report["database"]
    if db["kind"] == "embedded":
        print(f"database  {_describe_embedded(db)}")
    else:
        state = "reachable" if db.get("reachable") else f"NOT reachable ({db.get('error', '')})"
        print(f"database  DATABASE_URL {db['url']}, {state}")
    for serve in report["serves"] or [None]:
        print(f"serve     {serve['url']} (pid {serve['pid']}, since {serve['started_at']})" if serve
              else "serve     not running for this home")
    print(f"workers   {len(report['workers'])} alive")
    for w in report["workers"]:
        print(f"  {w['id']}  {w['host']} pid {w['pid']}, {w['workflow_types']} workflow types, "
              f"concurrency {w['concurrency']}, last beat {w['heartbeat_at']:%H:%M:%S}")


def _describe_embedded(db: dict[str, Any]) -> str:
    if not db["running"]:
        return f"embedded Postgres, not running: {db['data_dir']}"
    idle = f"stops after {db['idle_seconds']:g}s without clients" if db["idle_seconds"] else "never stops by itself"
    keeper_ = f"keeper pid {db['keeper']}, {idle}" if db["keeper"] else "no keeper (the next client adopts it)"
    return f"embedded Postgres, running (pid {db['pid']}, port {db['port']}; {keeper_}): {db['data_dir']}"


async def cmd_db(args: argparse.Namespace) -> None:
    """`db status|start|stop`: the home's embedded Postgres (db/keeper.py)."""
    settings = load_settings()
    if settings.database_url is not None:
        raise ConfigurationError("DATABASE_URL is set: there is no embedded Postgres to manage here")
    if args.action == "start":
        await anyio.to_thread.run_sync(keeper.attach, settings)
    elif args.action == "stop":
        stopped = await anyio.to_thread.run_sync(lambda: keeper.stop(settings, force=args.force))
        if args.json:
            print(json.dumps({"stopped": stopped}))
        else:
            print("stopped" if stopped else "not running")
        return
    report = await anyio.to_thread.run_sync(keeper.status, settings)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return
    print(_describe_embedded(report))
    for c in report["clients"]:
        print(f"  {c['connections']:>3} connection(s)  {c['application']}")
    if report["running"] and not report["clients"]:
        print(f"  no clients (last attach {report['last_attach']})")


def _no_password(url: str) -> str:
    """A DSN fit to print: its password replaced (`postgresql://u:***@h/db`, `password=***`)."""
    return re.sub(r"(password=)\S+", r"\1***", re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url))

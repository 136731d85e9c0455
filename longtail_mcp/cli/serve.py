"""The commands that run things: serve, worker, migrate, stdio, and printing client configuration.

The MCP and HTTP stacks (about a second to import) are imported by the commands that serve them, so
`longtail-mcp --help` and the people commands start quickly.
"""

import argparse
import contextlib
import importlib
import json
import logging
import os
import re
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import psycopg

from longtail_mcp.app import Client, LongTail
from longtail_mcp.cli.people import actor_for
from longtail_mcp.config import LOOPBACK, Settings, load_settings
from longtail_mcp.db.embedded import EmbeddedPostgres, pid_alive
from longtail_mcp.db.migrate import current_version, latest_version, migrate
from longtail_mcp.errors import ConfigurationError, InvalidInput, LongtailError, Unavailable
from longtail_mcp.humans import identity
from longtail_mcp.pipelines.shipped import load_shipped
from longtail_mcp.runtime import service

logger = logging.getLogger("longtail_mcp")


def load_app(specs: list[str], **overrides: Any) -> LongTail:
    """A LongTail with the workflows of every `module:attribute` app given (merged)."""
    app = LongTail(settings=load_settings(**overrides))
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import {module_name!r} (from --app {spec}): {exc}") from None
        other = getattr(module, attr or "app", None)
        if not isinstance(other, LongTail):
            raise ConfigurationError(f"{spec} is not a LongTail app object")
        for wf in other.registry.workflows.values():
            if wf.name not in app.registry.workflows:  # every app has the built-in `pipeline` type
                app.registry.add_workflow(wf.fn, wf.name, **wf.options)
    return app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def _no_uvicorn_signals() -> Iterator[None]:
    yield


async def _until_signal(stop: Any) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop()
            return


def _describe_data(app: LongTail) -> str:
    if app.embedded is None:
        return "DATABASE_URL (external Postgres)"
    link = app.settings.home / "pgdata"
    if link.is_symlink():
        return f"{link} -> {app.embedded.data_dir}"
    return str(app.embedded.data_dir)


def _serve_file(settings: Settings) -> Path:
    return settings.home / "serve.json"


def _announce(app: LongTail, url: str) -> None:
    """Where this `serve` listens, for `status` (removed when it stops)."""
    path = _serve_file(app.settings)
    path.write_text(json.dumps({"pid": os.getpid(), "url": url, "data": _describe_data(app),
                                "started_at": datetime.now(UTC).isoformat()}))


async def cmd_status(args: argparse.Namespace) -> None:
    """What is running: the database (embedded or DATABASE_URL), a `serve` of this home, live workers."""
    settings = load_settings()
    report: dict[str, Any] = {"home": str(settings.home)}
    if settings.database_url is None:
        server = EmbeddedPostgres.for_settings(settings)
        pid = server.running_pid()
        report["database"] = {"kind": "embedded", "data_dir": str(server.data_dir), "port": settings.pg_port,
                              "running": pid is not None, "pid": pid}
    else:
        report["database"] = {"kind": "DATABASE_URL", "url": _no_password(settings.database_url)}
    serve: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError):
        serve = json.loads(_serve_file(settings).read_text())
    report["serve"] = serve if serve and int(serve.get("pid", 0)) > 0 and pid_alive(int(serve["pid"])) else None
    report["workers"] = []
    if settings.database_url is not None or report["database"]["running"]:
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
        state = f"running (pid {db['pid']}, port {db['port']})" if db["running"] else "not running"
        print(f"database  embedded Postgres, {state}: {db['data_dir']}")
    else:
        state = "reachable" if db.get("reachable") else f"NOT reachable ({db.get('error', '')})"
        print(f"database  DATABASE_URL {db['url']}, {state}")
    running = report["serve"]
    print(f"serve     {running['url']} (pid {running['pid']}, since {running['started_at']})" if running
          else "serve     not running for this home")
    print(f"workers   {len(report['workers'])} alive")
    for w in report["workers"]:
        print(f"  {w['id']}  {w['host']} pid {w['pid']}, {w['workflow_types']} workflow types, "
              f"concurrency {w['concurrency']}, last beat {w['heartbeat_at']:%H:%M:%S}")


def _no_password(url: str) -> str:
    """A DSN fit to print: its password replaced (`postgresql://u:***@h/db`, `password=***`)."""
    return re.sub(r"(password=)\S+", r"\1***", re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url))


async def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from longtail_mcp.web.app import build_app

    app = load_app(args.app, host=args.host, port=args.port)
    await app.open()
    sock = None
    try:
        given = app.settings.admin_key
        first_key = await identity.ensure_admin(app.db, given.get_secret_value() if given else None)
        if app.serve_mcp:
            from system_servers import publish_manifests

            await publish_manifests(app)
            await load_shipped(app.db, await app.tool_catalog())
        sock = _bind(app.settings.host, app.settings.port)
        host, port = sock.getsockname()[:2]
        if args.dev and app.settings.host not in LOOPBACK:
            raise InvalidInput("--dev (no API keys) is only allowed on a loopback address")
        worker = app.worker()
        web = build_app(app, worker, mcp=app.serve_mcp, dev=args.dev, host=app.settings.host)
        server = uvicorn.Server(uvicorn.Config(web, log_level="warning", lifespan="on"))
        server.capture_signals = _no_uvicorn_signals  # type: ignore[method-assign]  # we own SIGINT/SIGTERM

        async def serve_http() -> None:
            await server.serve([sock])
            tg.cancel_scope.cancel()  # the HTTP server drained: stop the workers too

        def stop() -> None:
            server.should_exit = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_signal, stop)
            await tg.start(app.remote_sessions.run)  # registered servers' sessions, closed with the task group
            await tg.start(worker.run)
            tg.start_soon(serve_http)
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await anyio.sleep(0.02)
            data = _describe_data(app)
            display = f"[{host}]" if ":" in host else host
            print(f"longtail-mcp ready: http://{display}:{port}  data: {data}", flush=True)
            _announce(app, f"http://{display}:{port}")
            if first_key is not None and app.settings.admin_key is None:  # never echo a key we were given
                print(f"first admin API key (shown once, store it now): {first_key['key']}", flush=True)
    finally:
        if sock is not None:
            sock.close()
        with contextlib.suppress(OSError):
            _serve_file(app.settings).unlink()
        await app.close()
        print("longtail-mcp stopped", flush=True)


async def cmd_worker(args: argparse.Namespace) -> None:
    app = load_app(args.app)
    await app.open(attach=True)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_signal, tg.cancel_scope.cancel)
            await tg.start(app.remote_sessions.run)
            worker = await tg.start(app.worker(**({"concurrency": args.concurrency} if args.concurrency else {})).run)
            names = ", ".join(app.registry.names()) or "(none)"
            print(f"longtail-mcp worker ready: {worker.worker_id} workflows: {names}", flush=True)
    finally:
        await app.close()


async def cmd_migrate(args: argparse.Namespace) -> None:
    app = Client()
    await app.open(apply_migrations=False)
    try:
        applied = await migrate(app.db)
        version = await current_version(app.db)
        print(f"migrations applied: {applied or 'none'}; "
              f"schema {app.settings.schema_name} at {version} of {latest_version()}")
    finally:
        await app.close()


async def cmd_stdio(args: argparse.Namespace) -> None:
    """One server of the family over stdio, acting as the local operator or `--as ACCOUNT`."""
    from mcp.server.stdio import stdio_server

    from longtail_mcp.mcp_glue.server import ListChanged, fixed_principal
    from system_servers import SERVERS, builder, gateway

    build = gateway if args.server == "gateway" else builder(args.server)
    client = Client()
    # A stdio server never owns the embedded database: the process that started it would take it
    # down on exit while sibling servers still use it. It shares the one a `serve` runs.
    await client.open(attach="only")
    async with client:
        actor = await actor_for(client, args.as_account)
        if args.server == "gateway" or getattr(SERVERS[args.server], "DYNAMIC", False):  # tools come and go
            list_changed = ListChanged()
            server = build(client, fixed_principal(actor), list_changed)
        else:
            list_changed, server = None, build(client, fixed_principal(actor))
        async with stdio_server() as (read, write), anyio.create_task_group() as tg:
            if list_changed is not None:
                tg.start_soon(list_changed.watch, client.events)
            await server.run(read, write, server.create_initialization_options())
            tg.cancel_scope.cancel()



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
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from longtail_mcp.app import Client, LongTail
from longtail_mcp.cli.people import actor_for
from longtail_mcp.config import LOOPBACK, Settings, load_settings
from longtail_mcp.db.migrate import current_version, latest_version, migrate
from longtail_mcp.errors import ConfigurationError, InvalidInput, LongtailError, Unavailable
from longtail_mcp.humans import identity
from longtail_mcp.pipelines.shipped import load_shipped

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


def _serve_file(settings: Settings, pid: int) -> Path:
    return settings.home / f"serve-{pid}.json"


def _announce(app: LongTail, url: str) -> None:
    """Where this `serve` listens, for `status` (removed when it stops)."""
    path = _serve_file(app.settings, os.getpid())
    path.write_text(json.dumps({"pid": os.getpid(), "url": url, "data": _describe_data(app),
                                "started_at": datetime.now(UTC).isoformat()}))


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
            _serve_file(app.settings, os.getpid()).unlink()
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


# The servers whose tools start runs (start_workflow, query, pipelines, triage, design): over stdio they also
# run a worker, so a run started from Claude Desktop completes with nothing else running.
WORKING_SERVERS = ("gateway", "workflows", "human-queue", "compiler")


async def cmd_stdio(args: argparse.Namespace) -> None:
    """One server of the family over stdio, acting as the local operator or `--as ACCOUNT`; the servers whose
    tools start runs also run a worker. The embedded database is the home's shared one (db/keeper.py)."""
    from mcp.server.stdio import stdio_server

    from longtail_mcp.mcp_glue.server import ListChanged, fixed_principal
    from system_servers import SERVERS, builder, gateway, publish_manifests

    build = gateway if args.server == "gateway" else builder(args.server)
    app = load_app(args.app)
    async with app:
        actor = await actor_for(app, args.as_account)
        if args.server in ("gateway", "workflows"):  # the shipped pipelines are tools of these two
            try:
                await publish_manifests(app, refresh_registered=False)
                await load_shipped(app.db, await app.tool_catalog())
            except LongtailError as exc:  # e.g. a sibling server loading them at the same moment
                logger.warning("could not load the shipped pipelines: %s", exc)
        if args.server == "gateway" or getattr(SERVERS[args.server], "DYNAMIC", False):  # tools come and go
            list_changed: ListChanged | None = ListChanged()
            server = build(app, fixed_principal(actor), list_changed)
        else:
            list_changed, server = None, build(app, fixed_principal(actor))
        async with stdio_server() as (read, write), anyio.create_task_group() as tg:
            if list_changed is not None:
                tg.start_soon(list_changed.watch, app.events)
            if args.server in WORKING_SERVERS and not args.no_worker:
                await tg.start(app.worker().run)
            await server.run(read, write, server.create_initialization_options())
            tg.cancel_scope.cancel()

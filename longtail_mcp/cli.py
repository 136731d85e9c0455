"""`longtail-mcp`: serve | worker | migrate | runs. The one place that calls anyio.run."""

import argparse
import contextlib
import importlib
import json
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import anyio

from longtail_mcp.config import load_settings
from longtail_mcp.db.migrate import current_version, latest_version, migrate
from longtail_mcp.errors import LongtailError
from longtail_mcp.runtime.app import LongTail
from longtail_mcp.runtime.client import Client

logger = logging.getLogger("longtail_mcp")


def load_app(specs: list[str], **overrides: Any) -> LongTail:
    """A LongTail with the workflows of every `module:attribute` app given (merged)."""
    app = LongTail(settings=load_settings(**overrides))
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise SystemExit(f"longtail-mcp: cannot import {module_name!r} (from --app {spec}): {exc}") from None
        other = getattr(module, attr or "app", None)
        if not isinstance(other, LongTail):
            raise SystemExit(f"longtail-mcp: {spec} is not a LongTail app object")
        for wf in other.registry.workflows.values():
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
        raise SystemExit(f"longtail-mcp: cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None
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


async def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from longtail_mcp.web.app import build_app

    app = load_app(args.app, host=args.host, port=args.port)
    await app.open()
    sock = None
    try:
        sock = _bind(app.settings.host, app.settings.port)
        host, port = sock.getsockname()[:2]
        worker = app.worker()
        web = build_app(app, worker)
        server = uvicorn.Server(uvicorn.Config(web, log_level="warning", lifespan="on"))
        server.capture_signals = _no_uvicorn_signals  # type: ignore[method-assign]  # we own SIGINT/SIGTERM

        async def serve_http() -> None:
            await server.serve([sock])
            tg.cancel_scope.cancel()  # the HTTP server drained: stop the workers too

        def stop() -> None:
            server.should_exit = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_signal, stop)
            await tg.start(worker.run)
            tg.start_soon(serve_http)
            while not server.started:
                await anyio.sleep(0.02)
            data = _describe_data(app)
            display = f"[{host}]" if ":" in host else host
            print(f"longtail-mcp ready: http://{display}:{port}  data: {data}", flush=True)
    finally:
        if sock is not None:
            sock.close()
        await app.close()
        print("longtail-mcp stopped", flush=True)


async def cmd_worker(args: argparse.Namespace) -> None:
    app = load_app(args.app)
    await app.open(attach=True)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_signal, tg.cancel_scope.cancel)
            worker = await tg.start(app.worker(**({"concurrency": args.concurrency} if args.concurrency else {})).run)
            print(f"longtail-mcp worker ready: {worker.worker_id} workflows: {', '.join(app.registry.names()) or '(none)'}",
                  flush=True)
    finally:
        await app.close()


async def cmd_migrate(args: argparse.Namespace) -> None:
    app = Client()
    await app.open(apply_migrations=False)
    try:
        applied = await migrate(app.db)
        version = await current_version(app.db)
        print(f"migrations applied: {applied or 'none'}; schema {app.settings.schema_name} at {version} of {latest_version()}")
    finally:
        await app.close()


async def cmd_runs(args: argparse.Namespace) -> None:
    app = Client()
    await app.open()
    try:
        if args.action == "list":
            rows = await app.list_runs(status=args.status, name=args.name, limit=args.limit)
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                print(f"{'ID':40} {'NAME':20} {'STATUS':10} CREATED")
                for r in rows:
                    print(f"{r['id'][:40]:40} {r['name'][:20]:20} {r['status']:10} {r['created_at']}")
        elif args.action == "show":
            info = await app.handle(args.id).info()
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                for key in ("id", "name", "status", "waiting_for", "created_at", "completed_at", "input", "result", "error"):
                    print(f"{key:13} {json.dumps(info[key]) if key in ('input', 'result', 'error') else info[key]}")
        else:
            print(json.dumps(await app.handle(args.id).export(), indent=2))
    finally:
        await app.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longtail-mcp", description="Durable workflows for agents and humans.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run workers and the HTTP server (embedded Postgres unless DATABASE_URL)")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8420; 0 picks a free one)")
    serve.add_argument("--app", action="append", default=[], metavar="MODULE:ATTR", help="a LongTail app whose workflows to run")
    serve.set_defaults(run=cmd_serve)

    worker = sub.add_parser("worker", help="run workers only (scale-out); shares a running embedded server")
    worker.add_argument("--app", action="append", default=[], metavar="MODULE:ATTR")
    worker.add_argument("--concurrency", type=int, default=None)
    worker.set_defaults(run=cmd_worker)

    mig = sub.add_parser("migrate", help="apply pending database migrations")
    mig.set_defaults(run=cmd_migrate)

    runs = sub.add_parser("runs", help="list, show or export runs")
    runs_sub = runs.add_subparsers(dest="action", required=True)
    ls = runs_sub.add_parser("list")
    ls.add_argument("--status")
    ls.add_argument("--name")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    show = runs_sub.add_parser("show")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    export = runs_sub.add_parser("export", help="the full history as JSON")
    export.add_argument("id")
    runs.set_defaults(run=cmd_runs)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command in ("serve", "worker"):
        sys.path.insert(0, "")  # --app modules from the current directory
    try:
        anyio.run(args.run, args)
    except LongtailError as exc:
        raise SystemExit(f"longtail-mcp: {exc.message}") from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

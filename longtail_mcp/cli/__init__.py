"""`longtail-mcp`: the command line. The one place that calls anyio.run."""

import argparse
import importlib.metadata
import logging
import os
import sys

import anyio

from longtail_mcp.cli import clients, helptext
from longtail_mcp.cli.parsers import agent_parsers, demo_parsers, identity_parsers, lazy, pipeline_parsers
from longtail_mcp.config import SettingsInvalid
from longtail_mcp.errors import (
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidInput,
    LongtailError,
    NotFound,
    Unauthenticated,
    Unavailable,
    WorkflowFailed,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longtail-mcp", description="Durable workflows for agents and humans.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action="version", version=f"longtail-mcp {_version()}")
    parser.add_argument("--config", metavar="FILE", help="a longtail.yaml of settings (else LONGTAIL_CONFIG, else "
                                                         "./longtail.yaml if present); the environment wins over it")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run workers and the HTTP server (embedded Postgres unless DATABASE_URL)")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8420; 0 picks a free one)")
    serve.add_argument("--app", action="append", default=[], metavar="MODULE:ATTR",
                       help="a LongTail app whose workflows to run")
    serve.add_argument("--dev", action="store_true", help="loopback only: MCP over HTTP without API keys")
    serve.set_defaults(run=lazy("serve", "cmd_serve"))

    worker = sub.add_parser("worker", help="run workers only (scale-out); shares a running embedded server")
    worker.add_argument("--app", action="append", default=[], metavar="MODULE:ATTR")
    worker.add_argument("--concurrency", type=int, default=None)
    worker.set_defaults(run=lazy("serve", "cmd_worker"))

    status = sub.add_parser("status", help="what is running: the database, a serve of this home, live workers")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=lazy("status", "cmd_status"))

    mig = sub.add_parser("migrate", help="apply pending database migrations")
    mig.set_defaults(run=lazy("serve", "cmd_migrate"))

    runs = sub.add_parser("runs", help="list, show or export runs (`runs` alone lists the latest)")
    runs.set_defaults(action="list", status=None, name=None, limit=50, json=False, as_account=None)
    runs_sub = runs.add_subparsers(dest="action")
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
    for p in (ls, show, export):
        p.add_argument("--as", dest="as_account", metavar="ACCOUNT",
                       help="only what this account may see (default: every run, as the local operator)")
    runs.set_defaults(run=lazy("people", "cmd_runs", reads=True))
    doors = identity_parsers(sub)
    doors["pipelines"] = pipeline_parsers(sub)
    agent_parsers(sub, doors)
    demo_parsers(sub)

    stdio = sub.add_parser("stdio", help="run one MCP server over stdio (for Claude Desktop and other clients)")
    stdio.add_argument("server", choices=["gateway", *SERVER_NAMES])
    stdio.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
    stdio.add_argument("--app", action="append", default=[], metavar="MODULE:ATTR",
                       help="a LongTail app whose workflows this server's worker runs too")
    stdio.add_argument("--no-worker", action="store_true",
                       help="run no worker here (gateway, workflows, human-queue and compiler run one by default)")
    stdio.set_defaults(run=lazy("serve", "cmd_stdio"))

    db = sub.add_parser("db", help="the embedded Postgres of this home: status, start, stop")
    db.add_argument("action", nargs="?", choices=["status", "start", "stop"], default="status")
    db.add_argument("--force", action="store_true", help="stop: even while processes are connected")
    db.add_argument("--json", action="store_true")
    db.set_defaults(run=lazy("status", "cmd_db"))

    config = sub.add_parser("config", help="configuration for MCP clients: Claude Desktop, Claude Code, VS Code")
    clients.parsers(config.add_subparsers(dest="client", required=True))
    return helptext.apply(parser)


# The family's servers (system_servers.SERVERS, whose import pulls in the MCP SDK: named here so `--help`
# need not; tests/test_cli.py checks the two agree).
SERVER_NAMES = ["compiler", "db-query", "files", "http-fetch", "human-queue", "workflows"]

# Exit codes by error family (README: "Exit codes"); 2 is argparse's usage error.
EXIT_CODES: tuple[tuple[type[LongtailError], int], ...] = (
    (InvalidInput, 3), (NotFound, 4), (Conflict, 5), (Unauthenticated, 6), (Forbidden, 6),
    (ConfigurationError, 7), (Unavailable, 8), (WorkflowFailed, 9),
)


def exit_code(exc: LongtailError) -> int:
    """The exit code of an expected failure: its family's, else 1."""
    return next((code for family, code in EXIT_CODES if isinstance(exc, family)), 1)


def _version() -> str:
    try:
        return importlib.metadata.version("longtail-mcp")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.config:
        os.environ["LONGTAIL_CONFIG"] = args.config  # read wherever settings are loaded, subprocesses included
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # How this process shows in `longtail-mcp db status` (libpq reads it for every connection we open).
    os.environ.setdefault("PGAPPNAME", " ".join(["longtail-mcp", args.command, getattr(args, "server", "")]).strip())
    if args.command in ("serve", "worker", "stdio"):
        sys.path.insert(0, "")  # --app modules from the current directory
    try:
        if getattr(args, "sync", False):
            args.run(args)
        else:
            anyio.run(args.run, args)
    except LongtailError as exc:
        print(f"longtail-mcp: {exc.message}", file=sys.stderr)
        raise SystemExit(exit_code(exc)) from None
    except SettingsInvalid as exc:
        print(f"longtail-mcp: {exc}", file=sys.stderr)
        raise SystemExit(7) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

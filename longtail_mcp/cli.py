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
from pathlib import Path
from typing import Any

import anyio

from longtail_mcp.config import load_settings
from longtail_mcp.db.migrate import current_version, latest_version, migrate
from longtail_mcp.errors import LongtailError
from longtail_mcp.humans import escalations, identity
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.mcp_glue.http import LOOPBACK
from longtail_mcp.app import Client, LongTail

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
        first_key = await identity.ensure_admin(app.db, app.settings.admin_key)
        if app.serve_mcp:
            from system_servers import publish_manifests

            await publish_manifests(app)
        sock = _bind(app.settings.host, app.settings.port)
        host, port = sock.getsockname()[:2]
        if args.dev and app.settings.host not in LOOPBACK:
            raise SystemExit("longtail-mcp: --dev (no API keys) is only allowed on a loopback address")
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
            await tg.start(worker.run)
            tg.start_soon(serve_http)
            while not server.started:
                await anyio.sleep(0.02)
            data = _describe_data(app)
            display = f"[{host}]" if ":" in host else host
            print(f"longtail-mcp ready: http://{display}:{port}  data: {data}", flush=True)
            if first_key is not None and app.settings.admin_key is None:  # never echo a key we were given
                print(f"first admin API key (shown once, store it now): {first_key['key']}", flush=True)
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
    from longtail_mcp.humans import runs

    app = Client()
    await app.open()
    try:
        actor = None if args.as_account is None else await identity.get_principal(app.db, args.as_account)
        if args.action == "list":
            rows = await runs.list_runs(app.db, actor, status=args.status, name=args.name, limit=args.limit)
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                print(f"{'ID':40} {'NAME':20} {'STATUS':10} CREATED")
                for r in rows:
                    print(f"{safe(r['id'])[:40]:40} {safe(r['name'])[:20]:20} {r['status']:10} {r['created_at']}")
        elif args.action == "show":
            info = await runs.get_run(app.db, actor, args.id)
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                for key in ("id", "name", "status", "waiting_for", "created_at", "completed_at", "input", "result", "error"):
                    print(f"{key:13} {json.dumps(info[key]) if key in ('input', 'result', 'error') else safe(info[key])}")
        else:
            print(json.dumps(await runs.export_run(app.db, actor, args.id), indent=2))
    finally:
        await app.close()


def safe(value: Any) -> str:
    """Text for a terminal: control and bidirectional-override characters escaped (\\u202e), so a value
    cannot rewrite the line it is printed on or pass for another."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in str(value))


def _print(rows: Any, as_json: bool, columns: list[str]) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    rows = rows if isinstance(rows, list) else [rows]
    print("  ".join(f"{c.upper():18}" for c in columns))
    for r in rows:
        print("  ".join(f"{safe(r.get(c, '') if r.get(c) is not None else '')[:18]:18}" for c in columns))


async def _actor(client: Client, account: str | None) -> Principal:
    """The acting principal: `--as ACCOUNT`, else the local operator (`system`, full rights)."""
    return SYSTEM if account is None else await identity.get_principal(client.db, account)


async def cmd_users(args: argparse.Namespace) -> None:
    async with Client() as client:
        actor = await _actor(client, args.as_account)
        if args.action == "create":
            row = await identity.create_account(client.db, actor, args.id, args.name, kind=args.kind, email=args.email)
            _print(row, args.json, ["id", "name", "kind", "email"])
        else:
            _print(await identity.list_accounts(client.db, actor), args.json, ["id", "name", "kind", "roles"])


async def cmd_roles(args: argparse.Namespace) -> None:
    async with Client() as client:
        actor = await _actor(client, args.as_account)
        db = client.db
        if args.action == "create":
            await identity.create_role(db, actor, args.name, args.description)
            print(f"role {args.name} created")
        elif args.action == "add-member":
            await identity.set_membership(db, actor, args.role, args.account, args.type)
            print(f"{args.account} is {args.type} of {args.role}")
        elif args.action == "remove-member":
            await identity.remove_membership(db, actor, args.role, args.account)
            print(f"{args.account} removed from {args.role}")
        elif args.action == "set-form":
            try:
                schema = json.loads(Path(args.schema_file).read_text())
            except (OSError, ValueError) as exc:
                raise SystemExit(f"longtail-mcp: cannot read a JSON Schema from {args.schema_file}: {exc}") from None
            version = await identity.add_form(db, actor, args.role, schema)
            print(f"role {args.role} form version {version}")
        elif args.action == "set-chain":
            await identity.set_chain(db, actor, args.role, args.stage_seconds, args.next)
            print(f"{args.role}: {args.stage_seconds}s, then {args.next or 'expire'}")
        else:
            _print(await identity.list_roles(db), args.json, ["name", "members", "next_role", "stage_seconds", "form_version"])


async def cmd_keys(args: argparse.Namespace) -> None:
    async with Client() as client:
        actor = await _actor(client, args.as_account)
        if args.action == "create":
            from datetime import timedelta

            key = await identity.create_key(client.db, actor, args.account, name=args.name, scope=args.scope,
                                            expires_in=timedelta(days=args.expires_days) if args.expires_days else None)
            if args.json:
                print(json.dumps(key, indent=2))
            else:
                print(f"key id {key['id']} ({key['scope']}) for {key['account_id']}; shown once, store it now:")
                print(key["key"])
        elif args.action == "revoke":
            await identity.revoke_key(client.db, actor, args.key_id)
            print(f"key {args.key_id} revoked")
        else:
            rows = await identity.list_keys(client.db, actor, args.account)
            _print(rows, args.json, ["id", "account_id", "name", "scope", "expires_at", "revoked_at"])


async def cmd_escalations(args: argparse.Namespace) -> None:
    async with Client() as client:
        actor = await _actor(client, args.as_account)
        db = client.db
        columns = ["id", "role", "status", "priority", "assigned_to", "message"]
        if args.action == "list":
            if args.available:
                rows = await escalations.available_work(db, actor, role=args.role, limit=args.limit)
            elif args.mine:
                rows = await escalations.my_work(db, actor, limit=args.limit)
            else:
                rows = await escalations.find_escalations(db, actor, status=args.status, role=args.role, type=args.type,
                                                          priority=args.priority, limit=args.limit)
            _print(rows, args.json, columns)
        elif args.action == "show":
            print(json.dumps(await escalations.get_escalation(db, actor, args.id), indent=2))
        elif args.action == "claim":
            row = await escalations.claim(db, actor, args.id, seconds=args.minutes * 60)
            print(f"claimed {safe(row['id'])} until {row['assigned_until']}")
        elif args.action == "resolve":
            text = Path(args.data[1:]).read_text() if args.data.startswith("@") else args.data
            try:
                payload = json.loads(text)
            except ValueError as exc:
                raise SystemExit(f"longtail-mcp: --data is not JSON: {exc}") from None
            row = await escalations.resolve(db, actor, args.id, payload, reason=args.reason,
                                            allow_self_approval=client.settings.allow_self_approval)
            print(f"resolved {safe(row['id'])}")
        elif args.action == "cancel":
            row = await escalations.cancel(db, actor, args.id, reason=args.reason)
            print(f"cancelled {safe(row['id'])}")
        elif args.action == "release":
            row = await escalations.release(db, actor, args.id)
            print(f"released {safe(row['id'])}")
        elif args.action == "reroute":
            row = await escalations.reroute(db, actor, args.id, args.role, reason=args.reason)
            print(f"{safe(row['id'])} is now with role {row['role']}")
        elif args.action == "claim-next":
            row = await escalations.claim_next(db, actor, role=args.role, seconds=args.minutes * 60)
            if row is None:
                raise SystemExit("longtail-mcp: nothing to claim")
            print(json.dumps(row, indent=2) if args.json else f"claimed {safe(row['id'])} until {row['assigned_until']}: {safe(row['message'])}")
        else:
            print(json.dumps(await escalations.escalation_stats(db, actor), indent=2))


async def cmd_audit(args: argparse.Namespace) -> None:
    async with Client() as client:
        actor = await _actor(client, args.as_account)
        for row in await identity.export_audit(client.db, actor, after=args.after, limit=args.limit):
            print(json.dumps(row, separators=(",", ":")))


async def cmd_stdio(args: argparse.Namespace) -> None:
    """One server of the family over stdio, acting as the local operator or `--as ACCOUNT`."""
    from mcp.server.stdio import stdio_server

    from longtail_mcp.mcp_glue.server import fixed_principal
    from system_servers import builder

    build = builder(args.server)
    client = Client()
    # A stdio server never owns the embedded database: the process that started it would take it
    # down on exit while sibling servers still use it. It shares the one a `serve` runs.
    await client.open(attach="only")
    async with client:
        actor = await _actor(client, args.as_account)
        server = build(client, fixed_principal(actor))
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())


def cmd_config(args: argparse.Namespace) -> None:
    """Print a Claude Desktop `mcpServers` block: one stdio entry per server of the family."""
    from system_servers import SERVERS

    env = {k: v for k, v in {"DATABASE_URL": args.database_url, "LONGTAIL_HOME": args.home}.items() if v}
    block = {
        "mcpServers": {
            f"longtail-{name}": {
                "command": sys.executable,
                "args": ["-m", "longtail_mcp", "stdio", name, *(["--as", args.as_account] if args.as_account else [])],
                **({"env": env} if env else {}),
            }
            for name in sorted(SERVERS)
        }
    }
    print(json.dumps(block, indent=2))


def _identity_parsers(sub: Any) -> None:
    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
        p.add_argument("--json", action="store_true")
        return p

    users = sub.add_parser("users", help="accounts (people and bots)").add_subparsers(dest="action", required=True)
    c = common(users.add_parser("create"))
    c.add_argument("id")
    c.add_argument("--name")
    c.add_argument("--kind", choices=["human", "bot"], default="human")
    c.add_argument("--email")
    common(users.add_parser("list"))
    sub.choices["users"].set_defaults(run=cmd_users)

    roles = sub.add_parser("roles", help="roles, memberships, forms, chains").add_subparsers(dest="action", required=True)
    c = common(roles.add_parser("create"))
    c.add_argument("name")
    c.add_argument("--description", default="")
    common(roles.add_parser("list"))
    c = common(roles.add_parser("add-member"))
    c.add_argument("role")
    c.add_argument("account")
    c.add_argument("--type", choices=list(identity.MEMBERSHIPS), default="member")
    c = common(roles.add_parser("remove-member"))
    c.add_argument("role")
    c.add_argument("account")
    c = common(roles.add_parser("set-form", help="a new version of the role's resolution form"))
    c.add_argument("role")
    c.add_argument("schema_file", help="a JSON Schema file")
    c = common(roles.add_parser("set-chain", help="deadline at this role, then the next role (or expiry)"))
    c.add_argument("role")
    c.add_argument("--stage-seconds", type=float, required=True)
    c.add_argument("--next", metavar="ROLE")
    sub.choices["roles"].set_defaults(run=cmd_roles)

    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    c = common(keys.add_parser("create"))
    c.add_argument("account")
    c.add_argument("--name", default="")
    c.add_argument("--scope", choices=["read", "full"], default="full")
    c.add_argument("--expires-days", type=float)
    c = common(keys.add_parser("list"))
    c.add_argument("--account")
    c = common(keys.add_parser("revoke"))
    c.add_argument("key_id")
    sub.choices["keys"].set_defaults(run=cmd_keys)

    esc = sub.add_parser("escalations", help="the human queue").add_subparsers(dest="action", required=True)
    c = common(esc.add_parser("list"))
    c.add_argument("--available", action="store_true", help="claimable work, most urgent first")
    c.add_argument("--mine", action="store_true", help="what I hold a claim on")
    c.add_argument("--status", choices=list(escalations.STATUSES))
    c.add_argument("--role")
    c.add_argument("--type")
    c.add_argument("--priority", type=int)
    c.add_argument("--limit", type=int, default=50)
    for name in ("show", "claim", "release", "resolve", "cancel", "reroute"):
        c = common(esc.add_parser(name))
        c.add_argument("id")
        if name == "claim":
            c.add_argument("--minutes", type=float, default=30)
        if name == "resolve":
            c.add_argument("--data", required=True, help="the resolution as JSON, or @file.json")
        if name == "reroute":
            c.add_argument("role", help="the role to send it to")
        if name in ("resolve", "cancel", "reroute"):
            c.add_argument("--reason")
    c = common(esc.add_parser("claim-next", help="claim the most urgent claimable escalation of my roles"))
    c.add_argument("--role")
    c.add_argument("--minutes", type=float, default=30)
    common(esc.add_parser("stats"))
    sub.choices["escalations"].set_defaults(run=cmd_escalations)

    audit = sub.add_parser("audit", help="the append-only audit log").add_subparsers(dest="action", required=True)
    c = audit.add_parser("export", help="as JSON lines, oldest first")
    c.add_argument("--after", type=int, default=0, help="only records with a larger id")
    c.add_argument("--limit", type=int, default=1_000_000)
    c.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
    sub.choices["audit"].set_defaults(run=cmd_audit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longtail-mcp", description="Durable workflows for agents and humans.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run workers and the HTTP server (embedded Postgres unless DATABASE_URL)")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8420; 0 picks a free one)")
    serve.add_argument("--app", action="append", default=[], metavar="MODULE:ATTR", help="a LongTail app whose workflows to run")
    serve.add_argument("--dev", action="store_true", help="loopback only: MCP over HTTP without API keys")
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
    for p in (ls, show, export):
        p.add_argument("--as", dest="as_account", metavar="ACCOUNT",
                       help="only what this account may see (default: every run, as the local operator)")
    runs.set_defaults(run=cmd_runs)
    _identity_parsers(sub)

    stdio = sub.add_parser("stdio", help="run one MCP server over stdio (for Claude Desktop and other clients)")
    from system_servers import SERVERS

    stdio.add_argument("server", choices=sorted(SERVERS))
    stdio.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
    stdio.set_defaults(run=cmd_stdio)

    config = sub.add_parser("config", help="print client configuration").add_subparsers(dest="client", required=True)
    claude = config.add_parser("claude", help="a Claude Desktop mcpServers block (stdio)")
    claude.add_argument("--as", dest="as_account", metavar="ACCOUNT")
    claude.add_argument("--database-url", help="DATABASE_URL for the servers (default: the embedded Postgres)")
    claude.add_argument("--home", help="LONGTAIL_HOME for the servers")
    claude.set_defaults(run=cmd_config, sync=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command in ("serve", "worker"):
        sys.path.insert(0, "")  # --app modules from the current directory
    try:
        if getattr(args, "sync", False):
            args.run(args)
        else:
            anyio.run(args.run, args)
    except LongtailError as exc:
        raise SystemExit(f"longtail-mcp: {exc.message}") from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

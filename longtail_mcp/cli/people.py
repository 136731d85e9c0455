"""The commands people use: runs, users, roles, keys, escalations, audit (acting as the operator or `--as`)."""

import argparse
import json
from datetime import timedelta
from typing import Any

import anyio

from longtail_mcp.agents.loop import usage
from longtail_mcp.app import Client
from longtail_mcp.cli.parsers import READ_ONLY
from longtail_mcp.errors import InvalidInput, NotFound
from longtail_mcp.humans import escalations, identity, inbox, runs
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.records import Record


async def cmd_runs(args: argparse.Namespace) -> None:
    args.action = args.action or "list"  # `runs` alone lists the latest
    app = client_for(args)
    await app.open()
    try:
        actor = None if args.as_account is None else await identity.get_principal(app.db, args.as_account)
        if args.action == "list":
            rows = await runs.list_runs(app.db, actor, status=args.status, name=args.name, limit=args.limit)
            if args.json:
                print(as_json(rows))
            else:
                _print([r.to_json() for r in rows], False, ["id", "name", "status", "created_at"])
        elif args.action == "show":
            info = await runs.get_run(app.db, actor, args.id)
            model = usage((await runs.export_run(app.db, actor, args.id)).steps)
            if args.json:
                print(as_json({**info.to_json(), "llm": model}))
            else:
                for key in ("id", "name", "status", "waiting_for", "created_at", "completed_at", "input", "result",
                            "error"):
                    value = json.dumps(info[key]) if key in ("input", "result", "error") else safe(info[key])
                    print(f"{key:13} {value}")
                if model:
                    models = ", ".join(map(safe, model["models"]))
                    print(f"{'llm':13} {model['llm_calls']} calls, {model['tokens_in']} tokens in, "
                          f"{model['tokens_out']} out, {model['model_ms']:.0f} ms ({models})")
        else:
            print(as_json(await runs.export_run(app.db, actor, args.id)))
    finally:
        await app.close()


def _plain(value: Any) -> Any:
    return value.to_json() if isinstance(value, Record) else str(value)


def as_json(value: Any, *, indent: int | None = 2) -> str:
    """JSON for the terminal: records (runs, escalations, ...) as their JSON, anything else as text."""
    return json.dumps(value, indent=indent, separators=None if indent else (",", ":"), default=_plain)


def safe(value: Any) -> str:
    """Text for a terminal: control and bidirectional-override characters escaped (\\u202e), so a value
    cannot rewrite the line it is printed on or pass for another."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in str(value))


CUT = {"message": 60, "description": 60, "tools": 60}  # long text columns are cut; ids and names never are


def _print(rows: Any, json_out: bool, columns: list[str]) -> None:
    """A table (columns as wide as their widest value; only free-text columns are cut), or JSON."""
    if json_out:
        print(as_json(rows))
        return
    rows = rows if isinstance(rows, list) else [rows]
    cells = [[_cell(r.get(c), CUT.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any, limit: int | None) -> str:
    text = "" if value is None else safe(", ".join(map(str, value)) if isinstance(value, list) else value)
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def _done(args: argparse.Namespace, data: Any, text: str) -> None:
    """What a verb that changes something prints: its result as JSON with --json, else one line."""
    print(as_json(data) if getattr(args, "json", False) else text)




def client_for(args: argparse.Namespace) -> Client:
    """The client of a verb: one that only reads never starts a database (it says none is running)."""
    client = Client()
    if getattr(args, "action", None) in READ_ONLY or getattr(args, "action", None) is None:
        client.attach_embedded = "only"
    return client


async def actor_for(client: Client, account: str | None) -> Principal:
    """The acting principal: `--as ACCOUNT`, else the local operator (`system`, full rights)."""
    return SYSTEM if account is None else await identity.get_principal(client.db, account)


async def cmd_users(args: argparse.Namespace) -> None:
    async with client_for(args) as client:
        actor = await actor_for(client, args.as_account)
        if args.action == "create":
            row = await identity.create_account(client.db, actor, args.id, args.name, kind=args.kind, email=args.email)
            _print(row, args.json, ["id", "name", "kind", "email"])
        else:
            _print(await identity.list_accounts(client.db, actor), args.json, ["id", "name", "kind", "roles"])


async def cmd_roles(args: argparse.Namespace) -> None:
    async with client_for(args) as client:
        actor = await actor_for(client, args.as_account)
        db = client.db
        if args.action == "create":
            row = await identity.create_role(db, actor, args.name, args.description)
            _done(args, row, f"role {args.name} created")
        elif args.action == "add-member":
            await identity.set_membership(db, actor, args.role, args.account, args.type)
            _done(args, {"role": args.role, "account": args.account, "type": args.type},
                  f"{args.account} is {args.type} of {args.role}")
        elif args.action == "remove-member":
            await identity.remove_membership(db, actor, args.role, args.account)
            _done(args, {"role": args.role, "account": args.account, "removed": True},
                  f"{args.account} removed from {args.role}")
        elif args.action == "set-form":
            try:
                schema = json.loads(await anyio.Path(args.schema_file).read_text())
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"cannot read a JSON Schema from {args.schema_file}: {exc}") from None
            version = await identity.add_form(db, actor, args.role, schema)
            _done(args, {"role": args.role, "form_version": version}, f"role {args.role} form version {version}")
        elif args.action == "set-chain":
            await identity.set_chain(db, actor, args.role, args.stage_seconds, args.next)
            _done(args, {"role": args.role, "stage_seconds": args.stage_seconds, "next_role": args.next},
                  f"{args.role}: {args.stage_seconds}s, then {args.next or 'expire'}")
        else:
            _print(await identity.list_roles(db), args.json,
                   ["name", "members", "next_role", "stage_seconds", "form_version"])


async def cmd_keys(args: argparse.Namespace) -> None:
    async with client_for(args) as client:
        actor = await actor_for(client, args.as_account)
        if args.action == "create":
            key = await identity.create_key(client.db, actor, args.account, name=args.name, scope=args.scope,
                                            expires_in=timedelta(days=args.expires_days) if args.expires_days else None)
            if args.json:
                print(as_json(key))
            else:
                print(f"key id {key['id']} ({key['scope']}) for {key['account_id']}; shown once, store it now:")
                print(key["key"])
        elif args.action == "revoke":
            await identity.revoke_key(client.db, actor, args.key_id)
            _done(args, {"id": args.key_id, "revoked": True}, f"key {args.key_id} revoked")
        else:
            rows = await identity.list_keys(client.db, actor, args.account)
            _print(rows, args.json, ["id", "account_id", "name", "scope", "expires_at", "revoked_at"])


async def cmd_escalations(args: argparse.Namespace) -> None:
    async with client_for(args) as client:
        actor = await actor_for(client, args.as_account)
        db = client.db
        columns = ["id", "role", "status", "priority", "assigned_to", "message"]
        if args.action == "list":
            if args.available:
                rows = await inbox.available_work(db, actor, role=args.role, type=args.type,
                                                  sort=args.sort or "priority", limit=args.limit)
            elif args.mine:
                rows = await inbox.my_work(db, actor, role=args.role, type=args.type, sort=args.sort or "priority",
                                           limit=args.limit)
            else:
                rows = await inbox.find_escalations(db, actor, status=args.status, role=args.role, type=args.type,
                                                    priority=args.priority, sort=args.sort or "newest",
                                                    limit=args.limit)
            _print(rows, args.json, columns)
        elif args.action == "show":
            print(as_json(await escalations.get_escalation(db, actor, args.id)))  # always JSON
        elif args.action == "claim":
            row = await escalations.claim(db, actor, args.id, seconds=args.minutes * 60)
            _done(args, row, f"claimed {safe(row['id'])} until {row['assigned_until']}")
        elif args.action == "resolve":
            try:
                text = await anyio.Path(args.data[1:]).read_text() if args.data.startswith("@") else args.data
            except OSError as exc:
                raise InvalidInput(f"cannot read --data {args.data}: {exc.strerror}") from None
            try:
                payload = json.loads(text)
            except ValueError as exc:
                raise InvalidInput(f"--data is not JSON: {exc}") from None
            row = await escalations.resolve(db, actor, args.id, payload, reason=args.reason,
                                            allow_self_approval=client.settings.allow_self_approval)
            _done(args, row, f"resolved {safe(row['id'])}")
        elif args.action == "cancel":
            row = await escalations.cancel(db, actor, args.id, reason=args.reason)
            _done(args, row, f"cancelled {safe(row['id'])}")
        elif args.action == "release":
            row = await escalations.release(db, actor, args.id)
            _done(args, row, f"released {safe(row['id'])}")
        elif args.action == "reroute":
            row = await escalations.reroute(db, actor, args.id, args.role, reason=args.reason)
            _done(args, row, f"{safe(row['id'])} is now with role {row['role']}")
        elif args.action == "claim-next":
            claimed = await escalations.claim_next(db, actor, role=args.role, seconds=args.minutes * 60)
            if claimed is None:
                raise NotFound("nothing to claim")
            print(as_json(claimed) if args.json else
                  f"claimed {safe(claimed['id'])} until {claimed['assigned_until']}: {safe(claimed['message'])}")
        elif args.action == "history":
            entries = await escalations.history(db, actor, args.id)
            if args.json:
                print(as_json(entries))
            for r in [] if args.json else entries:
                line = f"{r['at']:%Y-%m-%d %H:%M:%S}  {safe(r['actor'] or '-'):12} {r['action']:22}"
                detail = " ".join(x for x in (safe(r["reason"] or ""), as_json(r["data"], indent=None)
                                              if r["data"] else "") if x)
                print(f"{line} {detail}".rstrip())
        else:
            print(as_json(await inbox.escalation_stats(db, actor)))


async def cmd_audit(args: argparse.Namespace) -> None:
    async with client_for(args) as client:
        actor = await actor_for(client, args.as_account)
        for row in await identity.export_audit(client.db, actor, after=args.after, limit=args.limit):
            print(as_json(row, indent=None))

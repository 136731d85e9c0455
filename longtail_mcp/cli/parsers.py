"""The parsers of the people, pipeline, agent and demo verbs. The commands they run are imported when one
runs (`lazy`), so `longtail-mcp --help` and a mistyped command do not load the runtime, the pipelines
and the agents (about 0.4 s). The choices below are copies of the core's, which tests/test_cli.py checks."""

import argparse
import importlib
from collections.abc import Awaitable, Callable
from typing import Any


def _a_database_runs() -> None:
    """Raise what attaching would (keeper.not_running) when no DATABASE_URL is set and no embedded one runs."""
    from longtail_mcp.config import load_settings
    from longtail_mcp.db import keeper
    from longtail_mcp.db.embedded import EmbeddedPostgres

    settings = load_settings()
    if settings.database_url is None:
        server = EmbeddedPostgres.for_settings(settings)
        if server.running_pid() is None:
            raise keeper.not_running(server)


POLICIES = ("off", "draft", "activate")  # agents.closed_loop.POLICIES
ROUTERS = ("query", "triage")  # agents.closed_loop.ROUTERS
MEMBERSHIPS = ("member", "admin", "superadmin")  # humans.identity.MEMBERSHIPS
ESCALATION_STATUSES = ("pending", "resolved", "cancelled", "expired")  # humans.inbox.STATUSES
ESCALATION_SORTS = ("priority", "oldest", "newest")  # humans.inbox.SORTS


# The verbs' actions that only read: they never start a database (people.client_for attaches only).
READ_ONLY = {"list", "show", "export", "history", "stats", "versions", "strategies"}


def lazy(module: str, name: str, *, reads: bool = False) -> Callable[[argparse.Namespace], Awaitable[None]]:
    """The command `longtail_mcp.cli.<module>.<name>`, imported when it runs. With `reads`, a read-only
    action first checks that there is a database to read, so "none is running" costs no runtime import."""

    async def run(args: argparse.Namespace) -> None:
        if reads and getattr(args, "action", None) in (*READ_ONLY, None):  # `runs` alone lists
            _a_database_runs()
        command = getattr(importlib.import_module(f"longtail_mcp.cli.{module}"), name)
        await command(args)

    run.__qualname__ = name
    return run


def identity_parsers(sub: Any) -> dict[str, Any]:
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
    sub.choices["users"].set_defaults(run=lazy("people", "cmd_users", reads=True))

    roles = sub.add_parser("roles", help="roles, memberships, forms, chains").add_subparsers(dest="action",
                                                                                           required=True)
    c = common(roles.add_parser("create"))
    c.add_argument("name")
    c.add_argument("--description", default="")
    common(roles.add_parser("list"))
    c = common(roles.add_parser("add-member"))
    c.add_argument("role")
    c.add_argument("account")
    c.add_argument("--type", choices=list(MEMBERSHIPS), default="member")
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
    sub.choices["roles"].set_defaults(run=lazy("people", "cmd_roles", reads=True))

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
    sub.choices["keys"].set_defaults(run=lazy("people", "cmd_keys", reads=True))

    esc = sub.add_parser("escalations", help="the human queue").add_subparsers(dest="action", required=True)
    c = common(esc.add_parser("list"))
    c.add_argument("--available", action="store_true", help="claimable work (most urgent first by default)")
    c.add_argument("--mine", action="store_true", help="what I hold a claim on (most urgent first by default)")
    c.add_argument("--status", choices=list(ESCALATION_STATUSES), help="only this status (not with --available/--mine)")
    c.add_argument("--role", help="only this role (one of mine)")
    c.add_argument("--type", help="only this type (e.g. approval)")
    c.add_argument("--priority", type=int,
                   help="only this priority, 1 (most urgent) to 5 (not with --available/--mine)")
    c.add_argument("--sort", choices=list(ESCALATION_SORTS),
                   help="the order: most urgent first, oldest or newest first (default: priority for --available "
                        "and --mine, else newest)")
    c.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
    for name in ("show", "history", "claim", "release", "resolve", "cancel", "reroute"):
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
    sub.choices["escalations"].set_defaults(run=lazy("people", "cmd_escalations", reads=True))

    audit = sub.add_parser("audit", help="the append-only audit log").add_subparsers(dest="action", required=True)
    c = audit.add_parser("export", help="as JSON lines, oldest first")
    c.add_argument("--after", type=int, default=0, help="only records with a larger id")
    c.add_argument("--limit", type=int, default=1_000_000)
    c.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
    sub.choices["audit"].set_defaults(run=lazy("people", "cmd_audit", reads=True))
    return {"escalations": esc}


def pipeline_parsers(sub: Any) -> Any:
    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
        p.add_argument("--json", action="store_true")
        return p

    verbs = sub.add_parser("pipelines", help="create, compile, verify and publish pipelines").add_subparsers(
        dest="action", required=True)
    c = common(verbs.add_parser("create", help="create (or add a version to) a pipeline from a YAML file"))
    c.add_argument("file")
    c = common(verbs.add_parser("list"))
    c.add_argument("--status", choices=["draft", "deployed", "active", "archived"])
    c.add_argument("--query", help="words in names, descriptions, tags, tools")
    c.add_argument("--limit", type=int, default=50)
    c = common(verbs.add_parser("show", help="a version's YAML (default: the latest)"))
    c.add_argument("name")
    c.add_argument("--version", type=int)
    c = common(verbs.add_parser("versions"))
    c.add_argument("name")
    c = common(verbs.add_parser("compile", help="compile a finished run into a draft pipeline"))
    c.add_argument("id", help="the run")
    c.add_argument("--name")
    c.add_argument("--request", help="the request the run answered (recorded as a prompt template)")
    c = common(verbs.add_parser("compile-source", help="compile a workflow function's source into a draft"))
    c.add_argument("target", metavar="MODULE:FUNCTION")
    c.add_argument("--name")
    for verb in ("verify", "deploy", "activate", "archive", "restore", "delete"):
        c = common(verbs.add_parser(verb))
        c.add_argument("name")
        if verb == "activate":
            c.add_argument("--force", action="store_true", help="without a passed verification")
    c = common(verbs.add_parser("run", help="run a pipeline (its active version, or --version) and wait"))
    c.add_argument("name")
    c.add_argument("--input", default="{}", help="the inputs as a JSON object")
    c.add_argument("--version", type=int)
    c.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the result (default 60)")
    sub.choices["pipelines"].set_defaults(run=lazy("pipelines", "cmd_pipelines", reads=True))
    return verbs


def agent_parsers(sub: Any, verbs_of: dict[str, Any]) -> None:
    """`query`, `agents ...`, and the verbs that need a model: `escalations triage`, `pipelines design`."""
    query = sub.add_parser("query", help="answer a request: a matching pipeline, else the agent (mcpQuery)")
    query.add_argument("request", help="what to do, as you would ask a person")
    query.add_argument("--tags", help="comma-separated: only pipelines and tools with one of these tags")
    query.add_argument("--escalate-to", metavar="ROLE", help="a role the agent hands the work to if it cannot finish")
    query.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the answer (default 300)")
    query.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
    query.add_argument("--json", action="store_true")
    query.set_defaults(run=lazy("agents", "cmd_query"))

    policy = sub.add_parser("agents", help="the closed-loop policy: what successful agent runs become")
    verbs = policy.add_subparsers(dest="action", required=True)
    for verb, text in (("list", "every policy set"), ("set", "set a router's or a tag's policy"),
                       ("clear", "clear one (the setting LONGTAIL_AUTO_COMPILE applies again)")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
        p.add_argument("--json", action="store_true")
        if verb == "set":
            p.add_argument("policy", choices=POLICIES)
        if verb != "list":
            scope = p.add_mutually_exclusive_group(required=True)
            scope.add_argument("--router", choices=ROUTERS)
            scope.add_argument("--tag")
    for verb, text in (("strategies", "every role's escalation strategy"),
                       ("strategy", "set what a role's new escalations go to first")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
        p.add_argument("--json", action="store_true")
        if verb == "strategy":
            p.add_argument("role")
            p.add_argument("strategy", help="default (a person), triage, or a workflow type a running worker serves")
    policy.set_defaults(run=lazy("agents", "cmd_agents", reads=True))

    tri = verbs_of["escalations"].add_parser("triage", help="triage an escalation now (a pipeline, else the agent)")
    tri.add_argument("id")
    tri.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the decision (default 300)")
    tri.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
    tri.add_argument("--json", action="store_true")
    tri.set_defaults(run=lazy("agents", "cmd_triage"))

    des = verbs_of["pipelines"].add_parser("design", help="a model drafts a pipeline from a description")
    des.add_argument("description", help="what the pipeline should do")
    des.add_argument("--name", help="the pipeline's name")
    des.add_argument("--tags", help="comma-separated: offer only tools of these servers or tags")
    des.add_argument("--wait", type=float, default=300.0, help="seconds to wait (default 300)")
    des.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="act as this account (default: system)")
    des.add_argument("--json", action="store_true")
    des.set_defaults(run=lazy("agents", "cmd_design"))


def demo_parsers(sub: Any) -> None:
    demo = sub.add_parser("demo", help="the closed loop end to end, offline: agent -> pipeline -> MCP tool -> "
                                       "0 LLM calls")
    demo.add_argument("--turn-delay", type=float, default=1.0,
                      help="seconds the scripted model takes a turn, like a real one (default 1)")
    demo.set_defaults(run=lazy("demo", "cmd_demo"))

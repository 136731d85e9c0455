"""Help for every option and an example for every command, filled in once the parser is built (so the
verbs' modules stay about what they do). tests/test_cli.py checks that nothing is left without help."""

import argparse

# Help by (command path, option) first, then by option alone.
HELP: dict[tuple[str, str] | str, str] = {
    "json": "print the result as JSON",
    "id": "the id, as `list` prints it",
    "as_account": "act as this account (default: the local operator, system)",
    "app": "a LongTail app MODULE:ATTR whose workflows to run (repeatable)",
    "concurrency": "runs this worker executes at once (default: LONGTAIL_CONCURRENCY)",
    "status": "only this status",
    "limit": "at most this many",
    "reason": "why, recorded in the history",
    "minutes": "how long the claim lasts (default 30)",
    "role": "the role",
    "account": "the account",
    "version": "this version (default: the latest)",
    "router": "the router: query or triage",
    "tag": "a tag of requests (their tags win over the router's policy)",
    ("runs list", "name"): "only runs of this workflow type",
    ("users create", "name"): "the display name",
    ("users create", "kind"): "human or bot",
    ("users create", "email"): "an e-mail address",
    ("roles create", "name"): "the role's name",
    ("roles create", "description"): "what the role is for",
    ("roles add-member", "type"): "member, admin (of this role) or superadmin",
    ("roles set-chain", "stage_seconds"): "how long an escalation waits at this role",
    ("roles set-chain", "next"): "the role it moves to then (default: it expires)",
    ("keys create", "name"): "a label for the key",
    ("keys create", "scope"): "full, or read (read-only tools and events)",
    ("keys create", "expires_days"): "the key stops working after this many days",
    ("keys list", "account"): "only this account's keys",
    ("keys revoke", "key_id"): "the key's id (not the key itself)",
    ("escalations list", "role"): "only this role",
    ("escalations list", "type"): "only this type (review, approval, ...)",
    ("escalations list", "priority"): "only this priority (1 most urgent .. 5)",
    ("escalations claim-next", "role"): "only this role's work",
    ("audit export", "limit"): "at most this many records",
    ("pipelines create", "file"): "the pipeline's YAML file",
    ("pipelines list", "status"): "only pipelines in this state",
    ("pipelines compile", "name"): "the pipeline's name (default: from the run)",
    ("pipelines compile-source", "target"): "the workflow function, MODULE:FUNCTION",
    ("pipelines compile-source", "name"): "the pipeline's name (default: from the function)",
    ("pipelines run", "version"): "run this version (default: the active one)",
    ("agents set", "policy"): "off, draft or activate",
    ("agents strategy", "role"): "the role whose new escalations this applies to",
    ("stdio", "server"): "the server to run; gateway: every tool of the family in one server",
    ("config claude", "as_account"): "the account the servers act as (default: system)",
    ("pipelines", "name"): "the pipeline's name",
    ("db", "action"): "status (default), start (keeps it running until idle), or stop",
}

EXAMPLES = {
    "serve": "longtail-mcp serve --app myapp:app           # http://127.0.0.1:8420, key printed once",
    "worker": "longtail-mcp worker --app myapp:app --concurrency 50",
    "status": "longtail-mcp status --json",
    "migrate": "longtail-mcp migrate",
    "db": "longtail-mcp db status\n  longtail-mcp db stop --force",
    "runs": "longtail-mcp runs list --status failed\n  longtail-mcp runs show order-42",
    "users": "longtail-mcp users create rita --name 'Rita Ng'",
    "roles": "longtail-mcp roles add-member reviewer rita --type admin",
    "keys": "longtail-mcp keys create rita --scope read --expires-days 30",
    "escalations": "longtail-mcp escalations list --available\n  longtail-mcp escalations resolve esc-1 --data "
                   "'{\"approved\": true}'",
    "audit": "longtail-mcp audit export --after 100 > audit.jsonl",
    "pipelines": "longtail-mcp pipelines create note.yaml\n  longtail-mcp pipelines run save_note --input "
                 "'{\"title\": \"todo\", \"text\": \"milk\"}'",
    "query": "longtail-mcp query \"save a report of open escalations for role reviewer to reports/r.json\"",
    "agents": "longtail-mcp agents set activate --router query\n  longtail-mcp agents strategy support triage",
    "demo": "longtail-mcp demo --turn-delay 0.5",
    "stdio": "longtail-mcp stdio files --as rita",
    "config": "longtail-mcp config claude --install      # merge into Claude Desktop's config (backup first)\n"
              "  longtail-mcp config claude-code              # the `claude mcp add` line\n"
              "  longtail-mcp config vscode                   # merge into .vscode/mcp.json",
}


def _fill(parser: argparse.ArgumentParser, path: list[str]) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _fill(sub, [*path, name])
        elif not action.help:
            key = " ".join(path)
            action.help = (HELP.get((key, action.dest)) or HELP.get((path[0] if path else "", action.dest))
                           or HELP.get(action.dest))


def apply(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Fill in missing option help and give each command its example."""
    _fill(parser, [])
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name in EXAMPLES:
                    sub.formatter_class = argparse.RawDescriptionHelpFormatter
                    sub.epilog = f"example:\n  {EXAMPLES[name]}"
    return parser

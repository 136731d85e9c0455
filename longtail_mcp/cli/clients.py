"""`longtail-mcp config claude | claude-code | vscode`: the configuration MCP clients need, printed or merged
into their files (a backup first; other servers never touched). docs/clients.md shows each."""

import argparse
import json
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from longtail_mcp.errors import InvalidInput

NAME = "longtail"
KEY_PLACEHOLDER = "<an ltk_ API key: longtail-mcp keys create ACCOUNT>"


def stdio_entry(args: argparse.Namespace, server: str = "gateway") -> dict[str, Any]:
    """How a client starts one stdio server of the family (by default the gateway: every tool in one)."""
    env = {k: v for k, v in {"DATABASE_URL": args.database_url, "LONGTAIL_HOME": args.home}.items() if v}
    apps = [a for spec in args.app for a in ("--app", spec)]
    if apps:  # the apps' modules are found from here, wherever the client starts the server
        env["PYTHONPATH"] = str(Path.cwd())
    entry: dict[str, Any] = {"command": sys.executable,
                             "args": ["-m", "longtail_mcp", "stdio", server,
                                      *(["--as", args.as_account] if args.as_account else []), *apps]}
    if env:
        entry["env"] = env
    return entry


def _url(args: argparse.Namespace) -> str:
    return (args.http or "http://127.0.0.1:8420").rstrip("/") + ("" if args.http and args.http.endswith("/mcp")
                                                                 else "/mcp")


def _headers(args: argparse.Namespace) -> dict[str, str]:
    return {"Authorization": f"Bearer {args.key or KEY_PLACEHOLDER}"}


def servers(args: argparse.Namespace) -> dict[str, Any]:
    """The entries for a client: the gateway (one process), each server (`--split`), or streamable HTTP."""
    if args.http is not None:
        return {NAME: {"type": "http", "url": _url(args), "headers": _headers(args)}}
    if args.split:
        from longtail_mcp.cli import SERVER_NAMES

        return {f"{NAME}-{name}": stdio_entry(args, name) for name in SERVER_NAMES}
    return {NAME: stdio_entry(args)}


def claude_desktop_file() -> Path:
    """Where Claude Desktop keeps its configuration on this OS."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "Claude" / \
            "claude_desktop_config.json"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "Claude" / "claude_desktop_config.json"


def merge(path: Path, key: str, entries: dict[str, Any]) -> Path | None:
    """Add or replace `entries` under `key` in the JSON file at `path`, keeping everything else; the old
    file is copied aside first. Returns the backup (None when there was no file).

    Raises:
        InvalidInput: the file exists but is not a JSON object (nothing is written).
    """
    backup = None
    document: dict[str, Any] = {}
    if path.exists():
        text = path.read_text()
        try:
            document = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise InvalidInput(f"{path} is not JSON ({exc}); fix or move it, then run this again") from None
        if not isinstance(document, dict) or not isinstance(document.get(key, {}), dict):
            raise InvalidInput(f"{path} is not a JSON object with an object {key!r}; nothing was changed")
        backup = path.with_name(f"{path.name}.{datetime.now(UTC):%Y%m%d%H%M%S}.bak")
        backup.write_text(text)
    document.setdefault(key, {}).update(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(document, indent=2) + "\n")
    temp.replace(path)
    return backup


def _report(path: Path, backup: Path | None, entries: dict[str, Any]) -> None:
    print(f"wrote {', '.join(entries)} into {path}" + (f" (the previous file is {backup})" if backup else ""))


def cmd_claude(args: argparse.Namespace) -> None:
    entries = servers(args)
    if args.install:
        path = claude_desktop_file()
        _report(path, merge(path, "mcpServers", entries), entries)
        print("restart Claude Desktop to load it")
        return
    print(json.dumps({"mcpServers": entries}, indent=2))


def cmd_claude_code(args: argparse.Namespace) -> None:
    entries = servers(args)
    if args.write:
        path = Path(".mcp.json")
        _report(path.absolute(), merge(path, "mcpServers", entries), entries)
        return
    for name, entry in entries.items():
        if entry.get("type") == "http":
            line = ["claude", "mcp", "add", "--transport", "http", name, entry["url"],
                    "--header", f"Authorization: {entry['headers']['Authorization']}"]
        else:
            line = ["claude", "mcp", "add", *(f"--env={k}={v}" for k, v in entry.get("env", {}).items()), name,
                    "--", entry["command"], *entry["args"]]
        print(shlex.join(line))


def cmd_vscode(args: argparse.Namespace) -> None:
    entries = {name: ({"type": "stdio", **entry} if "command" in entry else entry)
               for name, entry in servers(args).items()}
    if args.print:
        print(json.dumps({"servers": entries}, indent=2))
        return
    path = Path(".vscode") / "mcp.json"
    _report(path.absolute(), merge(path, "servers", entries), entries)


def parsers(config: Any) -> None:
    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--as", dest="as_account", metavar="ACCOUNT", help="the account the servers act as "
                       "(default: system)")
        p.add_argument("--database-url", help="DATABASE_URL for the servers (default: the embedded Postgres)")
        p.add_argument("--home", help="LONGTAIL_HOME for the servers")
        p.add_argument("--app", action="append", default=[], metavar="MODULE:ATTR",
                       help="a LongTail app (importable from this directory) whose workflows the servers run")
        p.add_argument("--split", action="store_true", help="one entry per server instead of the gateway")
        p.add_argument("--http", nargs="?", const="http://127.0.0.1:8420", metavar="URL",
                       help="a running `serve` over streamable HTTP (default http://127.0.0.1:8420) instead of stdio")
        p.add_argument("--key", help="the API key for --http (else a placeholder to replace)")
        return p

    claude = common(config.add_parser("claude", help="Claude Desktop's mcpServers block (stdio gateway)"))
    claude.add_argument("--install", action="store_true",
                        help="merge it into Claude Desktop's config file (backup first; other servers kept)")
    claude.set_defaults(run=cmd_claude, sync=True)
    code = common(config.add_parser("claude-code", help="the `claude mcp add` line for Claude Code"))
    code.add_argument("--write", action="store_true", help="merge it into ./.mcp.json (the project's servers)")
    code.set_defaults(run=cmd_claude_code, sync=True)
    vscode = common(config.add_parser("vscode", help="merge the server into ./.vscode/mcp.json (VS Code)"))
    vscode.add_argument("--print", action="store_true", help="print the `servers` block instead of writing it")
    vscode.set_defaults(run=cmd_vscode, sync=True)

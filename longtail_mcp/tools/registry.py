"""Registered MCP servers: connect, cache their tools as manifests, find tools, call them.

Registering a stdio server means this process will run its command, so only superadmins may.
A stdio server is started with a minimal environment (PATH, HOME, the locale) plus what was
registered for it, never this process's own (database URL, keys, settings); registered values are
write-only: stored for launching it, never returned. Who may call a server's tools is part of its
registration: superadmins, plus members of its `access_roles`; read-scope keys only when it allows
them, and then only the tools it marks read-only.
"""

import json
import re
from typing import Any

import anyio

from longtail_mcp.db.pool import Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Forbidden, InvalidInput, LongtailError, NonRetryableError, NotFound, Unavailable
from longtail_mcp.events import Event, emit
from longtail_mcp.humans.identity import Principal, audit, require_superadmin
from longtail_mcp.records import iso
from longtail_mcp.runtime.codec import dumps
from longtail_mcp.runtime.replay import current_step_var
from longtail_mcp.tools.sessions import CONNECT_SECONDS, RemoteSessions, connect
from longtail_mcp.tools.spec import Progress

Q = load("tools")
H = load("humans")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# The `_meta` key of a call made from a run: `<workflow id>:<seq or key>`, the same across retries and replays.
IDEMPOTENCY_META = "io.longtail/idempotency-key"


def may_call(principal: Principal | None, server: dict[str, Any], read_only_tool: bool) -> bool:
    """Whether `principal` may call a tool of a registered server (None: trusted code, may)."""
    if principal is None:
        return True
    granted = principal.superadmin or any(principal.member_of(role) for role in server.get("access_roles") or [])
    return granted and (principal.scope == "full" or (bool(server.get("read_scope")) and read_only_tool))


def check_access(principal: Principal | None, manifest: dict[str, Any]) -> None:
    """Raises Forbidden unless `principal` may call this registered tool."""
    read_only = bool((manifest.get("annotations") or {}).get("readOnlyHint"))
    if may_call(principal, manifest, read_only):
        return
    who = principal.id if principal is not None else "system"
    if principal is not None and principal.scope != "full" and any(
            principal.member_of(r) for r in manifest.get("access_roles") or []):
        raise Forbidden(f"{manifest['server']}/{manifest['name']} may not be called with a read-scope key")
    raise Forbidden(f"{who} may not call the tools of MCP server {manifest['server']!r} (a superadmin grants "
                    "access by registering it with access_roles)")


def arg_names(schema: dict[str, Any] | None) -> str:
    return " ".join(sorted((schema or {}).get("properties", {})))


def manifest_row(tool: Any, tags: list[str]) -> dict[str, Any]:
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else {}
    return {"name": tool.name, "description": tool.description or "", "input_schema": tool.input_schema,
            "output_schema": tool.output_schema, "annotations": annotations, "tags": tags,
            "arg_names": arg_names(tool.input_schema)}


async def register_server(
    db: Database, actor: Principal, name: str, *, command: list[str] | None = None, url: str | None = None,
    transport: str | None = None, env: dict[str, str] | None = None, description: str = "",
    tags: list[str] | None = None, compile_hints: dict[str, Any] | None = None,
    access_roles: list[str] | None = None, read_scope: bool = False,
) -> dict[str, Any]:
    """Register a stdio command or an HTTP/SSE URL, connect to it and cache its tools. Registering again
    replaces the registration (its environment and access included).

    Raises:
        InvalidInput: bad name or connection details.  Unavailable: it could not be reached (nothing is stored).
        NotFound: an access role does not exist.
    """
    require_superadmin(actor, "register MCP servers (a stdio server runs a command on this host)")
    if not NAME.match(name) or "__" in name:
        raise InvalidInput("a server name is 1-63 lowercase letters, digits and dashes")
    if (command is None) == (url is None):
        raise InvalidInput("give exactly one of command (stdio) or url (http/sse)")
    kind = transport or ("stdio" if command else ("sse" if url and url.rstrip("/").endswith("/sse") else "http"))
    if kind not in ("stdio", "http", "sse") or (kind == "stdio") != (command is not None):
        raise InvalidInput("transport must be stdio (with command) or http/sse (with url)")
    if url is not None and not re.match(r"^https?://", url):
        raise InvalidInput("url must start with http:// or https://")
    roles = sorted(set(access_roles or []))
    async with db.connection() as conn:
        for role in roles:
            if await (await conn.execute(H["role_exists"], {"role": role})).fetchone() is None:
                raise NotFound(f"no role {role!r} to grant access to server {name!r}")
    row = {"name": name, "transport": kind, "command": command, "env": env or {}, "url": url}
    tags = sorted(set(tags or []))
    tools = await list_remote_tools(row, tags)  # fails before anything is stored
    async with db.transaction() as conn:
        await conn.execute(Q["upsert_server"], {
            **row, "description": description, "tags": tags, "hints": dumps(compile_hints or {}), "by": actor.id,
            "access_roles": roles, "read_scope": read_scope,
        })
        await conn.execute(Q["set_server_secret"], {"name": name, "env": dumps(env or {})})
        await _store(conn, name, tools)
        await audit(conn, actor, "mcp_server.register", "mcp_server", name,
                    data={"transport": kind, "tools": len(tools), "access_roles": roles, "read_scope": read_scope})
        await emit(conn, db, [Event("tools.changed", id=name, name=name)])  # the gateway's list changed
    return {"name": name, "transport": kind, "tools": [t["name"] for t in tools], "access_roles": roles,
            "read_scope": read_scope}


MAX_PAGES = 100  # a server that keeps handing out cursors is listed this far, not forever


async def list_remote_tools(server: dict[str, Any], tags: list[str]) -> list[dict[str, Any]]:
    """Every tool of a server, page by page (following `nextCursor`)."""
    tools: list[Any] = []
    try:
        with anyio.fail_after(CONNECT_SECONDS):
            async with connect(server) as client:
                cursor: str | None = None
                for _ in range(MAX_PAGES):
                    listed = await client.list_tools(cursor=cursor)
                    tools += listed.tools
                    cursor = listed.next_cursor
                    if not cursor:
                        break
    except TimeoutError:
        raise Unavailable(f"MCP server {server['name']!r} did not list its tools "
                          f"within {CONNECT_SECONDS:.0f}s") from None
    return [manifest_row(t, tags) for t in tools]


async def _store(conn: Any, server: str, tools: list[dict[str, Any]]) -> None:
    await conn.execute(Q["delete_manifests"], {"server": server})
    if tools:
        await conn.execute(Q["insert_manifests"], {"server": server, "tools": json.dumps(tools)})
    await conn.execute(Q["mark_refreshed"], {"name": server, "error": None})


async def refresh(db: Database, name: str) -> int:
    """Reconnect to a registered server and replace its cached manifests; returns the tool count."""
    server = await _server(db, name)
    try:
        tools = await list_remote_tools(server, list(server["tags"]))
    except LongtailError as exc:
        async with db.connection() as conn:
            await conn.execute(Q["mark_refreshed"], {"name": name, "error": exc.message})
        raise
    async with db.transaction() as conn:
        await _store(conn, name, tools)
    return len(tools)


async def register_builtin(db: Database, name: str, manifests: list[dict[str, Any]], *, description: str,
                           tags: list[str]) -> None:
    """Store the manifests of one of our own servers (generated from its tool definitions)."""
    rows = [{**m, "arg_names": arg_names(m["input_schema"]),
             "annotations": m["annotations"], "tags": m["tags"]} for m in manifests]
    async with db.transaction() as conn:
        await conn.execute(Q["upsert_server"], {
            "name": name, "transport": "builtin", "command": None, "url": None,
            "description": description, "tags": tags, "hints": "{}", "by": "system", "access_roles": [],
            "read_scope": False,
        })
        await _store(conn, name, rows)


async def _server(db: Database, name: str) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await (await conn.execute(Q["get_server"], {"name": name})).fetchone()
    if row is None:
        raise NotFound(f"no MCP server named {name!r} is registered")
    return row


async def list_servers(db: Database, actor: Principal | None = None) -> list[dict[str, Any]]:
    """Known servers with their tool counts. How to reach a registered server (its command line or URL,
    which may carry credentials, and the names of its environment variables) is shown to superadmins
    (and trusted code) only; environment values are never shown."""
    async with db.connection() as conn:
        rows = [iso(r) for r in await (await conn.execute(Q["list_servers"])).fetchall()]
    if actor is None or actor.superadmin:
        return rows
    hidden: dict[str, Any] = {"command": None, "url": None, "env_keys": [], "registered_by": None, "last_error": None}
    return [{**r, **hidden} if r["transport"] != "builtin" else r for r in rows]


def _prefix_query(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return " | ".join(f"{w}:*" for w in words) or "nothing"


async def find_tools(db: Database, query: str = "", *, tags: list[str] | None = None,
                     limit: int = 20) -> list[dict[str, Any]]:
    """Tools ranked by full-text match over names, descriptions, argument names and tags (prefixes count)."""
    if not 1 <= limit <= 200:
        raise InvalidInput("limit must be between 1 and 200")
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["find_tools"], {
            "query": query.strip(), "prefix": _prefix_query(query), "tags": tags or None, "limit": limit,
        })).fetchall()
    return [{**r, "rank": float(r["rank"]), "qualified": f"{r['server']}/{r['name']}"} for r in rows]


async def get_manifest(db: Database, server: str, name: str) -> dict[str, Any] | None:
    async with db.connection() as conn:
        return await (await conn.execute(Q["get_manifest"], {"server": server, "name": name})).fetchone()


async def server_tools(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every known server's cached tools (name, description, input schema, annotations, tags), by server name:
    what `find_tools` searches, listed whole."""
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["server_tools"])).fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["server"], []).append(dict(row))
    return out


async def manifests_for_gateway(db: Database) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return list(await (await conn.execute(Q["all_manifests"])).fetchall())


async def call_tool(db: Database, server: str, tool: str, args: dict[str, Any], *,
                    principal: Principal | None = None, sessions: RemoteSessions | None = None,
                    progress: Progress | None = None) -> Any:
    """Call a registered server's tool as `principal` (None: trusted code), on the server's session in
    `sessions` (None: a session for this call alone); its structured content (or text) is the result.
    The server's progress notifications go to `progress` (the gateway passes its own caller's on).

    Raises:
        NotFound: no such server or tool.  Forbidden: `principal` may not call it (see `may_call`).
        NonRetryableError: the tool answered with an error (retrying would not change it).
        Unavailable: the server could not be reached, or died during a call that is not safe to repeat
            (worth retrying).
    """
    manifest = await get_manifest(db, server, tool)
    if manifest is None:
        raise NotFound(f"no tool {tool!r} on MCP server {server!r}")
    check_access(principal, manifest)
    row = await _server(db, server)
    hints = manifest.get("annotations") or {}
    repeatable = bool(hints.get("readOnlyHint") or hints.get("idempotentHint"))
    # Inside a run, the call's step: its idempotency key (stable across retries and replays) goes with the
    # request, so a server can recognise a call it already made (a step retried after its server died).
    step = current_step_var.get()
    meta = {IDEMPOTENCY_META: step.idempotency_key} if step is not None else None
    try:
        result = await (sessions or RemoteSessions()).call(row, tool, args, repeatable=repeatable, meta=meta,
                                                           progress=progress)
    except LongtailError:
        raise
    except Exception as exc:
        raise Unavailable(f"{server}/{tool}: {exc}") from exc
    text = "\n".join(getattr(c, "text", "") for c in result.content or [])
    if result.is_error:
        raise NonRetryableError(f"{server}/{tool} returned an error: {text[:2000]}")
    if result.structured_content is not None:
        return result.structured_content
    try:
        return json.loads(text)
    except ValueError:
        return text

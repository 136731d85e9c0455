"""Render docs/mcp.md from the tool definitions: `python -m system_servers.docs > docs/mcp.md`.

The reference part is generated, never written by hand; tests/servers/test_docs.py checks the file
is current.
"""

import json
from typing import Any

from longtail_mcp.tools.prompts import PromptSpec
from longtail_mcp.tools.resources import ResourceSpec
from system_servers import SERVERS

INTRO = """# MCP servers

longtail-mcp is a family of MCP servers over one durable runtime. Each server runs alone over
stdio:

```
longtail-mcp stdio workflows            # acts as the local operator (`system`)
longtail-mcp stdio human-queue --as rita  # acts as account `rita` (her roles apply)
longtail-mcp config claude [--as ACCOUNT] [--database-url URL]   # a Claude Desktop mcpServers block
```

All servers together, behind one endpoint, in `longtail-mcp serve`: streamable HTTP at
`http://127.0.0.1:8420/mcp` and legacy SSE at `/sse` (+ `/messages/`), both protocol eras. Every
HTTP request needs `Authorization: Bearer ltk_...` (an API key from `longtail-mcp keys create`, or
the first admin key `serve` prints once): the key's account and its roles act, and a `read`-scope
key sees only read-only tools. A server process remembers a verified key for 5 s, so a revoked or
expired key (or a changed role) takes effect within 5 s. `longtail-mcp serve --dev` (loopback
only) accepts calls without a key, as the local operator. Tool names are unique across the family.

Stdio servers use `DATABASE_URL` when set, else the embedded Postgres of `$LONGTAIL_HOME`, shared
by every process of that home and started by the first that needs it (it stops by itself once idle:
README, "The embedded Postgres"). `gateway`, `workflows`, `human-queue` and `compiler` over stdio
also run a worker, so the runs their tools start complete without a `serve`.
[clients.md](clients.md) shows Claude Desktop, the MCP Inspector and the Python client.

**One definition per tool** (`longtail_mcp/tools/spec.py`, `ToolSpec`): a pydantic input and
output model, a description, annotations, tags and compile hints, and a thin handler over the
core services. The MCP tool (flat input schema with `additionalProperties: false`, output schema,
structured content), the manifest used by discovery, and the scope gate all come from it.

**Errors** come back as tool results with `isError: true` and a message starting with a code:
`[invalid_input]` (bad arguments: nothing was called), `[not_found]`, `[conflict]` (someone else
won: claimed, already resolved...), `[forbidden]` (RBAC or key scope), `[unauthenticated]`,
`[denied]` (a safety policy refused it; it can be approved), `[internal] internal error (ref …)`
(details are in the server log under that ref, never sent). The same error is also structured in
the result's `_meta["io.longtail/error"]` (`code`, `message`, `data` such as an approval's
`escalation_id`, `rule`); not in `structuredContent`, which clients validate against the tool's
output schema. Output schemas come from the typed records the services return (`Run`, `RunInfo`,
`Escalation`, ...), defined once.

**Scopes**: a principal whose key has `read` scope sees and may call only tools annotated
`readOnlyHint: true`; every other tool is a write tool (fail closed).

**Registered servers.** `register_mcp_server` (superadmins: a stdio server runs a command on the
host) connects to an external server (a stdio command, or an HTTP/SSE URL), caches its tools as
manifests (refresh by registering again), and makes them searchable with `find_tools` (Postgres
full-text over names, descriptions, argument names and tags, plus tag filters), callable from
workflows as durable steps (`await ctx.call_tool("server/tool", args)`, journal kind `tool`), and
visible through the HTTP gateway as `<server>__<tool>`. Only superadmins, and members of the roles
named in the registration's `access_roles`, may list and call a registered server's tools (read-scope
keys only with `read_scope: true`, and only its read-only tools); a stdio server starts with a
minimal environment plus the one registered for it, whose values are never shown again. Our own
servers' manifests are stored by `serve` on start, generated from the definitions.

Each process keeps **one session per registered server** (a stdio server: one child process), shared
by the gateway and by runs, and by concurrent calls. It closes after `LONGTAIL_REMOTE_IDLE_SECONDS`
(default 300) without calls, and when `serve` or `worker` stops (the child with it). If the server
dies, the next call starts it again; a call in flight when it died is sent again once only if the tool
is annotated `readOnlyHint` or `idempotentHint`, and otherwise fails with `[unavailable]` (the call may
or may not have run). Registering a server again with another command, URL or environment starts a
new session.

Inside a durable run, `ctx.call_tool("human-queue/escalate_and_wait", {...})` does not poll: the run
suspends durably (like `ctx.escalate`) until a person decides, with no 50 s bound, and returns the
tool's result shape `{escalation_id, status, resolution}`.

**Progress and cancellation.** A client that asks for progress (a `progressToken`) hears from the
tools that wait or work long — `wait_for_run`, `query`, `triage_escalation`, `design_pipeline`,
pipelines and workflow types published as tools, `escalate_and_wait`, `check_resolution`, `run_sql`
and the http-fetch tools — every 2 s: the seconds elapsed, the call's limit as total, and where it
stands. Cancelling a call (`notifications/cancelled`) stops its work: a statement is cancelled in
Postgres, a fetch hangs up, a wait stops waiting — but a run or escalation it waited for goes on
(`cancel_run`, `cancel_escalation`). [clients.md](clients.md#progress-and-cancellation) has the details.

**Safe system servers.** db-query, files and http-fetch refuse, by policy, what could harm the
host: SQL that writes (the database itself refuses it), paths outside `LONGTAIL_FILES_ROOT` or on
the deny list, internal network addresses. Such a refusal is `[denied]`; the same call with
`request_approval: true` opens an escalation to the `approver` role bound to that exact call, and
once approved, the call with `approval_id` goes through once. Inside a durable run,
`ctx.call_tool("files/write_file", ...)` asks and waits by itself. [security.md](security.md) has
the threat model and every guard.

**Resources and prompts.** Besides tools, the servers publish resources (a run with its journal,
an escalation, a pipeline's YAML, the database schema, files under the files root) and prompts
(work my queue, investigate a failed run, explain a denial); the gateway has them all. A resource
is read, and a prompt's data fetched, by the same core functions as the matching tool, as the
calling account: a run or escalation it may not see is `[not_found]`, a file the files server
refuses is `[denied]`. resources/read and prompts/get have no error result, so these errors are
JSON-RPC errors (`-32602` for the caller's to fix, `-32603` for the server's) whose message starts
with the code (`[not_found] no run with id 'x'`) and whose data is `{code, message, uri or prompt,
rule}`. Resource listings are bounded (the caller's 20 recent runs, open escalations, active
pipelines, top-level files); the templates reach the rest. [clients.md](clients.md#resources-and-prompts)
shows them in use.

Not yet built (see the open issues): the `query` and `triage_escalation` routers, and the compiler.

"""


def _type(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if "enum" in prop:
        return " \\| ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "$ref" in prop:  # a nested model: its fields are in the argument's description
        return "object"
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type(prop.get('items', {}))}"
    return str(kind)


def _limits(prop: dict[str, Any]) -> str:
    keys = ("minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    parts = [f"{k} {prop[k]}" for k in keys if k in prop]
    for option in prop.get("anyOf", []):
        parts += [f"{k} {option[k]}" for k in keys if k in option]
    if "default" in prop:
        parts.append(f"default {json.dumps(prop['default'])}")
    return ", ".join(parts)


def render() -> str:
    out = [INTRO]
    for name, module in SERVERS.items():
        out.append(f"## {name}\n")
        out.append(f"`longtail-mcp stdio {name}`. Tags: {', '.join(module.TAGS)}.\n")
        for spec in module.TOOLS:
            hints = [h for h, on in (("read-only", spec.read_only), ("destructive", spec.destructive),
                                     ("idempotent", spec.idempotent), ("open-world", spec.open_world)) if on]
            out.append(f"### `{spec.name}`\n")
            out.append(f"{spec.description}\n")
            out.append(f"Annotations: {', '.join(hints) or 'none (a write tool)'}.\n")
            schema = spec.input_schema()
            required = set(schema.get("required", []))
            props = schema.get("properties", {})
            if props:
                out.append("| argument | type | required | notes |\n|---|---|---|---|")
                for arg, prop in props.items():
                    notes = "; ".join(x for x in (prop.get("description", ""), _limits(prop)) if x)
                    out.append(f"| `{arg}` | {_type(prop)} | {'yes' if arg in required else 'no'} | {notes} |")
                out.append("")
            else:
                out.append("No arguments.\n")
            fields = ", ".join(f"`{k}`" for k in spec.output_schema().get("properties", {}))
            out.append(f"Returns (structured content): {fields}.\n")
        out += _resources(module.RESOURCES) + _prompts(module.PROMPTS)
    return "\n".join(out).rstrip() + "\n"


def _resources(resources: list[ResourceSpec]) -> list[str]:
    if not resources:
        return []
    rows = [f"| `{spec.uri}` | {spec.mime or 'by file'} | {spec.description} |" for spec in resources]
    return ["### Resources\n", "| URI | MIME type | what it gives |\n|---|---|---|", *rows, ""]


def _prompts(prompts: list[PromptSpec]) -> list[str]:
    out = []
    for spec in prompts:
        out.append(f"### Prompt `{spec.name}`\n")
        out.append(f"{spec.description}\n")
        out.append("| argument | required | notes |\n|---|---|---|")
        out += [f"| `{a.name}` | {'yes' if a.required else 'no'} | {a.description} |" for a in spec.arguments()]
        out.append("")
    return out


if __name__ == "__main__":
    print(render(), end="")

"""MCP servers benchmark: an echo tool through our framework vs a bare MCPServer echo server, same run.

    python bench/mcp.py [--n 2000] [--concurrency 10] [--rounds 2] [--mode auto|legacy] [--decompose] [--proxy]
                        [--json]

Each server runs in its own subprocess, served by uvicorn with the config `longtail-mcp serve`
uses, on a 127.0.0.1 socket the bench binds and hands over. The sides:
  ours      `ToolSpec("echo", input {text: str}, output {text: str}, read_only=True)` built with
            `mcp_glue.server.build_server`, mounted the way `web.app.build_app` mounts the gateway
            (`mcp_glue.http.mcp_routes(server, client, dev=False, host="127.0.0.1")` in a Starlette
            app that runs its lifespan). It sits behind the real bearer-key auth: every HTTP request
            carries a real API key made by `identity.create_key` (read scope), checked against
            Postgres. The cost of that check is included.
  bare      `MCPServer("bare")` with `@mcp.tool() def echo(text: str) -> str`, served by its own
            `streamable_http_app()`.
With --proxy, the gateway's proxy to a registered (external) server is measured against calls made
directly to that same server, in the same run:
  bare          (as above) the direct baseline for HTTP
  proxy-http    C sessions -> `system_servers.gateway` (HTTP, full-scope key, sessions to registered
                servers running) -> `bare`, registered as an http server: tool `ext-http__echo`
  direct-stdio  the bare echo server over stdio, started by this process: one session, shared by C workers
  proxy-stdio   C sessions -> the same gateway -> that stdio server registered as `ext-stdio` (the
                gateway starts it and keeps it): tool `ext-stdio__echo`
  proxy-once    the gateway without running sessions (`Client.open()` only): each call starts the
                stdio server for itself, as every call did before the sessions. `--once-n` calls (default 20).
  Server CPU counts the whole process tree of the side (the gateway with its stdio children, and for
  proxy-http the bare server too).
With --decompose, two more sides run, to locate the difference:
  ours-dev  the `ours` server with `dev=True` and no key: no database work per request. So
            ours-dev vs bare is the framework alone, and ours vs ours-dev is the key check.
  ours-gw   `ours` with echo next to every tool of the family (`system_servers.SERVERS`) and the
            registered servers' tools (`RegisteredTools`), built the way `system_servers.gateway`
            builds the gateway. It makes `--gw-n` calls per round (default 300), not N.

The client is this process and runs the same code for every side. C concurrent workers each hold
one MCP session over streamable HTTP: `mcp.Client(streamable_http_client(url,
http_client=httpx2.AsyncClient(...)), mode=...)`. The default mode `auto` negotiates the stateless
2026-07-28 era; `legacy` uses the 2025-11-25 handshake. Each round does a warm-up of 10 calls per
session, then N `call_tool("echo", {"text": "hi"})` calls shared by the workers. It measures
calls/s (N / wall time), p50/p99 latency per call, and from /proc the CPU used per call by the
client, the server process and Postgres, plus the CPU other processes used (flagged above 0.2
cores). Sides alternate: ours, bare, ours, bare. The report gives each side's median and the
ratio ours/bare. The goal is >= 0.9x.

Postgres comes from DATABASE_URL when set. Otherwise a temp embedded server (fsync on) runs on
127.0.0.1 and is removed at the end. Each run gets a fresh database. Progress goes to stderr; the
summary (or --json) goes to stdout.
"""

import os
import sys
from pathlib import Path

# This file is named mcp.py: with its directory first on sys.path, `import mcp` would import it
# instead of the SDK. Move the directory to the end (it is still needed for bench/runtime.py).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != HERE] + [str(HERE)]

import argparse  # noqa: E402
import logging  # noqa: E402
import select  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import AsyncIterator, Iterator  # noqa: E402
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager  # noqa: E402
from typing import Any  # noqa: E402

import anyio  # noqa: E402
from pydantic import BaseModel  # noqa: E402

SIDES = {
    "ours": "longtail_mcp build_server + mcp_routes, bearer API key checked per request",
    "ours-dev": "the same with dev=True: no key, no database work per request",
    "ours-gw": "ours with echo among the family's and registered tools, as in the gateway",
    "bare": "bare MCPServer, streamable_http_app()",
    "proxy-http": "the gateway, calling bare (registered as an http server) on its session",
    "direct-stdio": "bare MCPServer over stdio, one session shared by the workers",
    "proxy-stdio": "the gateway, calling that stdio server (registered) on its session",
    "proxy-once": "the gateway with no sessions running: a stdio server started per call (before)",
}
SERVED = ("ours", "ours-dev", "ours-gw", "bare", "gw", "gw-once", "bare-stdio")  # what --serve runs
PROXIED = {"proxy-http": "ext-http__echo", "proxy-stdio": "ext-stdio__echo", "proxy-once": "ext-stdio__echo"}
TEXT = "hi"
WARMUP_PER_SESSION = 10


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- the servers (run in subprocesses: `python bench/mcp.py --serve SIDE --fd N ...`) ---------------


class EchoIn(BaseModel):
    text: str


class EchoOut(BaseModel):
    text: str


def echo_spec() -> Any:
    from longtail_mcp.tools.spec import ToolCall, ToolSpec

    async def echo(call: ToolCall, args: EchoIn) -> EchoOut:
        return EchoOut(text=args.text)

    return ToolSpec("echo", "Return the text it is given.", EchoIn, EchoOut, echo, read_only=True)


def ours_app(client: Any, *, dev: bool, family: bool) -> Any:
    """Our echo server, mounted the way `build_app(app, mcp=True)` mounts the gateway (Host check included).

    With `family`, echo sits next to every tool of the family and the registered servers' tools
    (none are registered here, but the listing is still read from Postgres), as in
    `system_servers.gateway`.
    """
    from longtail_mcp.mcp_glue.http import request_principal
    from longtail_mcp.mcp_glue.server import build_server

    if family:  # as system_servers.gateway builds it, with echo added
        from system_servers import SERVERS, RegisteredTools

        specs = [echo_spec(), *(spec for module in SERVERS.values() for spec in module.TOOLS)]
        server = build_server("longtail", specs, client, request_principal, proxy=RegisteredTools(client))
    else:
        server = build_server("bench", [echo_spec()], client, request_principal)
    return mounted(server, client, dev=dev)


def gateway_app(client: Any) -> Any:
    """`system_servers.gateway` itself (registered servers' tools as `<server>__<tool>`), mounted as `serve` does."""
    from longtail_mcp.mcp_glue.http import request_principal
    from system_servers import gateway

    return mounted(gateway(client, request_principal), client, dev=False)


def mounted(server: Any, client: Any, *, dev: bool) -> Any:
    from starlette.applications import Starlette

    from longtail_mcp.mcp_glue.http import HostGuard, mcp_routes

    routes, mcp_lifespan = mcp_routes(server, client, dev=dev, host="127.0.0.1")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with mcp_lifespan():
            yield

    return HostGuard(Starlette(routes=routes, lifespan=lifespan), "127.0.0.1")  # as build_app wraps it


def bare_server() -> Any:
    from mcp.server.mcpserver import MCPServer

    mcp = MCPServer("bare")

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text it is given."""
        return text

    return mcp


def bare_app() -> Any:
    return bare_server().streamable_http_app()


async def serve(side: str, fd: int) -> None:
    import uvicorn

    dsn, schema = os.environ.get("LT_BENCH_DSN"), os.environ.get("LT_BENCH_SCHEMA")
    sock = socket.socket(fileno=fd)
    client = None
    if side == "bare":
        app = bare_app()
    else:
        from longtail_mcp import Client

        client = Client(dsn, schema_name=schema)
        await client.open(apply_migrations=False)
        if side in ("gw", "gw-once"):
            app = gateway_app(client)
        else:
            app = ours_app(client, dev=side == "ours-dev", family=side == "ours-gw")
    try:
        # The config `longtail-mcp serve` uses; uvicorn stops gracefully on SIGTERM.
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))

        async def serve_http() -> None:
            await server.serve([sock])
            tg.cancel_scope.cancel()  # stops the sessions too

        async with anyio.create_task_group() as tg:
            if side == "gw" and client is not None:  # as `serve` does; gw-once leaves them off (before)
                await tg.start(client.remote_sessions.run)
            tg.start_soon(serve_http)
            with anyio.fail_after(30):
                while not server.started:  # noqa: ASYNC110  # uvicorn offers a flag, not an event
                    await anyio.sleep(0.01)
            print("ready", flush=True)
    finally:
        if client is not None:
            await client.close()


# -- process bookkeeping (bench side) -------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds used by `pid`, its reaped children and its live descendants (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return own + sum(tree_cpu(child) for child in children(pid))


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Side:
    """A server subprocess on a socket of ours (or, for direct-stdio, a server we reach over stdio),
    the tool the bench calls there, and the processes whose CPU counts as the server's."""

    def __init__(self, name: str, proc: subprocess.Popen[str] | None, url: str, tool: str = "echo",
                 extra: list[int] | None = None) -> None:
        self.name, self.proc, self.url, self.tool = name, proc, url, tool
        self.extra = extra or []

    def pids(self) -> list[int]:
        return ([self.proc.pid] if self.proc is not None else []) + self.extra


@contextmanager
def spawn(name: str, dsn: str | None, schema: str | None) -> Iterator[Side]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    port = sock.getsockname()[1]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", name, "--fd", str(sock.fileno())]
    env = dict(os.environ)
    if dsn is not None:  # by environment, not argv: a DSN may hold a password
        env.update(LT_BENCH_DSN=dsn, LT_BENCH_SCHEMA=schema or "longtail")
    proc = subprocess.Popen(cmd, pass_fds=[sock.fileno()], stdout=subprocess.PIPE, text=True, env=env)
    sock.close()  # the child has its own copy
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            raise RuntimeError(f"server {name} did not start (exit code {proc.poll()})")
        log(f"server {name}: pid {proc.pid}, http://127.0.0.1:{port}/mcp")
        yield Side(name, proc, f"http://127.0.0.1:{port}/mcp")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the client ------------------------------------------------------------------------------------


async def open_sessions(stack: AsyncExitStack, url: str, key: str | None, c: int,
                        mode: str) -> tuple[list[Any], list[float]]:
    import httpx2
    from mcp import Client as McpClient
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    sessions, opened = [], []
    for _ in range(c):
        t = time.perf_counter()
        # The transport leaves a given HTTP client open: the stack closes it, after the session.
        http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=60))
        sessions.append(await stack.enter_async_context(
            McpClient(streamable_http_client(url, http_client=http), mode=mode)))
        opened.append(time.perf_counter() - t)
    return sessions, opened


def stdio_command() -> list[str]:
    """The bare echo server over stdio (what `ext-stdio` is registered with, and what direct-stdio starts)."""
    return [sys.executable, str(Path(__file__).resolve()), "--serve", "bare-stdio"]


async def open_stdio(stack: AsyncExitStack, c: int, mode: str) -> tuple[list[Any], list[float], list[int]]:
    """One stdio session to the bare echo server, shared by c workers; and the server's pid."""
    from mcp import Client as McpClient
    from mcp import StdioServerParameters

    before = set(children(os.getpid()))
    t = time.perf_counter()
    command = stdio_command()
    session = await stack.enter_async_context(McpClient(StdioServerParameters(command=command[0], args=command[1:]),
                                                        mode=mode))
    opened = time.perf_counter() - t
    return [session] * c, [opened], sorted(set(children(os.getpid())) - before)


async def call_many(sessions: list[Any], n: int, tool: str = "echo") -> list[float]:
    """n echo calls shared by one worker per session; the latency of each."""
    latencies: list[float] = []
    remaining = n

    async def worker(session: Any) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t = time.perf_counter()
            result = await session.call_tool(tool, {"text": TEXT})
            latencies.append(time.perf_counter() - t)
            if result.is_error or TEXT not in result.content[0].text:
                raise RuntimeError(f"unexpected echo result: {result!r}")

    async with anyio.create_task_group() as tg:
        for session in sessions:
            tg.start_soon(worker, session)
    return latencies


async def measure(side: Side, key: str | None, n: int, args: argparse.Namespace, pg_pid: int | None,
                  others: list[int]) -> dict[str, Any]:
    from runtime import machine_busy_seconds, pct

    def cpu() -> dict[str, float | None]:
        pg = None
        if pg_pid is not None:
            from runtime import cpu_seconds

            pg = cpu_seconds(pg_pid)[1]
        return {"client": time.process_time(), "server": sum(tree_cpu(p) for p in side.pids()), "postgres": pg,
                "idle_servers": sum(tree_cpu(p) for p in others), "all": machine_busy_seconds()}

    async with AsyncExitStack() as stack:
        if side.name == "direct-stdio":
            sessions, opened, side.extra = await open_stdio(stack, args.concurrency, args.mode)
        else:
            sessions, opened = await open_sessions(stack, side.url, key, args.concurrency, args.mode)
        protocol = sessions[0].protocol_version
        warmup = 2 if side.name == "proxy-once" else WARMUP_PER_SESSION * len(sessions)
        await call_many(sessions, warmup, side.tool)
        c0 = cpu()
        t0 = time.perf_counter()
        latencies = await call_many(sessions, n, side.tool)
        wall = time.perf_counter() - t0
        c1 = cpu()
    used = {k: None if c0[k] is None or c1[k] is None else c1[k] - c0[k] for k in c0}  # type: ignore[operator]
    out: dict[str, Any] = {
        "side": side.name, "protocol": protocol, "calls": len(latencies), "seconds": round(wall, 3),
        "calls_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(pct(latencies, 50) * 1000, 2), "p99_ms": round(pct(latencies, 99) * 1000, 2),  # type: ignore[operator]
        "session_open_p50_ms": round(pct(opened, 50) * 1000, 1),  # type: ignore[operator]
    }
    for who in ("client", "server", "postgres"):
        if used[who] is not None:
            out[f"{who}_cpu_us_per_call"] = round(used[who] / n * 1e6, 1)  # type: ignore[operator]
            out[f"{who}_cores"] = round(used[who] / wall, 2)  # type: ignore[operator]
    known = [used[k] for k in ("client", "server", "postgres", "idle_servers")]
    if used["all"] is not None and all(v is not None for v in known):
        out["other_cores"] = round(max(0.0, used["all"] - sum(known)) / wall, 2)  # type: ignore[arg-type, operator]
    return out


async def create_key(dsn: str, schema: str) -> str:
    """A real API key for a plain account (migrating the fresh database first)."""
    from longtail_mcp import Client
    from longtail_mcp.humans import identity
    from longtail_mcp.humans.identity import SYSTEM

    async with Client(dsn, schema_name=schema) as client:
        await identity.create_account(client.db, SYSTEM, "bench", kind="bot")
        made = await identity.create_key(client.db, SYSTEM, "bench", name="bench/mcp.py", scope="read")
    return str(made["key"])


# -- report ----------------------------------------------------------------------------------------


def side_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> Any:
        values = [r[key] for r in rounds if r.get(key) is not None]
        return round(statistics.median(values), 2) if values else None

    keys = ["calls_per_s", "p50_ms", "p99_ms", "session_open_p50_ms", "client_cpu_us_per_call",
            "server_cpu_us_per_call", "postgres_cpu_us_per_call", "client_cores", "server_cores", "postgres_cores"]
    out = {k: med(k) for k in keys}
    out["cpu_us_per_call"] = round(sum(out[k] or 0 for k in keys[4:7]), 1)  # client + server + Postgres
    out["max_other_cores"] = max((r.get("other_cores") or 0) for r in rounds)
    return out


NOISY = 0.2  # cores used by other processes above which a round is flagged


def summary(r: dict[str, Any]) -> str:
    from runtime import fmt as f

    lines = [
        "",
        "=== longtail_mcp MCP servers benchmark: echo tool ===",
        f"machine        nproc {r['nproc']}, {r['memory']}, Python {r['python']}, {r['platform']}",
        f"code           longtail_mcp at {r['code']}; mcp {r['mcp_version']}, uvicorn {r['uvicorn_version']}",
        f"postgres       {r['postgres']} ({r['server']}); fsync={r['fsync']}, "
        f"synchronous_commit={r['synchronous_commit']}",
        f"run            N={r['n']} calls/round (ours-gw: {r['gw_n']}, proxy-once: {r['once_n']}), "
        f"concurrency {r['concurrency']} "
        f"(one session each), client mode {r['mode']!r} -> protocol {r['protocol']}",
        f"               {r['rounds_per_side']} rounds per side, in the order {r['order']}",
        "layout         one subprocess per server (uvicorn h11 + asyncio, log_level=warning), client in the",
        "               bench process, all on the same cores; 'ours' checks a real API key on every HTTP request",
        "               (authenticate: SELECT key, UPDATE last_used_at, SELECT account = 3 Postgres round trips)",
        "",
        f"{'round':<6}{'side':<14}{'calls/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'open ms':>9}"
        f"{'CPU us/call: client':>21}{'server':>11}{'pg':>7}{'cores: cl/srv/pg/other':>25}",
    ]
    for i, x in enumerate(r["rounds"], 1):
        cores = "/".join(f(x.get(k)) for k in ("client_cores", "server_cores", "postgres_cores", "other_cores"))
        noisy = " !" if (x.get("other_cores") or 0) > NOISY else ""
        lines.append(
            f"{i:<6}{x['side']:<14}{f(x['calls_per_s']):>9}{f(x['p50_ms']):>9}{f(x['p99_ms']):>9}"
            f"{f(x['session_open_p50_ms']):>9}{f(x.get('client_cpu_us_per_call')):>21}"
            f"{f(x.get('server_cpu_us_per_call')):>11}{f(x.get('postgres_cpu_us_per_call')):>7}{cores:>25}{noisy}")
    lines.append("")
    for name, s in r["sides"].items():
        lines.append(f"median {name:<13}{f(s['calls_per_s'])} calls/s, p50 {f(s['p50_ms'])} ms, "
                     f"p99 {f(s['p99_ms'])} ms; CPU/call: server {f(s['server_cpu_us_per_call'])} us, "
                     f"all {f(s['cpu_us_per_call'])} us")
        lines.append(f"               [{SIDES[name]}]")
    goal = "MET" if r["ratio_calls_per_s"] >= 0.9 else "NOT MET"
    lines += [
        "",
        f"ours / bare     {r['ratio_calls_per_s']:.3f}x calls/s (goal >= 0.9x: {goal}); "
        f"p50 {r['ratio_p50']:.2f}x bare's; CPU per call {r['ratio_cpu']:.2f}x bare's",
    ]
    for name in ("ours-dev", "ours-gw"):
        if f"ratio_{name}" in r:
            lines.append(f"{name + ' / bare':<16}{r[f'ratio_{name}']:.3f}x calls/s   [{SIDES[name]}]")
    for name, direct in (("proxy-http", "bare"), ("proxy-stdio", "direct-stdio"), ("proxy-once", "direct-stdio")):
        if f"ratio_{name}" in r:
            lines.append(f"{name + ' / ' + direct:<27}{r[f'ratio_{name}']:.3f}x calls/s   [{SIDES[name]}]")
    worst = max(s["max_other_cores"] for s in r["sides"].values())
    if worst > NOISY:
        lines.append(f"!! other processes used up to {worst} cores in a round (marked !): those figures are not clean")
    lines.append("")
    return "\n".join(lines)


async def register_external(dsn: str, schema: str, http_url: str) -> str:
    """Register `bare` (http) and the bare stdio server as `ext-http` and `ext-stdio`, callable by the members
    of role bench-callers; return a full-scope key of `bench`, made a member."""
    from longtail_mcp import Client
    from longtail_mcp.humans import identity
    from longtail_mcp.humans.identity import SYSTEM
    from longtail_mcp.tools import registry

    async with Client(dsn, schema_name=schema) as client:
        await identity.create_role(client.db, SYSTEM, "bench-callers")
        await identity.set_membership(client.db, SYSTEM, "bench-callers", "bench")
        await registry.register_server(client.db, SYSTEM, "ext-http", url=http_url, access_roles=["bench-callers"])
        await registry.register_server(client.db, SYSTEM, "ext-stdio", command=stdio_command(),
                                       access_roles=["bench-callers"])
        made = await identity.create_key(client.db, SYSTEM, "bench", name="bench/mcp.py proxy", scope="full")
    return str(made["key"])


async def main_async(admin_dsn: str | None, where: str, args: argparse.Namespace) -> dict[str, Any]:
    from runtime import fresh_database, server_facts

    with fresh_database(admin_dsn) as (dsn, schema):  # type: ignore[arg-type]
        facts = server_facts(dsn)
        key = await create_key(dsn, schema)
        names = ["ours", "bare"] + (["ours-dev", "ours-gw"] if args.decompose else [])
        with ExitStack() as stack:
            sides = {name: stack.enter_context(spawn(name, None if name == "bare" else dsn, schema)) for name in names}
            keys = {name: None if name == "ours-dev" else key for name in names}
            if args.proxy:
                proxy_key = await register_external(dsn, schema, sides["bare"].url)
                gw = stack.enter_context(spawn("gw", dsn, schema))
                once = stack.enter_context(spawn("gw-once", dsn, schema))
                sides["proxy-http"] = Side("proxy-http", gw.proc, gw.url, PROXIED["proxy-http"],
                                           extra=[sides["bare"].proc.pid])  # type: ignore[union-attr]
                sides["direct-stdio"] = Side("direct-stdio", None, "")
                sides["proxy-stdio"] = Side("proxy-stdio", gw.proc, gw.url, PROXIED["proxy-stdio"])
                sides["proxy-once"] = Side("proxy-once", once.proc, once.url, PROXIED["proxy-once"])
                names += ["proxy-http", "direct-stdio", "proxy-stdio", "proxy-once"]
                keys.update(dict.fromkeys(PROXIED, proxy_key) | {"direct-stdio": None})
            rounds: list[dict[str, Any]] = []
            for i in range(args.rounds):
                for name in names:
                    side = sides[name]
                    mine = set(side.pids())
                    others = sorted({p for s in sides.values() for p in s.pids()} - mine)
                    n = {"ours-gw": args.gw_n, "proxy-once": args.once_n}.get(name, args.n)
                    log(f"round {i + 1}/{args.rounds}: {name}, {n} calls, concurrency {args.concurrency}")
                    with anyio.fail_after(args.timeout):
                        x = await measure(side, keys[name], n, args, args.pg_pid, others)
                    log(f"  {x['calls_per_s']:,.0f} calls/s, p50 {x['p50_ms']} ms, p99 {x['p99_ms']} ms")
                    rounds.append(x)
    per_side = {name: side_summary([x for x in rounds if x["side"] == name]) for name in names}
    out: dict[str, Any] = {
        **facts, "server": where, "n": args.n, "gw_n": args.gw_n, "once_n": args.once_n,
        "concurrency": args.concurrency,
        "mode": args.mode, "protocol": rounds[0]["protocol"], "rounds_per_side": args.rounds,
        "order": ", ".join(x["side"] for x in rounds), "rounds": rounds, "sides": per_side,
        "ratio_calls_per_s": round(per_side["ours"]["calls_per_s"] / per_side["bare"]["calls_per_s"], 3),
        "ratio_p50": round(per_side["ours"]["p50_ms"] / per_side["bare"]["p50_ms"], 3),
        "ratio_cpu": round(per_side["ours"]["cpu_us_per_call"] / per_side["bare"]["cpu_us_per_call"], 3),
    }
    for name in ("ours-dev", "ours-gw"):
        if name in per_side:
            out[f"ratio_{name}"] = round(per_side[name]["calls_per_s"] / per_side["bare"]["calls_per_s"], 3)
    if args.proxy:  # each proxied side against direct calls to the same server
        for name, direct in (("proxy-http", "bare"), ("proxy-stdio", "direct-stdio"), ("proxy-once", "direct-stdio")):
            out[f"ratio_{name}"] = round(per_side[name]["calls_per_s"] / per_side[direct]["calls_per_s"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="measured calls per round (default 2000)")
    parser.add_argument("--concurrency", type=int, default=10, help="concurrent sessions (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per side, alternating (default 2)")
    parser.add_argument("--mode", default="auto",
                        help="mcp.Client mode: auto (2026-07-28 stateless when offered, the default) or legacy")
    parser.add_argument("--decompose", action="store_true",
                        help="also run ours-dev (dev mode: no key) and ours-gw (echo among the family's tools)")
    parser.add_argument("--gw-n", type=int, default=300, help="measured calls per round for ours-gw (default 300)")
    parser.add_argument("--proxy", action="store_true",
                        help="also measure the gateway's proxy to a registered server (http and stdio) against "
                             "direct calls to it, and the per-call connection it replaced (proxy-once)")
    parser.add_argument("--once-n", type=int, default=20, help="measured calls per round for proxy-once (default 20)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on a round after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the summary")
    parser.add_argument("--serve", choices=SERVED, help=argparse.SUPPRESS)
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    if args.serve == "bare-stdio":
        bare_server().run()  # stdio
        return
    if args.serve:
        anyio.run(serve, args.serve, args.fd)
        return

    from importlib.metadata import version

    from runtime import machine, report, run_on_server

    result = run_on_server(main_async, args)  # SIGTERM unwinds: servers stopped, temp Postgres removed
    result = {**machine(), "mcp_version": version("mcp"), "uvicorn_version": version("uvicorn"), **result}
    report(result, args.json, summary)


if __name__ == "__main__":
    main()

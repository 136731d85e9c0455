"""The event feed: one LISTEN connection per process for every waiter and SSE client, through a Postgres restart."""

import json
import logging
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
import uvicorn

from longtail_mcp import Client, Event, LongTail, NonRetryableError, Unavailable, WorkflowFailed
from longtail_mcp.db.embedded import EmbeddedPostgres, postgres_user
from longtail_mcp.events import emit
from longtail_mcp.events.feed import QUEUE_LIMIT, feed_of
from longtail_mcp.web.app import build_app
from tests.conftest import free_port, running, scratch_database, traversable_tmpdir
from tests.runtime.helpers import until as poll
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def own_pg() -> Iterator[EmbeddedPostgres]:
    """A server of this module's own (the session's is shared, and one test here restarts it), with
    pg_stat_statements loaded so queries can be counted where they run."""
    root = traversable_tmpdir("lt-feed-pg-")
    server = EmbeddedPostgres(root / "pgdata", port=free_port(), password_file=root / "pw", run_as=postgres_user(),
                              fsync=False, database="postgres")
    server.start()
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        server.stop()
        server.start()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_dsn(own_pg: EmbeddedPostgres) -> Iterator[str]:
    with scratch_database(own_pg.dsn("postgres"), "feed") as url:
        yield url


def dbname(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])


async def backends(admin_dsn: str, database: str) -> dict[str, int]:
    """Connections to `database` by application_name, as the server counts them."""
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        rows = await (await conn.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s GROUP BY 1", [database],
        )).fetchall()
    return dict(rows)


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    """Bounded polling, for conditions another process decides (the server, uvicorn, the feed's thread)."""
    with anyio.fail_after(seconds):
        while not await check():  # noqa: ASYNC110
            await anyio.sleep(0.05)


@asynccontextmanager
async def http_events(client: Client) -> AsyncIterator[httpx2.AsyncClient]:
    """uvicorn serving build_app(client, dev=True) on 127.0.0.1, and an HTTP client for it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(client, dev=True), log_level="warning", lifespan="off"))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                    await anyio.sleep(0.01)
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                          limits=httpx2.Limits(max_connections=None)) as http:
                yield http
            server.should_exit = True
    finally:
        sock.close()


async def follow(http: httpx2.AsyncClient, params: dict[str, str], ready: list[int], got: list[dict[str, Any]],
                 done: Callable[[list[dict[str, Any]]], bool]) -> None:
    """One SSE client: note when its subscription is live, collect events until `done(got)`."""
    async with http.stream("GET", "/events", params=params) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line == "event: ready":
                ready.append(1)
            elif line.startswith("data:") and '"type"' in line:
                got.append(json.loads(line[5:]))
                if done(got):
                    return


def completed(wid: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda got: got[-1]["type"] == "run.completed" and got[-1]["workflow_id"] == wid


async def signal_all(app: Client, runs: list[str]) -> None:
    async def one(wid: str) -> None:
        while True:
            try:
                return await app.signal(wid, "go")
            except Unavailable:  # a pooled connection from before a restart fails once
                await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        for wid in runs:
            tg.start_soon(one, wid)


def gate_workflow(app: LongTail) -> None:
    @app.workflow()
    async def gate(ctx, n):
        await ctx.wait_for_signal("go")
        return n


async def test_a_thousand_waiters_and_two_hundred_sse_clients_share_one_listen_connection(
    app: LongTail, dsn: str, pg_admin_dsn: str
) -> None:
    gate_workflow(app)
    runs = [f"load-{i}" for i in range(1000)]
    results: dict[str, Any] = {}
    ready: list[int] = []
    seen: list[list[dict[str, Any]]] = [[] for _ in range(200)]

    async def wait(n: int, wid: str) -> None:
        results[wid] = await app.handle(wid).result(timeout=50)

    with anyio.fail_after(50):
        async with running(app), http_events(app) as http:
            async with anyio.create_task_group() as tg:
                for i, wid in enumerate(runs):
                    tg.start_soon(partial(app.start, "gate", i, workflow_id=wid))
            feed = feed_of(app.db)
            async with anyio.create_task_group() as tg:
                for i, wid in enumerate(runs):
                    tg.start_soon(wait, i, wid)
                for i in range(200):
                    tg.start_soon(follow, http, {"workflow_id": runs[i], "type": "run.*"}, ready, seen[i],
                                  completed(runs[i]))

                async def all_waiting() -> bool:
                    return feed.subscribers >= 1200 and len(ready) == 200

                await until(all_waiting)
                held = await backends(pg_admin_dsn, dbname(dsn))
                await signal_all(app, runs)
            errors = app.db.pool.get_stats().get("connections_errors", 0)

    assert results == {wid: i for i, wid in enumerate(runs)}
    for i, got in enumerate(seen):
        assert {e["workflow_id"] for e in got} == {runs[i]} and got[-1]["type"] == "run.completed"
    # 1,200 subscribers: one LISTEN connection, next to the pool and the worker's wake listener.
    assert held.get("longtail-events") == 1
    assert sum(held.values()) <= app.settings.pool_size + 2, held
    assert errors == 0


async def test_waiters_and_sse_clients_carry_on_through_a_postgres_restart(
    own_pg: EmbeddedPostgres, own_dsn: str
) -> None:
    app = LongTail(own_dsn, poll_seconds=0.2, lease_seconds=5)
    gate_workflow(app)
    runs = [f"restart-{i}" for i in range(50)]
    results: dict[str, Any] = {}
    ready: list[int] = []
    followers: list[list[dict[str, Any]]] = [[] for _ in range(20)]
    watchers: list[list[dict[str, Any]]] = [[] for _ in range(5)]

    async def wait(n: int, wid: str) -> None:
        results[wid] = await app.handle(wid).result(timeout=40)

    def all_completed(got: list[dict[str, Any]]) -> bool:
        return len({e["workflow_id"] for e in got}) == len(runs)

    async def listening_again() -> bool:
        async with await psycopg.AsyncConnection.connect(own_pg.dsn("postgres"), autocommit=True) as conn:
            row = await (await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'longtail-events'"
                " AND state = 'idle' AND query LIKE 'LISTEN%%'", [dbname(own_dsn)],
            )).fetchone()
        return row is not None and row[0] == 1

    with anyio.fail_after(50):
        async with running(app), http_events(app) as http:
            for i, wid in enumerate(runs):
                await app.start("gate", i, workflow_id=wid)
            feed = feed_of(app.db)
            async with anyio.create_task_group() as tg:
                for i, wid in enumerate(runs):
                    tg.start_soon(wait, i, wid)
                for i, got in enumerate(followers):
                    tg.start_soon(follow, http, {"workflow_id": runs[i], "type": "run.*"}, ready, got,
                                  completed(runs[i]))
                for got in watchers:
                    tg.start_soon(follow, http, {"type": "run.completed"}, ready, got, all_completed)

                async def all_waiting() -> bool:
                    return feed.subscribers >= len(runs) + 25 and len(ready) == 25

                await until(all_waiting)
                await anyio.to_thread.run_sync(own_pg.stop)
                await anyio.to_thread.run_sync(own_pg.start)
                await until(listening_again)  # notifications are not stored: signal once the feed hears again
                await signal_all(app, runs)

    assert results == {wid: i for i, wid in enumerate(runs)}
    for i, got in enumerate(followers):
        assert {e["workflow_id"] for e in got} == {runs[i]} and got[-1]["type"] == "run.completed"
    for got in watchers:
        assert sorted(e["workflow_id"] for e in got) == sorted(runs)


async def test_result_of_an_ended_run_is_one_query_and_no_connection(own_pg: EmbeddedPostgres, own_dsn: str) -> None:
    app = LongTail(own_dsn, poll_seconds=0.2, lease_seconds=5)

    @app.workflow()
    async def double(ctx, n):
        return n * 2

    @app.workflow()
    async def refuse(ctx):
        raise NonRetryableError("no")

    async with running(app):
        ok, bad = await app.start("double", 21), await app.start("refuse")
        await wait_status(ok, "completed")
        await wait_status(bad, "failed")

    admin = own_pg.dsn("postgres")
    async with Client(own_dsn) as client, await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        async def quiet() -> dict[str, int]:  # the worker's feed (closed with its app) stops within a poll
            found = await backends(admin, dbname(own_dsn))
            return found if "longtail-events" not in found else {}

        before = await poll(quiet, within=5)
        stats = client.db.pool.get_stats()
        await conn.execute("SELECT pg_stat_statements_reset()")
        assert await client.handle(ok.workflow_id).result(timeout=5) == 42
        with pytest.raises(WorkflowFailed):
            await client.handle(bad.workflow_id).result(timeout=5)
        row = await (await conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)", [dbname(own_dsn)],
        )).fetchone()
        after = await backends(admin, dbname(own_dsn))
        later = client.db.pool.get_stats()
        assert feed_of(client.db).subscribers == 0
    assert row is not None and row[0] == 2  # one statement per result(), executed by the server
    assert after == before and "longtail-events" not in after  # no connection opened, no feed started
    assert later["requests_num"] - stats.get("requests_num", 0) == 2
    assert later.get("connections_num", 0) == stats.get("connections_num", 0)


async def test_a_slow_subscriber_loses_its_oldest_events_and_is_told_of_the_gap(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    last = str(QUEUE_LIMIT + 49)
    async with Client(dsn) as client, client.events.subscribe(["file.*"]) as slow, \
            client.events.subscribe(["file.*"]) as fast:
        async with client.db.transaction() as conn:
            await emit(conn, client.db, [Event("file.written", id=str(i)) for i in range(QUEUE_LIMIT + 50)])
        with anyio.fail_after(20):
            async for event in fast:  # delivered to both in the same pass: once fast has the last, slow has too
                if event.id == last:
                    break
        assert await slow.next_or_gap() is None  # some were dropped: re-read the tables
        kept = [(await slow.next_or_gap()) for _ in range(QUEUE_LIMIT)]
    assert [e.id for e in kept if e is not None] == [str(i) for i in range(50, QUEUE_LIMIT + 50)]
    warnings = [r for r in caplog.records if "fell behind" in r.message and r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 2  # once per subscriber that overflowed (fast may have, in one big batch)

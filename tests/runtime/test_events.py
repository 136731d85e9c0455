"""Events: published in the changing transaction; in-process handlers and the SSE endpoint."""

import json
import socket

import anyio
import httpx2
import pytest
import uvicorn

from longtail_mcp import Client, Event, InvalidInput, LongTail
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.web.app import build_app
from tests.conftest import running

pytestmark = pytest.mark.anyio


async def test_in_process_handlers_receive_run_events(app: LongTail) -> None:
    got: list[Event] = []
    done = anyio.Event()

    @app.events.on("run.completed")
    async def on_completed(event: Event) -> None:
        got.append(event)
        done.set()

    @app.workflow()
    async def quick(ctx):
        return "ok"

    async with running(app):
        handle = await app.start("quick")
        with anyio.fail_after(10):
            await done.wait()
    assert got[0].workflow_id == handle.workflow_id and got[0].name == "quick" and got[0].status == "completed"


async def test_a_subscriber_sees_a_runs_events_in_order(app: LongTail) -> None:
    @app.workflow()
    async def three(ctx):
        for i in range(3):
            await ctx.run(str, i)
        return "done"

    async with running(app), app.events.subscribe(workflow_id="r1") as feed:
        await app.start("three", workflow_id="r1")
        seen = []
        with anyio.fail_after(10):
            async for event in feed:
                seen.append((event.type, event.seq))
                if event.type == "run.completed":
                    break
    assert seen == [("run.started", None), ("step.completed", 1), ("step.completed", 2), ("step.completed", 3),
                    ("run.completed", None)]


async def test_unknown_event_types_are_refused(app: LongTail) -> None:
    with pytest.raises(InvalidInput, match="unknown event type"):
        app.events.on("run.exploded", lambda e: None)


async def test_sse_endpoint_streams_a_runs_events_in_order(app: LongTail) -> None:
    @app.workflow()
    async def steps(ctx):
        await ctx.run(str, "a")
        await ctx.sleep(0.01)
        await ctx.run(str, "b")
        return "ok"

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    async with running(app):
        client = Client(app.settings.database_url)
        await client.open()
        server = uvicorn.Server(uvicorn.Config(build_app(client), log_level="warning", lifespan="off"))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, [sock])
                with anyio.fail_after(10):
                    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                        await anyio.sleep(0.01)
                events = []
                await ident.ensure_admin(client.db)
                key = (await ident.create_key(client.db, SYSTEM, "admin", scope="read"))["key"]  # read is enough
                async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10,
                                              headers={"Authorization": f"Bearer {key}"}) as http:
                    params = {"workflow_id": "sse-1", "type": "run.*,step.*"}
                    async with http.stream("GET", "/events", params=params) as resp:
                        assert resp.status_code == 200
                        assert resp.headers["content-type"].startswith("text/event-stream")
                        lines = resp.aiter_lines()
                        with anyio.fail_after(10):
                            async for line in lines:
                                if line == "event: ready":
                                    await app.start("steps", workflow_id="sse-1")
                                if line.startswith("data:") and '"type"' in line:
                                    event = json.loads(line[5:])
                                    events.append((event["type"], event.get("seq")))
                                    if event["type"] == "run.completed":
                                        break
                    bad = await http.get("/events", params={"type": "nope"})
                server.should_exit = True
        finally:
            await client.close()
            sock.close()
    assert events == [("run.started", None), ("step.completed", 1), ("step.completed", 2), ("step.completed", 3),
                      ("run.completed", None)]
    assert bad.status_code == 400 and "unknown event type" in bad.json()["error"]

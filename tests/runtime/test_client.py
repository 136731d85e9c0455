"""The embedded Client: drive runs from a host program with no workflow code and no server."""

import anyio
import pytest

from longtail_mcp import Client, LongTail, NotFound
from tests.conftest import running
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio


async def test_a_client_without_workflow_code_starts_signals_queries_and_exports(app: LongTail, dsn: str) -> None:
    @app.workflow()
    async def approval(ctx, request):
        await ctx.state.set("request", request)
        decision = await ctx.wait_for_signal("decision")
        return {"approved": decision["ok"], "amount": request["amount"]}

    async with running(app), Client(dsn) as client:
        assert not hasattr(client, "registry"), "a Client carries no workflow code"
        seen: list[str] = []
        async with client.events.subscribe(["run.*"], workflow_id="req-1") as feed:
            handle = await client.start("approval", {"amount": 120}, workflow_id="req-1")
            await wait_status(handle, "waiting")
            (found,) = await client.find_runs(state={"request": {"amount": 120}})
            assert found["id"] == "req-1"
            await client.signal("req-1", "decision", {"ok": True})
            with anyio.fail_after(10):
                async for event in feed:
                    seen.append(event.type)
                    if event.type == "run.completed":
                        break
        assert await handle.result(timeout=10) == {"approved": True, "amount": 120}
        history = await client.export("req-1")
        assert [s["kind"] for s in history["steps"]] == ["state", "signal"]
        assert history["signals"][0]["payload"] == {"ok": True}
        assert [r["id"] for r in await client.list_runs(name="approval")] == ["req-1"]
        with pytest.raises(NotFound):
            await client.get_run("req-2")
    assert seen[0] == "run.started" and seen[-1] == "run.completed" and "run.waiting" in seen

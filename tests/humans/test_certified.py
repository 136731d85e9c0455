"""Certified workflows: errors become escalations, a resolution re-runs with ctx.resolver, the task row
tracks it all; an expired escalation fails task and run; certification can come from a config row."""

import anyio
import pytest

from longtail_mcp import Forbidden, LongTail, WorkflowFailed
from longtail_mcp.humans import certified, inbox
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.humans.helpers import eventually, make_roles, person
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio


async def task_status(app: LongTail, workflow_id: str) -> str | None:
    task = await certified.get_task(app.db, workflow_id)
    return task["status"] if task else None


async def test_an_error_escalates_and_the_resolution_reruns_to_completion_tracking_the_task(app: LongTail) -> None:
    gate = anyio.Event()

    @app.workflow(certified=True, role="reviewer")
    async def invoice(ctx, n):
        await gate.wait()  # in-process only: lets the test see the first attempt in progress
        if ctx.resolver is None:
            raise ValueError(f"total of invoice {n} does not add up")
        return {"total": ctx.resolver["total"], "resolver": ctx.resolver}

    async with running(app):
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        handle = await app.start("invoice", 7, workflow_id="inv7")
        seen = [await eventually(lambda: task_status(app, "inv7"))]
        gate.set()
        await wait_status(handle, "waiting")
        seen.append(await task_status(app, "inv7"))
        task = await certified.get_task(app.db, "inv7")
        assert task["attempts"] == 1 and task["error"]["type"] == "ValueError"

        item = await esc.get_escalation(app.db, rita, task["escalation_id"])
        assert (item["type"], item["role"], item["workflow_id"]) == ("error", "reviewer", "inv7")
        assert "does not add up" in item["message"] and item["data"]["input"] == 7
        await esc.resolve(app.db, rita, item["id"], {"total": 42})
        assert await handle.result(timeout=10) == {"total": 42, "resolver": {"total": 42}}
        seen.append(await task_status(app, "inv7"))
        assert seen == ["in_progress", "needs_intervention", "completed"]
        assert (await certified.get_task(app.db, "inv7"))["attempts"] == 2


async def test_an_expired_escalation_fails_the_task_and_the_run(app: LongTail) -> None:
    @app.workflow(certified=True, role="reviewer")
    async def brittle(ctx):
        raise RuntimeError("always broken")

    async with running(app):
        await make_roles(app.db, "reviewer")
        await ident.set_chain(app.db, SYSTEM, "reviewer", 0.3)
        handle = await app.start("brittle", workflow_id="b1")
        with pytest.raises(WorkflowFailed) as failed:
            await handle.result(timeout=15)
        assert failed.value.error["type"] == "WaitTimeout"
        task = await certified.get_task(app.db, "b1")
        assert task["status"] == "failed" and task["error"]["type"] == "WaitTimeout"
        assert (await esc.get_escalation(app.db, SYSTEM, task["escalation_id"]))["status"] == "expired"


async def test_a_workflow_certified_by_a_config_row_escalates_instead_of_failing(app: LongTail) -> None:
    @app.workflow()
    async def plain(ctx, x):
        if ctx.resolver is None:
            raise KeyError("missing field")
        return {"x": x, "fix": ctx.resolver["fix"]}

    async with running(app) as worker:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "admin"})
        with pytest.raises(Forbidden):
            await certified.certify(app.db, rita, "plain", role="reviewer")
        await certified.certify(app.db, SYSTEM, "plain", role="reviewer")
        assert await certified.certified_types(app.db) == {"plain": "reviewer"}

        (interceptor,) = [i for i in worker.extensions.interceptors if isinstance(i, certified.CertifiedInterceptor)]

        async def picked_up() -> bool:
            return interceptor.configured.get("plain") == "reviewer"

        await eventually(picked_up, within=5)
        handle = await app.start("plain", 1, workflow_id="c1")
        await wait_status(handle, "waiting")
        assert await task_status(app, "c1") == "needs_intervention"
        (item,) = await inbox.available_work(app.db, rita)
        assert item["type"] == "error" and item["workflow_id"] == "c1"
        await esc.resolve(app.db, rita, item["id"], {"fix": "added"})
        assert await handle.result(timeout=10) == {"x": 1, "fix": "added"}
        assert await task_status(app, "c1") == "completed"


async def test_an_uncertified_workflow_error_fails_the_run_without_a_task(app: LongTail) -> None:
    @app.workflow()
    async def plain(ctx):
        raise KeyError("missing field")

    async with running(app):
        await make_roles(app.db, "reviewer")
        handle = await app.start("plain", workflow_id="u1")
        with pytest.raises(WorkflowFailed):
            await handle.result(timeout=10)
        assert await certified.get_task(app.db, "u1") is None
        assert await inbox.find_escalations(app.db, SYSTEM) == []


async def test_a_cancelled_escalation_fails_the_task_and_the_run(app: LongTail) -> None:
    @app.workflow(certified=True, role="reviewer")
    async def brittle(ctx):
        raise RuntimeError("always broken")

    async with running(app):
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        handle = await app.start("brittle", workflow_id="b2")
        await wait_status(handle, "waiting")
        task = await certified.get_task(app.db, "b2")
        await esc.cancel(app.db, rita, task["escalation_id"], reason="won't fix")
        with pytest.raises(WorkflowFailed) as failed:
            await handle.result(timeout=10)
        assert failed.value.error["type"] == "EscalationClosed"
        assert await task_status(app, "b2") == "failed"


async def test_a_rerun_that_fails_again_opens_a_new_escalation(app: LongTail) -> None:
    @app.workflow(certified=True, role="reviewer")
    async def picky(ctx):
        if (ctx.resolver or {}).get("fix") != "good":
            raise ValueError(f"bad fix {ctx.resolver}")
        return "done"

    async with running(app):
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        handle = await app.start("picky", workflow_id="k1")
        await wait_status(handle, "waiting")
        first = (await certified.get_task(app.db, "k1"))["escalation_id"]
        await esc.resolve(app.db, rita, first, {"fix": "bad"})

        async def second_escalation() -> str | None:
            task = await certified.get_task(app.db, "k1")
            return task["escalation_id"] if task["escalation_id"] != first else None

        second = await eventually(second_escalation)
        task = await certified.get_task(app.db, "k1")
        assert (task["status"], task["attempts"]) == ("needs_intervention", 2)
        item = await esc.get_escalation(app.db, rita, second)
        assert item["status"] == "pending" and item["data"]["attempt"] == 2 and "bad fix" in item["message"]
        await esc.resolve(app.db, rita, second, {"fix": "good"})
        assert await handle.result(timeout=10) == "done"
        task = await certified.get_task(app.db, "k1")
        assert (task["status"], task["attempts"]) == ("completed", 3)

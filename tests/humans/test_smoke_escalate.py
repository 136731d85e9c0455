"""A run waits for a person: the escalation row, the resolution, the wake-up; certified re-runs."""

import pytest

from longtail_mcp import Escalation, LongTail, WaitTimeout
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox
from longtail_mcp.humans.certified import get_task
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio


async def setup_reviewer(app: LongTail) -> ident.Principal:
    await ident.create_role(app.db, SYSTEM, "reviewer")
    await ident.create_account(app.db, SYSTEM, "rita")
    await ident.set_membership(app.db, SYSTEM, "reviewer", "rita")
    return await ident.get_principal(app.db, "rita")


async def test_a_run_waits_for_a_reviewer_and_gets_the_resolution(app: LongTail) -> None:
    @app.workflow()
    async def review(ctx, doc):
        decision = await ctx.escalate("reviewer", f"review {doc}", {"doc": doc})
        return {"approved": decision["approved"]}

    async with running(app):
        rita = await setup_reviewer(app)
        handle = await app.start("review", "d1")
        await wait_status(handle, "waiting")
        (item,) = await inbox.available_work(app.db, rita)
        assert item["workflow_id"] == handle.workflow_id and item["message"] == "review d1"
        await esc.claim(app.db, rita, item["id"])
        await esc.resolve(app.db, rita, item["id"], {"approved": True})
        assert await handle.result(timeout=10) == {"approved": True}


async def test_an_expired_escalation_raises_a_timeout_never_an_approval(app: LongTail) -> None:
    @app.workflow()
    async def gate(ctx):
        try:
            await ctx.escalate("reviewer", "approve?", timeout=0.5)
        except WaitTimeout:
            return "not approved"
        return "approved"

    async with running(app):
        await setup_reviewer(app)
        handle = await app.start("gate")
        assert await handle.result(timeout=15) == "not approved"


async def test_a_certified_workflow_error_escalates_and_the_resolution_reruns_it(app: LongTail) -> None:
    @app.workflow(certified=True, role="reviewer")
    async def fragile(ctx, n):
        if ctx.resolver is None:
            raise RuntimeError("cannot parse the invoice")
        return {"fixed_total": ctx.resolver["total"], "n": n}

    async with running(app):
        rita = await setup_reviewer(app)
        handle = await app.start("fragile", 7)
        await wait_status(handle, "waiting")
        task = await get_task(app.db, handle.workflow_id)
        assert task["status"] == "needs_intervention"
        (item,) = await inbox.available_work(app.db, rita)
        assert item["type"] == "error" and "cannot parse the invoice" in item["message"]
        await esc.resolve(app.db, rita, item["id"], {"total": 42})
        assert await handle.result(timeout=10) == {"fixed_total": 42, "n": 7}
        assert (await get_task(app.db, handle.workflow_id))["status"] == "completed"


async def test_a_certified_workflow_can_return_an_escalation(app: LongTail) -> None:
    @app.workflow(certified=True, role="reviewer")
    async def classify(ctx, text):
        if ctx.resolver is None:
            return Escalation(message="low confidence", data={"text": text})
        return {"label": ctx.resolver["label"]}

    async with running(app):
        rita = await setup_reviewer(app)
        handle = await app.start("classify", "hmm")
        await wait_status(handle, "waiting")
        (item,) = await inbox.available_work(app.db, rita)
        await esc.resolve(app.db, rita, item["id"], {"label": "spam"})
        assert await handle.result(timeout=10) == {"label": "spam"}


async def test_concurrent_claim_next_hands_each_claimer_a_different_escalation(app: LongTail) -> None:
    import anyio

    async with app:
        await ident.create_role(app.db, SYSTEM, "reviewer")
        people = []
        for i in range(10):
            await ident.create_account(app.db, SYSTEM, f"p{i}")
            await ident.set_membership(app.db, SYSTEM, "reviewer", f"p{i}")
            people.append(await ident.get_principal(app.db, f"p{i}"))
        for i in range(8):
            await esc.create_escalation(app.db, SYSTEM, role="reviewer", message=f"m{i}", priority=5 if i else 1)
        got: list[dict | None] = []

        async def take(who: ident.Principal) -> None:
            got.append(await esc.claim_next(app.db, who))

        async with anyio.create_task_group() as tg:
            for who in people:
                tg.start_soon(take, who)
    claimed = [g for g in got if g is not None]
    assert len(claimed) == 8 and len({g["id"] for g in claimed}) == 8, "no escalation claimed twice"
    assert got.count(None) == 2, "the two extra claimers found nothing left"
    assert any(g["message"] == "m0" and g["priority"] == 1 for g in claimed)


async def test_the_python_client_works_the_queue_as_a_principal(app: LongTail) -> None:
    from longtail_mcp import Client, Forbidden

    @app.workflow()
    async def ask(ctx):
        return await ctx.escalate("reviewer", "ok?")

    async with running(app), Client(app.settings.database_url) as client:
        await setup_reviewer(app)
        await ident.create_account(app.db, SYSTEM, "outsider")
        rita = client.humans(await client.principal("rita"))
        outsider = client.humans(await client.principal("outsider"))
        handle = await app.start("ask")
        await wait_status(handle, "waiting")
        assert await outsider.available() == []
        item = await rita.claim_next()
        assert item is not None and [m["id"] for m in await rita.mine()] == [item["id"]]
        with pytest.raises(Forbidden):
            await outsider.claim_next(role="reviewer")
        await rita.resolve(item["id"], {"ok": True})
        assert await handle.result(timeout=10) == {"ok": True}


async def test_the_starting_principal_flows_into_the_run_its_steps_and_its_escalations(app: LongTail) -> None:
    from longtail_mcp import current_step

    def who_runs_me() -> str:
        return current_step().principal.id

    @app.workflow()
    async def on_behalf(ctx):
        step_sees = await ctx.run(who_runs_me)
        await ctx.escalate("reviewer", "check")
        return {"ctx": ctx.principal.id, "step": step_sees}

    async with running(app):
        rita = await setup_reviewer(app)
        handle = await app.start("on_behalf", principal=rita)
        await wait_status(handle, "waiting")
        (item,) = await inbox.available_work(app.db, rita)
        assert item["created_by"] == "rita"
        await esc.resolve(app.db, rita, item["id"], {})
        assert await handle.result(timeout=10) == {"ctx": "rita", "step": "rita"}
        assert (await handle.info())["principal"]["id"] == "rita"

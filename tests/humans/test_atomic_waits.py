"""A run's human wait is one transaction: the escalation row, the journal entry that waits on it, and (for
a certified run) the task row that points at it are written together or not at all.

The failure is real: a trigger in the test's own database refuses the second write, as a database
error would. Were the writes in separate transactions, the escalation would be left behind without
the run waiting on it (or a certified task would name an escalation that does not exist).
"""

import logging

import anyio
import pytest

from longtail_mcp import Context, LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import inbox
from longtail_mcp.humans.certified import Escalation
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.humans.helpers import eventually, make_roles, sql_exec, sql_one

pytestmark = pytest.mark.anyio

REFUSE = """
CREATE FUNCTION refuse_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {condition} THEN RAISE EXCEPTION 'refused by the test: {name}'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_{name} BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_{name}();
"""


async def escalations_of(app: LongTail, workflow_id: str) -> int:
    row = await sql_one(app.db, "SELECT count(*) AS n FROM escalation WHERE workflow_id = %s", [workflow_id])
    return int(row["n"])


async def refused(caplog: pytest.LogCaptureFixture, workflow_id: str) -> None:
    async def logged() -> bool:
        return any(workflow_id in r.getMessage() and "interrupted" in r.getMessage() for r in caplog.records)

    await eventually(logged, within=10)


async def test_an_escalation_exists_only_with_the_journal_entry_that_waits_on_it(
        dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    app = LongTail(dsn, poll_seconds=0.1, lease_seconds=1)

    @app.workflow()
    async def ask(ctx: Context) -> dict:
        return await ctx.escalate("reviewer", "ship it?")

    caplog.set_level(logging.WARNING, logger="longtail_mcp.runtime.worker")
    async with running(app):
        await make_roles(app.db, "reviewer")
        await sql_exec(app.db, REFUSE.format(name="wait", table="step", condition="NEW.kind = 'escalation'"))
        handle = await app.start("ask", workflow_id="a1")
        await refused(caplog, "a1")
        assert await escalations_of(app, "a1") == 0, "no escalation without the run waiting on it"
        await sql_exec(app.db, "DROP TRIGGER refuse_wait ON step")
        (asked,) = await eventually(lambda: inbox.find_escalations(app.db, SYSTEM, workflow_id="a1"), within=15)
        await esc.resolve(app.db, SYSTEM, asked.id, {"ship": True})
        assert await handle.result(timeout=15) == {"ship": True}
        assert await escalations_of(app, "a1") == 1


async def test_a_certified_task_never_names_an_escalation_that_was_not_written(
        dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    app = LongTail(dsn, poll_seconds=0.1, lease_seconds=1)

    @app.workflow(certified=True, role="reviewer")
    async def fragile(ctx: Context) -> object:
        if ctx.resolver is None:
            return Escalation(message="needs a look")
        return {"fixed": ctx.resolver["fix"]}

    caplog.set_level(logging.WARNING, logger="longtail_mcp.runtime.worker")
    async with running(app):
        await make_roles(app.db, "reviewer")
        await sql_exec(app.db, REFUSE.format(name="escalation", table="escalation",
                                             condition="NEW.workflow_id = 'c1'"))
        handle = await app.start("fragile", workflow_id="c1")
        await refused(caplog, "c1")
        task = await sql_one(app.db, "SELECT status, escalation_id FROM task WHERE workflow_id = 'c1'")
        assert task["escalation_id"] is None, "the task points at an escalation only once it is written"
        await sql_exec(app.db, "DROP TRIGGER refuse_escalation ON escalation")
        (asked,) = await eventually(lambda: inbox.find_escalations(app.db, SYSTEM, workflow_id="c1"), within=15)
        task = await sql_one(app.db, "SELECT status, escalation_id FROM task WHERE workflow_id = 'c1'")
        assert (task["status"], task["escalation_id"]) == ("needs_intervention", asked.id)
        await esc.resolve(app.db, SYSTEM, asked.id, {"fix": "done"})
        with anyio.fail_after(15):
            assert await handle.result() == {"fixed": "done"}

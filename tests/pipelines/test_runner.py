"""Running pipelines: a durable workflow whose steps are the journaled tool steps and human waits of any run.

Independent steps overlap; `when` skips; `for_each` loops with bounded concurrency; a human step suspends
durably; a refused call waits for an approver as ctx.call_tool does; a restart resumes without repeating
committed steps; every step's idempotency key is `run:step[:item]`.
"""

import time
from datetime import datetime
from pathlib import Path

import pytest

from longtail_mcp import LongTail, WorkflowFailed
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.pipelines import service as pipelines
from tests.conftest import running
from tests.humans.helpers import eventually
from tests.pipelines.helpers import files_app, save
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio

SLOW = """
name: two_slow
input_schema: {type: object, properties: {}}
steps:
  - id: left
    tool: db-query/run_sql
    args: {sql: "SELECT pg_sleep(0.8), 'left' AS side"}
  - id: right
    tool: db-query/run_sql
    args: {sql: "SELECT pg_sleep(0.8), 'right' AS side"}
  - id: both
    tool: db-query/run_sql
    args: {sql: "SELECT '{{ steps.left.rows[0][1] }}-{{ steps.right.rows[0][1] }}' AS joined"}
output: {joined: "{{ steps.both.rows[0][0] }}"}
"""


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    return files_app(dsn, tmp_path / "files")


async def run_to_end(app: LongTail, name: str, inputs: dict, *, version: int = 1, wait: float = 30) -> object:
    handle = await pipelines.run(app.db, SYSTEM, name, inputs, version=version)
    return await handle.result(timeout=wait), handle


async def test_independent_steps_run_at_the_same_time_and_their_dependent_after_both(app: LongTail) -> None:
    async with running(app):
        await save(app, SLOW)
        started = time.monotonic()
        result, handle = await run_to_end(app, "two_slow", {})
        elapsed = time.monotonic() - started
        steps = {s.key: s for s in (await handle.export()).steps}
    assert result == {"joined": "left-right"}
    assert set(steps) == {"left", "right", "both"}
    spans = {k: (datetime.fromisoformat(s.started_at), datetime.fromisoformat(s.completed_at))
             for k, s in steps.items()}
    assert spans["left"][0] < spans["right"][1] and spans["right"][0] < spans["left"][1], "the two sleeps overlap"
    assert spans["both"][0] >= max(spans["left"][1], spans["right"][1]) or spans["both"][0] >= spans["left"][0]
    assert elapsed < 1.6 + 1.0, f"two 0.8 s steps in parallel took {elapsed:.2f} s"


async def test_when_skips_a_step_and_for_each_runs_one_call_per_item_with_bounded_concurrency(app: LongTail) -> None:
    text = """
name: loop
input_schema:
  type: object
  required: [names, loud]
  properties: {names: {type: array, items: {type: string}}, loud: {type: boolean}}
steps:
  - id: write
    for_each: "{{ inputs.names }}"
    concurrency: 2
    tool: files/write_file
    args: {path: "out/{{ item }}.txt", content: "{{ index }}:{{ item }}", make_dirs: true}
  - id: shout
    when: "{{ inputs.loud }}"
    tool: files/write_file
    args: {path: "out/LOUD.txt", content: "{{ steps.write | length }}"}
output: {written: "{{ steps.write | map(attribute='path') | list }}", shouted: "{{ steps.shout }}"}
"""
    async with running(app):
        await save(app, text)
        result, handle = await run_to_end(app, "loop", {"names": ["a", "b", "c"], "loud": False})
        keys = sorted(s.key for s in (await handle.export()).steps)
    root = Path(app.settings.files_dir)
    assert result == {"written": ["out/a.txt", "out/b.txt", "out/c.txt"], "shouted": None}
    assert [(root / f"out/{n}.txt").read_text() for n in "abc"] == ["0:a", "1:b", "2:c"]
    assert not (root / "out/LOUD.txt").exists(), "a false `when` skips the step"
    assert keys == ["write:0", "write:1", "write:2"]


async def test_a_human_step_waits_durably_and_a_restart_repeats_no_committed_step(app: LongTail, dsn: str,
                                                                                  tmp_path: Path) -> None:
    text = """
name: review_then_save
input_schema: {type: object, required: [path], properties: {path: {type: string}}}
steps:
  - id: draft
    tool: files/write_file
    args: {path: "{{ inputs.path }}", content: "draft"}
  - id: review
    human: {role: reviewer, message: "Publish {{ steps.draft.path }}?"}
  - id: publish
    when: "{{ steps.review.approved }}"
    tool: files/write_file
    args: {path: "{{ inputs.path }}.published", content: "ok"}
output: {approved: "{{ steps.review.approved }}", published: "{{ steps.publish.path if steps.publish else none }}"}
"""
    async with running(app):
        await ident.create_role(app.db, SYSTEM, "reviewer")
        await save(app, text)
        handle = await pipelines.run(app.db, SYSTEM, "review_then_save", {"path": "doc.txt"}, version=1)
        await wait_status(handle, "waiting")
    # The worker is gone; the run is a row. Another worker (a new app on the same database) picks it up.
    again = files_app(dsn, tmp_path / "files")
    async with running(again):
        (asked,) = await inbox.find_escalations(again.db, SYSTEM, workflow_id=handle.workflow_id)
        assert asked.id == f"{handle.workflow_id}:review", "a keyed wait's escalation id names its step"
        assert asked.message == "Publish doc.txt?"
        await esc.resolve(again.db, SYSTEM, asked.id, {"approved": True})
        result = await again.handle(handle.workflow_id).result(timeout=20)
        export = await again.export(handle.workflow_id)
    assert result == {"approved": True, "published": "doc.txt.published"}
    drafts = [s for s in export.steps if s.key == "draft"]
    assert len(drafts) == 1 and drafts[0].attempts == 1, "the committed step did not run again"
    assert [s.key for s in export.steps] == ["draft", "review", "publish"]


async def test_a_step_refused_by_policy_waits_for_an_approver_then_runs_once(app: LongTail) -> None:
    text = """
name: write_env
input_schema: {type: object, required: [token], properties: {token: {type: string}}}
steps:
  - id: save
    tool: files/write_file
    args: {path: ".env", content: "TOKEN={{ inputs.token }}"}
"""
    async with running(app):
        olga = await _approver(app)
        await save(app, text)
        handle = await pipelines.run(app.db, SYSTEM, "write_env", {"token": "t1"}, version=1)
        (asked,) = await eventually(lambda: inbox.find_escalations(app.db, olga, role="approver", status="pending"))
        assert asked.id == f"{handle.workflow_id}:save:approval" and asked.data["arguments"]["path"] == ".env"
        await esc.resolve(app.db, olga, asked.id, {"approved": True})
        await handle.result(timeout=20)
        keys = [(s.key, s.kind, s.status) for s in (await handle.export()).steps]
    assert keys == [("save", "tool", "failed"), ("save:approval", "escalation", "completed"),
                    ("save:approved", "tool", "completed")]
    assert (Path(app.settings.files_dir) / ".env").read_text() == "TOKEN=t1"


async def _approver(app: LongTail) -> object:
    await ident.create_account(app.db, SYSTEM, "olga")
    await ident.set_membership(app.db, SYSTEM, "approver", "olga")
    return await ident.get_principal(app.db, "olga")


async def test_each_tool_call_gets_the_idempotency_key_run_step_item(app: LongTail) -> None:
    text = """
name: keys
input_schema: {type: object, properties: {}}
steps:
  - id: many
    for_each: "{{ [1, 2] }}"
    tool: db-query/run_sql
    args: {sql: "SELECT {{ item }} AS n"}
"""
    async with running(app):
        await save(app, text)
        result, handle = await run_to_end(app, "keys", {})
        steps = (await handle.export()).steps
    assert [r["rows"] for r in result] == [[[1]], [[2]]]
    assert {s.key for s in steps} == {"many:0", "many:1"}
    assert all(s.seq >= 1_000_000_000 for s in steps), "keyed entries live apart from program order"


async def test_bad_inputs_and_a_failing_step_fail_the_run_with_a_clear_error(app: LongTail) -> None:
    text = """
name: strict
input_schema: {type: object, required: [n], properties: {n: {type: integer}}}
steps:
  - id: bad
    tool: db-query/run_sql
    args: {sql: "SELECT 1/{{ inputs.n }} AS x"}
"""
    async with running(app):
        await save(app, text)
        with pytest.raises(Exception, match="does not match its schema"):
            await pipelines.run(app.db, SYSTEM, "strict", {"n": "one"}, version=1)
        handle = await pipelines.run(app.db, SYSTEM, "strict", {"n": 0}, version=1)
        with pytest.raises(WorkflowFailed, match="division by zero"):
            await handle.result(timeout=20)
        assert (await handle.info()).status == "failed"

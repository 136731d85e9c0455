"""The durable agent loop, with the scripted model reached over HTTP through the real anthropic SDK: each
model turn and tool call is a step (a killed worker repeats neither), the loop's stops (an answer, the
same error twice, too many rounds), a person in the loop, and `find_tools` when too many tools match."""

import os
import signal
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from longtail_mcp import LongTail
from longtail_mcp.agents import toolbox
from longtail_mcp.agents.scripted import ScriptedServer
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM
from tests.conftest import running
from tests.humans.helpers import eventually
from tests.pipelines.helpers import files_app
from tests.runtime.helpers import wait_status

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def rules(model: ScriptedServer) -> list[str]:
    return [r["_rule"] for r in model.requests]


async def wait_for(condition: Any, within: float = 30) -> None:
    async def check() -> bool:
        return bool(condition())

    await eventually(check, within)


NOTE = """\
    model: scripted-notes
    turns:
      - name: write
        when: {last_tool: none}
        reply:
          - text: "Writing the note."
          - tool: files__write_file
            input: {path: notes/a.txt, content: once, create_only: true, make_dirs: true}
      - name: read
        when: {last_tool: files__write_file, error: false}
        delay: 2
        reply:
          - tool: files__read_file
            input: {path: notes/a.txt}
      - name: done
        when: {last_tool: files__read_file, error: false}
        reply:
          - text: "Wrote and read back the note."
      - name: failed
        when: {error: true}
        reply:
          - text: "FAILED: ${last_result}"
    """


@pytest.mark.slow
async def test_a_killed_worker_repeats_neither_a_finished_model_turn_nor_a_finished_tool_call(
        dsn: str, tmp_path: Path) -> None:
    files = tmp_path / "files"
    with ScriptedServer(script(tmp_path, NOTE)) as model:
        # Leases of 3 s: renewed every second, with room for a busy machine (a lost lease would re-ask a turn).
        env = {**os.environ, "DATABASE_URL": dsn, "LONGTAIL_LEASE_SECONDS": "3", "LONGTAIL_POLL_SECONDS": "0.2",
               "LONGTAIL_LLM_PROVIDER": "scripted", "LONGTAIL_LLM_BASE_URL": model.url,
               "LONGTAIL_FILES_ROOT": str(files)}

        def worker() -> subprocess.Popen[str]:
            proc = subprocess.Popen([sys.executable, "-m", "longtail_mcp", "worker"], cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert proc.stdout is not None and proc.stdout.readline().startswith("longtail-mcp worker ready")
            return proc

        first = worker()
        try:
            async with files_app(dsn, files) as app:
                handle = await app.start("agent", {"request": "write a note", "tags": ["files"]})
                # Killed while the third turn is with the model: two turns and the write are committed.
                try:
                    await wait_for(lambda: rules(model) == ["write", "read"])
                except TimeoutError:
                    first.kill()
                    raise AssertionError(f"{rules(model)} {first.communicate()[1][-3000:]}") from None
                first.send_signal(signal.SIGKILL)
                first.communicate()
                second = worker()
                try:
                    result = await handle.result(timeout=60)
                finally:
                    second.send_signal(signal.SIGINT)
                    second.communicate(timeout=15)
                steps = (await handle.export()).steps
        finally:
            if first.poll() is None:
                first.kill()
                first.communicate()
    assert result["status"] == "completed" and result["answer"] == "Wrote and read back the note.", result
    assert rules(model) == ["write", "read", "read", "done"], "only the turn in flight was asked again"
    assert [s.name for s in steps if s.name == "llm"] == ["llm"] * 3
    assert [(s.name, s.attempts) for s in steps if s.kind == "tool"] == [("files/write_file", 1),
                                                                          ("files/read_file", 1)]
    assert (files / "notes" / "a.txt").read_text() == "once", "the create-only write ran once"


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    return files_app(dsn, tmp_path / "files", llm_provider="scripted")


async def agent(app: LongTail, model: ScriptedServer, request: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    app.settings.llm_base_url = model.url
    handle = await app.start("agent", request)
    return await handle.result(timeout=60), handle


async def test_every_model_turn_is_a_step_recording_model_tokens_and_latency(app: LongTail, tmp_path: Path) -> None:
    with ScriptedServer(script(tmp_path, NOTE)) as model:
        async with running(app):
            result, handle = await agent(app, model, {"request": "write a note", "tags": ["files"]})
            steps = (await handle.export()).steps
    turns = [s for s in steps if s.name == "llm"]
    assert result["status"] == "completed" and result["llm_calls"] == len(turns) == 3 and result["tool_calls"] == 2
    assert all(t.output["model"] == "scripted-notes" and t.output["tokens_in"] > 0 and t.output["tokens_out"] > 0
               and t.output["latency_ms"] > 0 for t in turns)
    assert result["tokens_in"] == sum(t.output["tokens_in"] for t in turns)
    assert result["tokens_out"] == sum(t.output["tokens_out"] for t in turns)
    sent = model.requests[0]
    offered = {t["name"] for t in sent["tools"]}
    assert "files__write_file" in offered and "human-queue__escalate_and_wait" in offered
    assert not {n for n in offered if n.startswith(("db-query__", "http-fetch__", "workflows__"))}, "tags filter"


async def test_the_same_tool_error_twice_stops_the_loop(app: LongTail, tmp_path: Path) -> None:
    stubborn = """\
        model: scripted
        turns:
          - name: read
            reply:
              - tool: files__read_file
                input: {path: missing.txt}
        """
    with ScriptedServer(script(tmp_path, stubborn)) as model:
        async with running(app):
            result, _ = await agent(app, model, {"request": "read the file", "tags": ["files"]})
    assert result["status"] == "exhausted" and result["llm_calls"] == 2 and result["tool_calls"] == 2, result
    assert "files__read_file failed twice with the same error" in result["reason"] and "missing.txt" in result["reason"]


async def test_a_loop_without_an_answer_escalates_to_the_role_it_was_given(app: LongTail, tmp_path: Path) -> None:
    busy = """\
        model: scripted
        turns:
          - name: look
            reply:
              - tool: files__read_file
                input: {path: todo.txt}
        """
    with ScriptedServer(script(tmp_path, busy)) as model:
        async with running(app):
            await ident.create_role(app.db, SYSTEM, "reviewer")
            (Path(app.settings.files_dir) / "todo.txt").write_text("everything")
            result, handle = await agent(app, model, {"request": "tidy up", "tags": ["files"], "max_rounds": 3,
                                                      "escalate_to": "reviewer"})
            item = await esc.get_escalation(app.db, SYSTEM, result["escalation_id"])
    assert (result["status"], result["rounds"], len(model.requests)) == ("escalated", 3, 3)
    assert item.role == "reviewer" and item.data["reason"] == "no answer after 3 model turns"
    assert item.data["workflow_id"] == handle.workflow_id and "tidy up" in item.message


async def test_the_model_can_ask_a_person_and_the_run_waits_durably_for_the_answer(app: LongTail,
                                                                                     tmp_path: Path) -> None:
    asking = """\
        model: scripted
        turns:
          - name: ask
            when: {last_tool: none}
            reply:
              - tool: human-queue__escalate_and_wait
                input: {role: reviewer, message: "May I delete old.txt?"}
          - name: answered
            when: {last_tool: human-queue__escalate_and_wait}
            reply:
              - text: "The reviewer said: ${last_result}"
        """
    with ScriptedServer(script(tmp_path, asking)) as model:
        async with running(app):
            await ident.create_role(app.db, SYSTEM, "reviewer")
            app.settings.llm_base_url = model.url
            handle = await app.start("agent", {"request": "clean up", "tags": ["files"]})
            await wait_for(lambda: len(model.requests) == 1)
            pending = await eventually(partial(inbox.find_escalations, app.db, SYSTEM, role="reviewer"), 30)
            await wait_status(handle, "waiting")  # the step's wait row, then the run's status: two transactions
            await esc.resolve(app.db, SYSTEM, pending[0]["id"], {"delete": False})
            result = await handle.result(timeout=30)
    assert result["status"] == "completed" and '"delete":false' in result["answer"], result
    assert rules(model) == ["ask", "answered"]


async def test_too_many_matching_tools_are_searched_with_find_tools(app: LongTail, tmp_path: Path) -> None:
    finder = """\
        model: scripted
        turns:
          - name: search
            when: {last_tool: none}
            reply:
              - tool: find_tools
                input: {query: "write a file", limit: 3}
          - name: write
            when: {last_tool: find_tools}
            reply:
              - tool: files__write_file
                input: {path: found.txt, content: "found it"}
          - name: done
            when: {last_tool: files__write_file}
            reply:
              - text: done
        """
    everything = ["workflows", "human-queue", "compiler", "files", "db-query", "http-fetch"]
    with ScriptedServer(script(tmp_path, finder)) as model:
        async with running(app):
            assert len((await app.tool_catalog()).all()) > toolbox.MAX_SHOWN
            result, _ = await agent(app, model, {"request": "save found it", "tags": everything})
    first, second = ({t["name"] for t in r["tools"]} for r in model.requests[:2])
    assert first == {"find_tools", "human-queue__escalate_and_wait"}, "the model searches instead of a long list"
    assert "files__write_file" in second and len(second) <= 2 + 3
    assert result["status"] == "completed" and (Path(app.settings.files_dir) / "found.txt").read_text() == "found it"


async def test_a_call_a_safety_policy_refuses_waits_for_an_approver_then_goes_through(app: LongTail,
                                                                                     tmp_path: Path) -> None:
    guarded = """\
        model: scripted
        turns:
          - name: write
            when: {last_tool: none}
            reply:
              - tool: files__write_file
                input: {path: .env, content: "TOKEN=new"}
          - name: told
            when: {last_tool: files__write_file}
            reply:
              - text: "result: ${last_result}"
        """
    with ScriptedServer(script(tmp_path, guarded)) as model:
        async with running(app):
            await ident.create_account(app.db, SYSTEM, "olga")
            await ident.set_membership(app.db, SYSTEM, "approver", "olga")
            olga = await ident.get_principal(app.db, "olga")
            app.settings.llm_base_url = model.url
            handle = await app.start("agent", {"request": "rotate the token", "tags": ["files"]})
            (asked,) = await eventually(partial(inbox.find_escalations, app.db, olga, role="approver"), 30)
            assert asked["type"] == "approval" and asked["data"]["arguments"]["path"] == ".env"
            await wait_status(handle, "waiting")
            assert len(model.requests) == 1, "the model is not asked again while the call waits for its approver"
            await esc.resolve(app.db, olga, asked["id"], {"approved": True, "reason": "planned rotation"})
            result = await handle.result(timeout=30)
    assert result["status"] == "completed" and '"path":".env"' in result["answer"], result
    assert (Path(app.settings.files_dir) / ".env").read_text() == "TOKEN=new"
    assert [r["_rule"] for r in model.requests] == ["write", "told"], "the model was asked once more, after"

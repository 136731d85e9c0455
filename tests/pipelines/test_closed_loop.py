"""The closed loop over a real database: a run's journal compiles into a draft, the draft verifies by running
again, and the activated pipeline does the same work for new inputs — including waiting for an approver
when a safety policy refuses one of its calls, exactly as the run it was compiled from did."""

import json
from pathlib import Path
from typing import Any

import pytest

from longtail_mcp import Context, LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.pipelines import service as pipelines
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.source import compile_source
from longtail_mcp.runtime.models import RunExport
from tests.conftest import running
from tests.humans.helpers import eventually
from tests.pipelines.helpers import files_app

pytestmark = pytest.mark.anyio


async def index_folder(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Index the text files of a folder."""
    listed = await ctx.call_tool("files/list_files", {"pattern": f"{input['folder']}/*.txt"})
    texts = [await ctx.call_tool("files/read_file", {"path": entry["path"]}) for entry in listed["entries"]]
    await ctx.call_tool("db-query/get_system_health", {})  # looked at, never used: a dead end
    written = await ctx.call_tool("files/write_file", {
        "path": input["out"], "content": f"index of {input['folder']}", "make_dirs": True})
    return {"index": written["path"], "first": texts[0]["content"]}


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    app = files_app(dsn, tmp_path / "files")
    app.workflow("index_folder")(index_folder)

    @app.workflow("save_secret")
    async def save_secret(ctx: Context, inp: dict[str, Any]) -> dict[str, Any]:
        written = await ctx.call_tool("files/write_file", {"path": ".env", "content": f"TOKEN={inp['token']}"})
        return {"path": written["path"]}

    return app


def put(app: LongTail, folder: str, names: list[str]) -> None:
    for name in names:
        path = Path(app.settings.files_dir) / folder / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"text of {name}")


async def test_a_run_compiles_verifies_and_runs_again_with_new_inputs(app: LongTail) -> None:
    put(app, "docs", ["a", "b", "c"])
    put(app, "notes", ["n1", "n2", "n3", "n4"])
    async with running(app):
        source = await app.start("index_folder", {"folder": "docs", "out": "out/docs-index.txt"})
        assert await source.result(timeout=20) == {"index": "out/docs-index.txt", "first": "text of a"}

        info, text, notes = await pipelines.compile_run(app.db, SYSTEM, source.workflow_id,
                                                        tools=await app.tool_catalog(), name="index_folder_pipeline")
        assert info.status == "draft" and info.source_run == source.workflow_id
        compiled = await store.definition(app.db, info.name, info.version)
        by_tool = {s.tool: s for s in compiled.steps}
        assert set(by_tool) == {"files/list_files", "files/read_file", "files/write_file"}, text
        assert any("get_system_health" in n for n in notes), "the dropped dead end is explained"
        assert by_tool["files/list_files"].args == {"pattern": "{{ inputs.folder }}/*.txt"}, "an input in a string"
        assert any("left out limit, offset (equal to the tool's defaults)" in n for n in notes)
        assert by_tool["files/read_file"].for_each, "three reads over the listing became a loop"
        assert by_tool["files/write_file"].args == {
            "path": "{{ inputs.out }}", "content": "index of {{ inputs.folder }}", "make_dirs": True}
        assert compiled.examples == [{"folder": "docs", "out": "out/docs-index.txt"}]

        verified = await pipelines.verify(app.db, SYSTEM, info.name, tools=await app.tool_catalog())
        assert verified.verification["passed"], verified.verification
        await store.deploy(app.db, SYSTEM, info.name)
        await store.activate(app.db, SYSTEM, info.name)  # no force: the verification stands

        run = await pipelines.run(app.db, SYSTEM, info.name, {"folder": "notes", "out": "out/notes-index.txt"})
        result = await run.result(timeout=30)
        calls = [s.name for s in (await run.export()).steps if s.kind == "tool"]
    assert result == {"index": "out/notes-index.txt", "first": "text of n1"}
    assert calls.count("files/read_file") == 4, "the loop follows the new listing, not the old one's length"
    assert "db-query/get_system_health" not in calls
    assert (Path(app.settings.files_dir) / "out/notes-index.txt").read_text() == "index of notes"


def tool_calls(export: RunExport) -> list[str]:
    """Each completed tool call of a run, as (tool, arguments, result) in JSON: what two runs compare on. The
    system's health is compared by its arguments only (the runs themselves change it)."""
    return sorted(json.dumps([s.name, s.input, None if s.name == "db-query/get_system_health" else s.output],
                             sort_keys=True) for s in export.steps if s.kind == "tool" and s.status == "completed")


async def test_a_workflow_compiled_from_its_source_makes_the_same_calls_as_the_workflow(app: LongTail) -> None:
    put(app, "docs", ["a", "b", "c"])
    async with running(app):
        compiled = compile_source(index_folder, tools=await app.tool_catalog())
        info = await store.save(app.db, SYSTEM, store.yaml_of(compiled.pipeline), tools=await app.tool_catalog())
        inputs = {"folder": "docs", "out": "out/index.txt"}
        python = await app.start("index_folder", inputs)
        python_result = await python.result(timeout=20)
        (Path(app.settings.files_dir) / "out/index.txt").unlink()  # so both find the same folder
        pipeline = await pipelines.run(app.db, SYSTEM, info.name, inputs, version=info.version)
        pipeline_result = await pipeline.result(timeout=20)
        assert pipeline_result == python_result == {"index": "out/index.txt", "first": "text of a"}
        assert tool_calls(await pipeline.export()) == tool_calls(await python.export())
        assert len(tool_calls(await python.export())) == 6


async def _approver(app: LongTail) -> Principal:
    await ident.create_account(app.db, SYSTEM, "olga")
    await ident.set_membership(app.db, SYSTEM, "approver", "olga")
    return await ident.get_principal(app.db, "olga")


async def approve_next(app: LongTail, olga: Principal, workflow_id: str) -> str:
    (asked,) = await eventually(lambda: inbox.find_escalations(app.db, olga, role="approver", status="pending",
                                                               workflow_id=workflow_id))
    await esc.resolve(app.db, olga, asked.id, {"approved": True})
    return asked.data["tool"]


async def test_a_compiled_step_a_policy_refuses_waits_for_an_approver_as_the_run_did(app: LongTail) -> None:
    async with running(app):
        olga = await _approver(app)
        source = await app.start("save_secret", {"token": "alpha-token-1"})
        assert await approve_next(app, olga, source.workflow_id) == "files/write_file"
        await source.result(timeout=20)
        info, _, _ = await pipelines.compile_run(app.db, SYSTEM, source.workflow_id, tools=await app.tool_catalog())
        compiled = await store.definition(app.db, info.name, info.version)
        assert [s.tool for s in compiled.steps] == ["files/write_file"], "the approval is not a step of its own"

        run = await pipelines.run(app.db, SYSTEM, info.name, {"token": "bravo-token-2"}, version=info.version)
        assert await approve_next(app, olga, run.workflow_id) == "files/write_file"
        assert await run.result(timeout=20) == {"path": ".env"}
        then = [(s.kind, s.status) for s in (await source.export()).steps]
        now = [(s.kind, s.status) for s in (await run.export()).steps]
    assert now == then == [("tool", "failed"), ("escalation", "completed"), ("tool", "completed")]
    assert (Path(app.settings.files_dir) / ".env").read_text() == "TOKEN=bravo-token-2"

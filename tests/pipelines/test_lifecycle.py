"""The pipeline lifecycle: draft -> deployed -> active -> archived (restore -> draft), content versions that
runs pin, search, schedules, events, who may do what, and bad input that changes nothing."""

from pathlib import Path

import pytest

from longtail_mcp import Conflict, Forbidden, Handle, LongTail, WorkflowFailed
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.pipelines import service as pipelines
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.loader import PipelineInvalid
from longtail_mcp.runtime import service
from tests.conftest import running
from tests.humans.helpers import sql_one
from tests.pipelines.helpers import files_app, save

pytestmark = pytest.mark.anyio

V1 = """
name: note
description: Write a note
tags: [files, notes]
input_schema: {type: object, required: [text], properties: {text: {type: string}}}
steps:
  - id: save
    tool: files/write_file
    args: {path: "note.txt", content: "v1 {{ inputs.text }}"}
output: {path: "{{ steps.save.path }}"}
"""


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    return files_app(dsn, tmp_path / "files")


async def count(app: LongTail, table: str) -> int:
    return int((await sql_one(app.db, f"SELECT count(*) AS n FROM {table}"))["n"])  # noqa: S608  # test-only


async def test_a_pipeline_moves_through_its_lifecycle_and_each_edit_is_a_version(app: LongTail) -> None:
    async with app:
        draft = await save(app, V1)
        assert (draft.status, draft.version, draft.tools, draft.read_only) == ("draft", 1, ["files/write_file"], False)
        assert (await save(app, V1)).version == 1, "the same content again adds no version"
        edited = await save(app, V1.replace("v1", "v2"))
        assert edited.version == 2 and edited.status == "draft"
        with pytest.raises(Conflict, match="only from deployed"):
            await store.activate(app.db, SYSTEM, "note", force=True)
        await store.deploy(app.db, SYSTEM, "note")
        with pytest.raises(Conflict, match="has not passed verify_pipeline"):
            await store.activate(app.db, SYSTEM, "note")
        active = await store.activate(app.db, SYSTEM, "note", force=True)
        assert (active.status, active.active_version) == ("active", 2)
        with pytest.raises(Conflict, match="archive it before deleting"):
            await store.delete(app.db, SYSTEM, "note")
        archived = await store.archive(app.db, SYSTEM, "note")
        assert (archived.status, archived.active_version) == ("archived", None)
        assert (await store.restore(app.db, SYSTEM, "note")).status == "draft"
        assert [v.version for v in await store.versions(app.db, "note")] == [2, 1]
        assert "v1" in (await store.version(app.db, "note", 1)).yaml
        await store.delete(app.db, SYSTEM, "note")
        assert await count(app, "pipeline") == 0 and await count(app, "pipeline_version") == 0
        kinds = [r["action"] for r in await ident.export_audit(app.db, SYSTEM) if r["object_type"] == "pipeline"]
        assert kinds == ["pipeline.create", "pipeline.edit", "pipeline.deployed", "pipeline.active",
                         "pipeline.archived", "pipeline.draft", "pipeline.delete"]


async def test_a_run_pins_the_version_it_started_with_while_the_active_one_moves_on(app: LongTail) -> None:
    async with running(app):
        await save(app, V1)
        await store.deploy(app.db, SYSTEM, "note")
        await store.activate(app.db, SYSTEM, "note", force=True)
        first = await pipelines.run(app.db, SYSTEM, "note", {"text": "a"})
        await first.result(timeout=20)
        await save(app, V1.replace("v1", "v2"))
        info = await store.get(app.db, "note")
        assert (info.status, info.version, info.active_version) == ("active", 2, 1), "the edit is not served yet"
        second = await pipelines.run(app.db, SYSTEM, "note", {"text": "b"})
        await second.result(timeout=20)
        assert (Path(app.settings.files_dir) / "note.txt").read_text() == "v1 b"
        await store.activate(app.db, SYSTEM, "note", force=True)
        third = await pipelines.run(app.db, SYSTEM, "note", {"text": "c"})
        await third.result(timeout=20)
        assert (Path(app.settings.files_dir) / "note.txt").read_text() == "v2 c"
        assert [(await h.info()).input["version"] for h in (first, second, third)] == [1, 1, 2]


async def test_a_pipeline_with_unfinished_runs_cannot_be_deleted_and_a_run_never_takes_other_content(
        app: LongTail) -> None:
    async with app:
        await save(app, V1)
        queued = await pipelines.run(app.db, SYSTEM, "note", {"text": "a"}, version=1)  # no worker yet: it waits
        with pytest.raises(Conflict, match="runs that have not finished"):
            await store.delete(app.db, SYSTEM, "note")
        await service.cancel_run(app.db, queued.workflow_id)
        await store.delete(app.db, SYSTEM, "note")
        await save(app, V1.replace("v1", "v2"))  # the same name and version number, other content
        impostor, _ = await service.start_run(app.db, store.WORKFLOW,
                                              store.run_input("note", 1, "0" * 64, {"text": "b"}))
    async with running(app):
        with pytest.raises(WorkflowFailed, match="not the one this run started with"):
            await Handle(app.db, impostor).result(timeout=20)
        assert not (Path(app.settings.files_dir) / "note.txt").exists()


async def test_verify_runs_the_version_and_activation_needs_it(app: LongTail) -> None:
    broken = V1.replace('path: "note.txt"', 'path: "../outside.txt"').replace("name: note", "name: broken")
    async with running(app):
        await save(app, V1.replace("input_schema:", "examples: [{text: hello}]\ninput_schema:"))
        verified = await pipelines.verify(app.db, SYSTEM, "note")
        assert verified.verified_version == 1 and verified.verification["passed"] is True
        assert verified.verification["tools"] == ["files/write_file"]
        await store.deploy(app.db, SYSTEM, "note")
        assert (await store.activate(app.db, SYSTEM, "note")).status == "active"
        await save(app, broken)
        failed = await pipelines.verify(app.db, SYSTEM, "broken", seconds=20)
        assert failed.verified_version is None and failed.verification["passed"] is False
        assert "failed" in failed.verification["problems"][0]


async def test_search_schedules_events_and_permissions(app: LongTail) -> None:
    scheduled = V1.replace("output:", "schedule: {cron: '0 3 * * *', input: {text: nightly}}\noutput:")
    async with app:
        await ident.create_account(app.db, SYSTEM, "rita")
        rita = await ident.get_principal(app.db, "rita")
        mine = await store.save(app.db, rita, scheduled, tools=await app.tool_catalog())
        assert mine.created_by == "rita"
        assert [p.name for p in await store.search(app.db, query="write notes")] == ["note"]
        assert [p.name for p in await store.search(app.db, query="writ")] == ["note"], "prefixes match"
        assert [p.name for p in await store.search(app.db, tags=["notes"])] == ["note"]
        assert await store.search(app.db, query="invoices") == []
        assert await store.search(app.db, query="it is not raining") == [], "stop-words ('not' ~ 'note') match nothing"
        assert [p.name for p in await store.search(app.db, query="the notes please")] == ["note"]
        assert await store.search(app.db, query="is it the") == [], "only stop-words: nothing, and no error"
        await store.deploy(app.db, rita, "note")
        with pytest.raises(Forbidden, match="superadmin"):
            await store.activate(app.db, rita, "note", force=True)
        async with app.events.subscribe(["pipeline.*"]) as feed:
            await store.activate(app.db, SYSTEM, "note", force=True)
            (schedule,) = await service.list_schedules(app.db)
            assert (schedule.name, schedule.workflow, schedule.cron) == ("pipeline:note", "pipeline", "0 3 * * *")
            assert schedule.input == {"pipeline": "note", "inputs": {"text": "nightly"}}
            await store.archive(app.db, SYSTEM, "note")
            assert await service.list_schedules(app.db) == []
            seen = [(await feed.__anext__()).type for _ in range(2)]
        assert seen == ["pipeline.activated", "pipeline.archived"]
        await ident.create_account(app.db, SYSTEM, "sam")
        sam = await ident.get_principal(app.db, "sam")
        await store.restore(app.db, SYSTEM, "note")
        with pytest.raises(Forbidden, match="belongs to rita"):
            await store.save(app.db, sam, scheduled.replace("Write a note", "mine now"), tools=await app.tool_catalog())


async def test_bad_yaml_is_refused_with_positions_and_stores_nothing(app: LongTail) -> None:
    cases = {
        "not yaml": "name: [unclosed",
        "unknown tool": V1.replace("files/write_file", "files/write_fiel"),
        "missing step": V1.replace("{{ steps.save.path }}", "{{ steps.sav.path }}"),
        "sandbox escape": V1.replace("{{ inputs.text }}", "{{ ''.__class__.__mro__ }}"),
        "cycle": V1.replace("steps:\n", "steps:\n  - id: a\n    tool: files/write_file\n    args: {path: x, "
                            "content: \"{{ steps.b.path }}\"}\n  - id: b\n    tool: files/write_file\n    args: "
                            "{path: y, content: \"{{ steps.a.path }}\"}\n"),
        "huge": "name: x\n" + "# " + "x" * (11 * 1024 * 1024),
        "10,000 steps": "name: many\nsteps:\n" + "".join(
            f"  - {{id: s{i}, tool: files/file_info, args: {{path: x}}}}\n" for i in range(10_000)),
    }
    async with app:
        for what, text in cases.items():
            with pytest.raises(PipelineInvalid) as refused:
                await save(app, text)
            assert refused.value.problems, what
            assert all(p.line >= 1 for p in refused.value.problems), what
        assert await count(app, "pipeline") == 0 and await count(app, "pipeline_version") == 0


async def test_the_routers_stamp_moves_with_what_active_pipelines_serve_and_not_with_a_verification(
        app: LongTail) -> None:
    async with app:
        stamps = [await store.active_stamp(app.db)]
        info = await save(app, V1)
        stamps.append(await store.active_stamp(app.db))
        await store.record_verification(app.db, info.name, 1, {"passed": True, "version": 1, "problems": []})
        stamps.append(await store.active_stamp(app.db))
        await store.deploy(app.db, SYSTEM, info.name)
        await store.activate(app.db, SYSTEM, info.name, force=True)
        stamps.append(await store.active_stamp(app.db))
        await store.archive(app.db, SYSTEM, info.name)
        stamps.append(await store.active_stamp(app.db))
    assert stamps[1] > stamps[0] and stamps[2] == stamps[1], "a verification does not rebuild the router's index"
    assert stamps[4] > stamps[3] > stamps[2]

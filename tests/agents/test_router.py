"""The router's second tier: a request no prompt template matches is searched among the active pipelines,
a model judges the candidates, and a model extracts the inputs — used only when they satisfy the
pipeline's input schema (fail closed), else the agent answers. And the first tier's exactness."""

from pathlib import Path
from typing import Any

import pytest

from longtail_mcp import LongTail
from longtail_mcp.agents.scripted import ScriptedServer
from longtail_mcp.agents.templates import TemplateIndex
from tests.conftest import running
from tests.pipelines.helpers import files_app, publish

pytestmark = pytest.mark.anyio

NOTES = """
name: note_saver
description: Save a note under notes/ with a title and a text
tags: [files, notes]
input_schema:
  type: object
  required: [title, text]
  properties: {title: {type: string, minLength: 3}, text: {type: string}}
steps:
  - id: save
    tool: files/write_file
    args: {path: "notes/{{ inputs.title }}.md", content: "{{ inputs.text }}", make_dirs: true}
output: {path: "{{ steps.save.path }}"}
"""

SCRIPT: dict[str, Any] = {"model": "scripted-router", "turns": [
    {"name": "judge_sure", "when": {"system": "You route requests", "request": "note titled"},
     "reply": [{"tool": "choose_pipeline", "input": {"name": "note_saver", "confidence": 0.9}}]},
    {"name": "judge_unsure", "when": {"system": "You route requests"},
     "reply": [{"tool": "choose_pipeline", "input": {"name": "note_saver", "confidence": 0.4}}]},
    {"name": "extract", "when": {"system": "Extract the inputs", "request": r"titled (?P<title>\w+) saying (?P<t>.+)"},
     "reply": [{"tool": "give_inputs", "input": {"title": "${title}", "text": "${t}"}}]},
    {"name": "extract_short", "when": {"system": "Extract the inputs", "request": r"titled (?P<title>\w+)"},
     "reply": [{"tool": "give_inputs", "input": {"title": "${title}"}}]},
    {"name": "agent", "when": {"system": "You are an agent"}, "reply": [{"text": "I wrote nothing."}]},
]}


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    return files_app(dsn, tmp_path / "files", llm_provider="scripted")


async def ask(app: LongTail, model: ScriptedServer, request: str) -> dict[str, Any]:
    model.reset()
    result: dict[str, Any] = await (await app.start("query", {"request": request})).result(timeout=60)
    return result


async def test_a_judged_confident_match_runs_with_extracted_inputs_and_anything_less_goes_to_the_agent(
        app: LongTail) -> None:
    with ScriptedServer(SCRIPT) as model:
        app.settings.llm_base_url = model.url
        async with running(app):
            await publish(app, NOTES)
            sure = await ask(app, model, "please jot down a note titled groceries saying buy milk")
            sure_rules = [r["_rule"] for r in model.requests]
            unsure = await ask(app, model, "maybe a note about the weather")
            unsure_rules = [r["_rule"] for r in model.requests]
            short = await ask(app, model, "a note titled ab saying hi")
            missing = await ask(app, model, "a note titled plans")
    files = Path(app.settings.files_dir)

    assert (sure["path"], sure["pipeline"], sure["llm_calls"]) == ("search", "note_saver", 2), sure
    assert sure_rules == ["judge_sure", "extract"] and sure["output"] == {"path": "notes/groceries.md"}
    assert (files / "notes" / "groceries.md").read_text() == "buy milk"
    assert "the judge chose 'note_saver' with confidence 0.90" in sure["why"]

    assert (unsure["path"], unsure["pipeline"], unsure["llm_calls"]) == ("agent", None, 2), unsure
    assert unsure_rules == ["judge_unsure", "agent"] and "confidence 0.40 (below 0.7)" in unsure["why"]

    for result in (short, missing):  # inputs that fail the schema are never used: the agent answers
        assert result["path"] == "agent" and "extracting its inputs failed" in result["why"], result
    assert "minLength" in short["why"] or "too short" in short["why"]
    assert "'text' is a required property" in missing["why"]
    assert not (files / "notes" / "ab.md").exists() and not (files / "notes" / "plans.md").exists()


def test_a_template_matches_only_the_same_words_with_slots_of_the_right_type() -> None:
    index = TemplateIndex([
        {"name": "resize", "version": 1, "hash": "h1", "tags": ["images"],
         "template": "resize {path} to {width} pixels",
         "input_schema": {"type": "object", "properties": {"path": {"type": "string"}, "width": {"type": "integer"}}}},
        {"name": "resize_dir", "version": 1, "hash": "h2", "tags": [],
         "template": "resize every image in {folder} to {width} pixels",
         "input_schema": {"type": "object", "properties": {"folder": {"type": "string"},
                                                           "width": {"type": "integer"}}}},
    ])
    found = index.match("Resize  a.png to 200 pixels")
    assert found is not None and found[0].name == "resize" and found[1] == {"path": "a.png", "width": 200}
    every = index.match("resize every image in pics to 64 pixels")
    assert every is not None and every[0].name == "resize_dir", "the most literal text wins"
    assert index.match("resize a.png to wide pixels") is None, "a slot must convert to its input's type"
    assert index.match("please resize a.png to 200 pixels") is None, "the same words, nothing more"
    assert index.match("resize a.png to 200 pixels", tags=["video"]) is None


def test_a_rebuilt_index_reuses_the_templates_of_unchanged_versions_and_sees_what_changed() -> None:
    def row(name: str, version: int, template: str, tags: list[str] | None = None) -> dict[str, Any]:
        return {"name": name, "version": version, "hash": f"{name}-{version}", "tags": tags or [],
                "template": template, "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}

    first = TemplateIndex([row("greet", 1, "greet {x} warmly"), row("wave", 1, "wave at {x}")])
    second = TemplateIndex([row("greet", 1, "greet {x} warmly"), row("wave", 2, "wave twice at {x}"),
                            row("nod", 1, "nod to {x}", ["polite"])], previous=first)
    kept = next(t for t in second.compiled.values() if t is not None and t.name == "greet")
    assert kept is next(t for t in first.compiled.values() if t is not None and t.name == "greet"), \
        "an unchanged version is not compiled again"
    assert second.match("wave at ada") is None and second.match("wave twice at ada")[0].version == 2
    assert second.match("nod to ada", tags=["polite"])[0].name == "nod"
    third = TemplateIndex([row("greet", 1, "greet {x} warmly", ["kind"])], previous=second)
    assert third.match("greet ada warmly", tags=["kind"]) is not None, "changed tags are seen"
    assert third.match("nod to ada") is None and len(third.compiled) == 1, "archived ones are gone"

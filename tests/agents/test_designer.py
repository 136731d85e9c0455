"""The pipeline designer over MCP (the compiler server's `design_pipeline`), with the scripted model: the
parser's problems go back to the model until its draft is valid, the draft verifies like any other, a
missing capability is named instead of invented, and three bad drafts save nothing."""

import textwrap
from pathlib import Path
from typing import Any

import pytest
from mcp import Client as McpClient

from longtail_mcp import LongTail
from longtail_mcp.agents.scripted import ScriptedServer
from longtail_mcp.errors import NotFound
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.mcp_glue.server import fixed_principal
from longtail_mcp.pipelines import service, store
from system_servers.compiler import server as compiler
from tests.conftest import running
from tests.pipelines.helpers import files_app

pytestmark = pytest.mark.anyio

NOTE = """\
    name: save_note
    description: Save a note under notes/
    input_schema: {type: object, required: [title, text], properties: {title: {type: string}, text: {type: string}}}
    steps:
      - id: save
        tool: files/%s
        args: {path: "notes/{{ inputs.title }}.md", content: "{{ inputs.text }}", make_dirs: true}
    output: {path: "{{ steps.save.path }}"}
    examples: [{title: first, text: hello}]
    """


def script() -> dict[str, Any]:
    draft = textwrap.dedent(NOTE)
    return {"model": "scripted-designer", "turns": [
        {"name": "sms", "when": {"request": "does this:\\ntext my team"},
         "reply": [{"tool": "missing_capability",
                    "input": {"capability": "sending SMS text messages", "why": "no listed tool sends SMS"}}]},
        {"name": "typo", "when": {"request": "does this:\\nsave a note", "last_tool": "none"},
         "reply": [{"text": "Here is a draft."}, {"tool": "submit_pipeline", "input": {"yaml": draft % "writ_file"}}]},
        {"name": "fixed", "when": {"last_tool": "submit_pipeline", "error": True, "result": "writ_file"},
         "reply": [{"tool": "submit_pipeline", "input": {"yaml": draft % "write_file"}}]},
        {"name": "stubborn", "when": {"request": "does this:\\nanything"},
         "reply": [{"tool": "submit_pipeline", "input": {"yaml": "name: Bad Name\nsteps: []\n"}}]},
    ]}


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    return files_app(dsn, tmp_path / "files", llm_provider="scripted")


async def design(app: LongTail, model: ScriptedServer, args: dict[str, Any]) -> dict[str, Any]:
    app.settings.llm_base_url = model.url
    async with McpClient(compiler.build(app, fixed_principal(SYSTEM))) as client:
        called = await client.call_tool("design_pipeline", args)
    assert not called.is_error and called.structured_content["done"], called.content[0].text
    result: dict[str, Any] = called.structured_content["result"]
    return result


async def test_the_parsers_problems_go_back_to_the_model_until_the_draft_is_valid(app: LongTail) -> None:
    with ScriptedServer(script()) as model:
        async with running(app):
            result = await design(app, model, {"description": "save a note with a title and a text",
                                               "tags": ["files"]})
            info = await store.get(app.db, "save_note")
            verified = await service.verify(app.db, SYSTEM, "save_note", tools=await app.tool_catalog())
    assert (result["status"], result["pipeline"], result["version"], result["rounds"]) == ("drafted", "save_note", 1, 2)
    assert info.status == "draft" and "verify_pipeline save_note" in result["next"]
    first, second = model.requests
    assert "files__" not in first["messages"][0]["content"] and '"tool":"files/write_file"' in first["messages"][0][
        "content"], "the model sees the tools under their pipeline names, with their schemas"
    told = second["messages"][-1]["content"][0]
    assert told["is_error"] and "line 6, column 11" in told["content"] and "files/writ_file" in told["content"], told
    assert verified.verification["passed"] is True, verified.verification


async def test_the_designer_names_a_missing_capability_instead_of_inventing_a_tool(app: LongTail) -> None:
    with ScriptedServer(script()) as model:
        async with running(app):
            result = await design(app, model, {"description": "text my team when a run fails"})
    assert result["status"] == "missing" and result["missing"] == "sending SMS text messages: no listed tool sends SMS"
    assert result["pipeline"] is None and "register_mcp_server" in result["next"]


async def test_three_invalid_drafts_save_nothing_and_report_the_problems(app: LongTail) -> None:
    with ScriptedServer(script()) as model:
        async with running(app):
            result = await design(app, model, {"description": "anything at all", "name": "bad_one"})
            with pytest.raises(NotFound):
                await store.get(app.db, "bad_one")
    assert (result["status"], result["rounds"], len(model.requests)) == ("failed", 3, 3)
    assert result["problems"] == [
        "line 1, column 7: name: a pipeline name is 1-63 lowercase letters, digits and '_', starting with a letter",
        "line 2, column 8: steps: a pipeline needs at least one step"]
    assert "Name it bad_one." in model.requests[0]["messages"][0]["content"]

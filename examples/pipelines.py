"""The closed loop: a run becomes a pipeline, and the pipeline becomes an MCP tool.

A workflow indexes a folder of notes through the files server: it lists the folder, reads each note
and writes an index. The compiler turns that run's journal into a draft pipeline (inputs, wires from
earlier results, a for_each over the listing; no LLM). Verification runs the draft on the run's own
inputs and compares; activation publishes it as the tool `index_notes`, which an MCP client then calls
with a folder the original run never saw.

    python examples/pipelines.py
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
from _demo import demo_app, run
from mcp import Client as McpClient

from longtail_mcp import Context
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.mcp_glue.server import fixed_principal
from longtail_mcp.pipelines import service, store
from system_servers.workflows import server as workflows

root = Path(tempfile.mkdtemp(prefix="longtail-files-"))
os.environ["LONGTAIL_FILES_ROOT"] = str(root)  # the files server's root (default ~/.longtail-mcp/files)
app = demo_app("pipelines")


@app.workflow("index_folder")
async def index_folder(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    listed = await ctx.call_tool("files/list_files", {"pattern": f"{request['folder']}/*.md"})
    notes = [await ctx.call_tool("files/read_file", {"path": entry["path"]}) for entry in listed["entries"]]
    lines = [f"- {note['path']}: {note['size']} bytes" for note in notes]
    index = await ctx.call_tool("files/write_file", {"path": f"{request['folder']}/INDEX.txt",
                                                     "content": f"notes in {request['folder']}"})
    return {"index": index["path"], "first": notes[0]["content"], "lines": len(lines)}


def write_notes(folder: str, names: list[str]) -> None:
    for name in names:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{name}.md").write_text(f"# {name}\n")


async def main() -> None:
    write_notes("ideas", ["alpha", "beta", "gamma"])
    write_notes("recipes", ["bread", "soup", "pie", "salad"])
    async with app, anyio.create_task_group() as tg:
        await tg.start(app.worker().run)

        source = await app.start("index_folder", {"folder": "ideas"})
        print("the run:", json.dumps(await source.result(timeout=30)))

        tools = await app.tool_catalog()
        draft, yaml_text, notes = await service.compile_run(app.db, SYSTEM, source.workflow_id, tools=tools,
                                                            name="index_notes")
        print(f"compiled {draft.name} v{draft.version} ({draft.status}):\n{yaml_text}")
        for note in notes:
            print("  note:", note)

        verified = await service.verify(app.db, SYSTEM, draft.name, tools=tools)
        print("verified:", verified.verification["passed"], verified.verification["problems"])
        await store.deploy(app.db, SYSTEM, draft.name)
        active = await store.activate(app.db, SYSTEM, draft.name)
        print(f"{active.name} is {active.status}, serving version {active.active_version}")

        async with McpClient(workflows.build(app, fixed_principal(SYSTEM))) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
            print("tool input schema:", json.dumps(listed["index_notes"].input_schema["required"]))
            called = await client.call_tool("index_notes", {"folder": "recipes"})
            print("the tool:", json.dumps(called.structured_content["output"]))
        print("index written:", (root / "recipes" / "INDEX.txt").read_text())
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    run(main)

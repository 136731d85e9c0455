"""`longtail-mcp pipelines ...` run as a subprocess against the test's database, whose worker (this process)
executes the runs the commands start."""

import json
from pathlib import Path

import pytest

from longtail_mcp import Context, LongTail
from tests.conftest import running
from tests.pipelines.helpers import files_app
from tests.test_cli import cli_env, run_cli_async

pytestmark = pytest.mark.anyio

GREET = """name: greet_cli
description: Write a greeting
input_schema: {type: object, required: [who], properties: {who: {type: string}}}
steps:
  - id: save
    tool: files/write_file
    args: {path: "hello-{{ inputs.who }}.txt", content: "hello {{ inputs.who }}"}
output: {path: "{{ steps.save.path }}"}
examples: [{who: verifier}]
"""


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    app = files_app(dsn, tmp_path / "files")

    @app.workflow("note_twice")
    async def note_twice(ctx: Context, inp: dict[str, str]) -> dict[str, str]:
        first = await ctx.call_tool("files/write_file", {"path": f"{inp['name']}.txt", "content": "one"})
        await ctx.call_tool("files/write_file", {"path": f"{first['path']}.bak", "content": "two"})
        return {"path": first["path"]}

    return app


async def cli(env: dict[str, str], *args: str) -> object:
    done = await run_cli_async("pipelines", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_the_pipelines_verbs_from_the_shell(app: LongTail, dsn: str, traversable_dir: Path,
                                                  tmp_path: Path) -> None:
    env = cli_env(traversable_dir, database_url=dsn)
    source = tmp_path / "greet.yaml"
    source.write_text(GREET)
    async with running(app):
        made = await cli(env, "create", str(source))
        assert (made["name"], made["status"], made["version"]) == ("greet_cli", "draft", 1)
        assert [p["name"] for p in await cli(env, "list", "--query", "greeting")] == ["greet_cli"]
        shown = await cli(env, "show", "greet_cli")
        assert shown["yaml"] == GREET and shown["version"] == 1
        await cli(env, "deploy", "greet_cli")
        refused = await run_cli_async("pipelines", "activate", "greet_cli", env=env)
        assert refused.returncode != 0 and "verify" in refused.stderr and "Traceback" not in refused.stderr
        verified = await cli(env, "verify", "greet_cli")
        assert verified["verification"]["passed"] and verified["verified_version"] == 1
        assert (await cli(env, "activate", "greet_cli"))["status"] == "active"
        run = await cli(env, "run", "greet_cli", "--input", '{"who": "ada"}')
        assert run["status"] == "completed" and run["result"] == {"path": "hello-ada.txt"}
        assert (Path(app.settings.files_dir) / "hello-ada.txt").read_text() == "hello ada"

        bad = await run_cli_async("pipelines", "run", "greet_cli", "--input", '{"who": 7}', env=env)
        assert bad.returncode != 0 and "does not match its schema" in bad.stderr

        source_run = await app.start("note_twice", {"name": "memo"})
        await source_run.result(timeout=20)
        compiled = await cli(env, "compile", source_run.workflow_id, "--name", "memo_twice")
        assert compiled["pipeline"]["status"] == "draft"
        assert "path: '{{ inputs.name }}.txt'" in compiled["yaml"], compiled["yaml"]
        assert "path: '{{ inputs.name }}.txt.bak'" in compiled["yaml"], compiled["yaml"]

        assert (await cli(env, "archive", "greet_cli"))["status"] == "archived"
        assert [v["version"] for v in await cli(env, "versions", "greet_cli")] == [1]

    source.write_text(GREET.replace("files/write_file", "files/write_fil"))
    broken = await run_cli_async("pipelines", "create", str(source), env=env)
    assert broken.returncode != 0 and "line 6" in broken.stderr and "files/write_file" in broken.stderr
    assert "Traceback" not in broken.stderr

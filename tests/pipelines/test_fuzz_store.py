"""Property test through a real compiler server and database: mangled pipeline YAML sent to create_pipeline
comes back as a clear tool error (never an internal one) and stores nothing; what is accepted is stored whole,
a pipeline row with its version, readable again."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client as McpClient

from longtail_mcp import LongTail
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.mcp_glue.server import ERROR_META, fixed_principal
from longtail_mcp.pipelines import store
from system_servers.compiler import server as compiler
from tests.pipelines.helpers import files_app

VALID = """name: fuzzed
description: Write a note
tags: [notes]
input_schema: {type: object, required: [text], properties: {text: {type: string}}}
steps:
  - id: save
    tool: files/write_file
    args: {path: "note.txt", content: "{{ inputs.text }}"}
  - id: check
    tool: files/file_info
    args: {path: "{{ steps.save.path }}"}
output: {path: "{{ steps.save.path }}", size: "{{ steps.check.size }}"}
"""
PUNCTUATION = st.lists(st.sampled_from([*":-[]{}#&*!|>'\"%@`,?\n ", "{{", "}}", "  ", "\t", "steps.", "inputs."]),
                       max_size=6).map("".join)


@pytest.fixture
def served(dsn: str, tmp_path: Path) -> Iterator[tuple[BlockingPortal, McpClient, LongTail]]:
    """The compiler server over an in-memory MCP session, on an event loop in another thread (hypothesis
    drives the examples synchronously)."""
    app = files_app(dsn, tmp_path / "files")
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(app), \
            portal.wrap_async_context_manager(McpClient(compiler.build(app, fixed_principal(SYSTEM)))) as client:
        yield portal, client, app


async def counts(app: LongTail) -> tuple[int, int]:
    async with app.db.connection() as conn:
        row = await (await conn.execute("SELECT (SELECT count(*) FROM pipeline) AS p, "
                                        "(SELECT count(*) FROM pipeline_version) AS v")).fetchone()
    return int(row["p"]), int(row["v"])


@settings(max_examples=120, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(at=st.integers(0, len(VALID)), cut=st.integers(0, 12), insert=PUNCTUATION)
def test_mangled_yaml_is_refused_cleanly_or_stored_whole(served: Any, at: int, cut: int, insert: str) -> None:
    portal, client, app = served
    text = VALID[:at] + insert + VALID[at + cut:]
    before = portal.call(counts, app)
    result = portal.call(client.call_tool, "create_pipeline", {"yaml": text})
    after = portal.call(counts, app)
    if result.is_error:
        error = (result.meta or {})[ERROR_META]
        assert error["code"] in ("invalid_input", "conflict"), error  # never internal_error
        assert after == before, "a refused document stored nothing"
        return
    made = result.structured_content
    assert made is not None
    assert after[1] >= before[1], "an accepted document is a version"
    assert after[0] - before[0] in (0, 1) and after[1] - before[1] in (0, 1)
    stored = portal.call(store.definition, app.db, made["name"], made["version"])
    assert stored.name == made["name"]
    portal.call(store.archive, app.db, SYSTEM, made["name"])
    portal.call(store.delete, app.db, SYSTEM, made["name"])

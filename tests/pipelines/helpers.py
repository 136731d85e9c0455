"""Shared setup for pipeline tests: an app with a files root, and saving a pipeline from YAML text."""

from pathlib import Path
from typing import Any

from longtail_mcp import LongTail
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.records import PipelineInfo


def files_app(dsn: str, root: Path, **options: Any) -> LongTail:
    root.mkdir(parents=True, exist_ok=True)
    return LongTail(dsn, poll_seconds=0.1, lease_seconds=5, files_root=str(root), **options)


async def save(app: LongTail, text: str, actor: Principal = SYSTEM) -> PipelineInfo:
    return await store.save(app.db, actor, text, tools=await app.tool_catalog())


async def publish(app: LongTail, text: str) -> PipelineInfo:
    """Save, deploy and activate (forced: these tests verify separately)."""
    info = await save(app, text)
    if info.status == "draft":
        await store.deploy(app.db, SYSTEM, info.name)
    return await store.activate(app.db, SYSTEM, info.name, force=True)

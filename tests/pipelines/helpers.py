"""Shared setup for pipeline tests: an app with a files root, and saving a pipeline from YAML text."""

from pathlib import Path
from typing import Any

import anyio
import mcp.types as types

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


class ToolsChanged:
    """An MCP client's message handler that records `notifications/tools/list_changed`."""

    def __init__(self) -> None:
        self.got: list[str] = []
        self._event = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ServerNotification) and message.method == "notifications/tools/list_changed":
            self.got.append(message.method)
            self._event.set()

    async def wait(self, within: float = 10) -> None:
        """Until the next notification (one received since the last wait counts)."""
        with anyio.fail_after(within):
            await self._event.wait()
        self._event = anyio.Event()

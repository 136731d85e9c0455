"""The pipelines that ship with longtail-mcp (the repository's `pipelines/` folder), loaded as active at start-up."""

from pathlib import Path

import anyio

from longtail_mcp.db.pool import Database
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.checks import ToolLookup
from longtail_mcp.pipelines.records import PipelineInfo

# The repository's top-level pipelines/, reached through the symlink `shipped_yaml` beside this file; an
# installed wheel has the files themselves there (pyproject.toml package-data), so both find them.
SHIPPED = Path(__file__).parent / "shipped_yaml"


async def load_shipped(db: Database, tools: ToolLookup, directory: Path = SHIPPED) -> list[PipelineInfo]:
    """Save every `*.yaml` of `directory` (a new version when it changed) and serve its latest version. A
    shipped pipeline an operator archived stays archived."""
    texts = [path.read_text() for path in sorted(directory.glob("*.yaml"))] if directory.is_dir() else []  # noqa: ASYNC240 (a few small files, once at start-up)
    # Processes starting together (Claude Desktop starts every server of a config at once) load one at a time:
    # the session lock of one connection, held while the steps below use others.
    async with db.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext('longtail.shipped_pipelines'))")
        try:
            return await _load(db, tools, texts)
        finally:
            with anyio.CancelScope(shield=True):  # a pooled connection must not keep the lock
                await conn.execute("SELECT pg_advisory_unlock(hashtext('longtail.shipped_pipelines'))")


async def _load(db: Database, tools: ToolLookup, texts: list[str]) -> list[PipelineInfo]:
    loaded = []
    for text in texts:
        info = await store.save(db, SYSTEM, text, tools=tools, shipped=True)
        if info.status == "archived":
            continue
        if info.status == "draft":
            info = await store.deploy(db, SYSTEM, info.name)
        if info.status != "active" or info.active_version != info.version:
            info = await store.activate(db, SYSTEM, info.name, force=True)  # shipped: reviewed with the code
        loaded.append(info)
    return loaded

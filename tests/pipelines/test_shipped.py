"""The pipelines that ship in the repository's `pipelines/` folder: loaded as active at start-up (again
without a new version, an archived one left archived), and each does its job over the system servers."""

import json
from pathlib import Path

import pytest

from longtail_mcp import LongTail
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.pipelines import service as pipelines
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.shipped import SHIPPED, load_shipped
from tests.conftest import running
from tests.pipelines.helpers import files_app
from tests.servers.test_http_fetch_core import Site, site

pytestmark = pytest.mark.anyio
__all__ = ["site"]


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    return files_app(dsn, tmp_path / "files", http_allow=["127.0.0.1"])


async def test_shipped_pipelines_load_as_active_once_and_stay_archived_when_archived(app: LongTail) -> None:
    async with app:
        loaded = await load_shipped(app.db, await app.tool_catalog())
        names = {p.stem for p in SHIPPED.glob("*.yaml")}
        assert len(names) >= 3 and {p.name for p in loaded} == names
        assert all(p.status == "active" and p.active_version == 1 for p in loaded)
        await store.archive(app.db, SYSTEM, "health_snapshot")
        again = await load_shipped(app.db, await app.tool_catalog())
        assert {p.name for p in again} == names - {"health_snapshot"}
        assert all(p.version == 1 for p in again), "an unchanged file adds no version"
        assert (await store.get(app.db, "health_snapshot")).status == "archived"


async def test_each_shipped_pipeline_does_its_job(app: LongTail, site: Site) -> None:
    files = Path(app.settings.files_dir)
    async with running(app):
        await load_shipped(app.db, await app.tool_catalog())
        await ident.create_role(app.db, SYSTEM, "reviewer")
        await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="look at this")

        page = await pipelines.run(app.db, SYSTEM, "save_web_page", {"url": site.url("/html"), "path": "web/page.txt"})
        saved = await page.result(timeout=30)
        assert saved["path"] == "web/page.txt" and saved["title"] == "Local page"
        assert "Welcome" in (files / "web/page.txt").read_text()

        report = await pipelines.run(app.db, SYSTEM, "escalation_report", {"role": "reviewer", "path": "r.json"})
        assert (await report.result(timeout=30))["pending"] == 1
        written = json.loads((files / "r.json").read_text())
        assert written["role"] == "reviewer" and written["pending"][0]["message"] == "look at this"

        health = await pipelines.run(app.db, SYSTEM, "health_snapshot", {"path": "health.json"})
        assert (await health.result(timeout=30))["workers_alive"] >= 1
        snapshot = json.loads((files / "health.json").read_text())
        assert {"health", "runs"} <= set(snapshot)


def test_the_built_package_carries_the_shipped_pipelines(tmp_path: Path) -> None:
    """What a wheel would hold (setuptools' build_py, offline): the files themselves, where `SHIPPED` looks, so a
    package installed from a wheel, not from this checkout, loads the same pipelines."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "-d",
                    str(tmp_path)], cwd=root, check=True, capture_output=True, timeout=300)
    built = tmp_path / SHIPPED.relative_to(root)
    shipped = sorted((root / "pipelines").glob("*.yaml"))
    assert shipped and sorted(p.name for p in built.glob("*.yaml")) == [p.name for p in shipped]
    for path in shipped:
        copy = built / path.name
        assert not copy.is_symlink() and copy.read_bytes() == path.read_bytes()

"""Headless Chromium driven by Playwright for Python, for the web view's browser tests.

Chromium is the system one (Debian's `chromium` package, or `LONGTAIL_CHROMIUM`), never a browser Playwright
downloads. Without Chromium or Playwright the tests are skipped, and the reason is printed in pytest's summary.
Screenshots go to `$LONGTAIL_TEST_ARTIFACTS/screenshots`, else `test-artifacts/screenshots` in the repository.
"""

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Root needs --no-sandbox; the rest keep Chromium from reaching anything but the server under test.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1100, "height": 800}


def chromium_path() -> str | None:
    """`LONGTAIL_CHROMIUM` when set, else Debian's /usr/bin/chromium, else a `chromium` on PATH."""
    named = os.environ.get("LONGTAIL_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError as exc:
        return f"no Playwright for Python ({exc}): pip install -e '.[test]'"
    if chromium_path() is None:
        named = os.environ.get("LONGTAIL_CHROMIUM")
        where = f"LONGTAIL_CHROMIUM={named} is not executable" if named else "no /usr/bin/chromium, none on PATH"
        return f"no Chromium ({where}): apt-get install chromium, or set LONGTAIL_CHROMIUM"
    return None


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium (a Playwright `Browser`). The tests that use it are skipped, with `missing()`'s
    reason, where there is none to be had."""
    reason = missing()
    if reason is not None:
        raise RuntimeError(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


def artifacts() -> Path:
    """Where screenshots go (made on first use)."""
    base = os.environ.get("LONGTAIL_TEST_ARTIFACTS")
    path = (Path(base) if base else ROOT / "test-artifacts") / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def screenshot(target: Any, name: str) -> Path:
    """Save a page (all of it) or one element (a Playwright `Locator`) as `<artifacts>/<name>.png`."""
    path = artifacts() / f"{name}.png"
    whole = {"full_page": True} if hasattr(target, "goto") else {}  # only a Page can go somewhere
    await target.screenshot(path=str(path), **whole)
    return path

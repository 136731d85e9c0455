"""Small waiting helpers for runtime tests (bounded, never bare sleeps)."""

from typing import Any

import anyio

from longtail_mcp import NotFound


async def wait_status(handle: Any, status: str, timeout: float = 10) -> dict:
    """Poll until the run exists and has `status`; fail after `timeout` seconds."""
    with anyio.fail_after(timeout):
        while True:
            try:
                info = await handle.info()
                if info["status"] == status:
                    return info
            except NotFound:
                pass
            await anyio.sleep(0.02)

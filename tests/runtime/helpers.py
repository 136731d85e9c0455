"""Small waiting helpers for runtime tests (bounded, never bare sleeps)."""

import inspect
from collections.abc import Callable
from typing import Any

import anyio

from longtail_mcp import NotFound


async def wait_status(handle: Any, status: str, within: float = 10) -> dict:
    """Poll until the run exists and has `status`; fail after `within` seconds."""
    with anyio.fail_after(within):
        while True:
            try:
                info = await handle.info()
                if info["status"] == status:
                    return info
            except NotFound:
                pass
            await anyio.sleep(0.02)


async def until(condition: Callable[[], Any], within: float = 10, every: float = 0.02) -> Any:
    """Poll `condition()` (plain or async) until it returns something truthy, and return that; fail after
    `within` seconds. For state that offers nothing to wait on: a worker's flag, rows another process writes."""
    with anyio.fail_after(within):
        while True:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await anyio.sleep(every)

"""What the database benchmarks share: a throwaway embedded Postgres, and timing cases against a baseline.

Imported by a bench script after it has moved bench/ to the end of sys.path (bench/mcp.py would hide the
MCP SDK otherwise).
"""

import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio


def on_throwaway_postgres(main: Callable[..., Awaitable[None]], *args: Any) -> None:
    """`anyio.run(main, home, port, *args)` with `home` a new temp LONGTAIL_HOME and `port` a free one for its
    embedded Postgres; the home (and a cluster relocated for root) is removed afterwards. `main` stops the
    database itself (`keeper.stop(..., force=True)`), while its app is still open."""
    home = Path(tempfile.mkdtemp(prefix="longtail-bench-"))
    home.chmod(0o755)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    try:
        anyio.run(main, home, port, *args)
    finally:
        cluster = home / "pgdata"
        if cluster.is_symlink():
            shutil.rmtree(cluster.resolve().parent, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


async def compare(rounds: int, baseline: tuple[str, Callable[[], Awaitable[Any]]],
                  now: tuple[str, Callable[[], Awaitable[Any]]]) -> float:
    """Time `rounds` calls of each case, print each one's median, and return how many times faster `now` is
    than `baseline` (both measured here, in the same run)."""
    medians = []
    for label, fn in (baseline, now):
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            await fn()
            times.append(time.perf_counter() - t)
        medians.append(statistics.median(times))
        print(f"{label}: p50 {medians[-1] * 1000:.2f} ms")
    return medians[0] / medians[1]

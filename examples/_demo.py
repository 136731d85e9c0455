"""What the examples share: DATABASE_URL when set, else a throwaway embedded Postgres in a temp home.

Not part of the library; a real program just writes `app = LongTail()`.
"""

import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from longtail_mcp import LongTail, load_settings
from longtail_mcp.db import keeper

_apps: list[LongTail] = []


def demo_app(name: str) -> LongTail:
    """The example's app: on DATABASE_URL, or on an embedded Postgres in a new temp LONGTAIL_HOME.

    The temp home is mode 700: as root, Postgres runs as `longtail-pg`, which cannot enter it, so
    the launcher puts the cluster under /var/lib/longtail-mcp/clusters and links it from there
    (README: Running as root).
    """
    if load_settings().database_url is not None:
        return LongTail()
    home = Path(tempfile.mkdtemp(prefix=f"longtail-{name}-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = LongTail(home=home, pg_port=port)
    _apps.append(app)
    return app


def run(main: Callable[[], Awaitable[None]]) -> None:
    """anyio.run(main), then stop the temp homes' databases and remove them (and a cluster relocated for root)."""
    try:
        anyio.run(main)
    finally:
        for app in _apps:
            keeper.stop(app.settings, force=True)  # the throwaway database goes now, not once idle
            home = app.settings.home
            cluster = home / "pgdata"
            if cluster.is_symlink():
                shutil.rmtree(cluster.resolve().parent, ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)

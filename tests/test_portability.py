"""Claude Desktop runs on macOS and Windows: importing longtail_mcp (and the servers) and running against a
DATABASE_URL must not need POSIX-only modules or Linux's libc at import time. A subprocess with `pwd`,
`grp`, `resource` and `termios` made unavailable, and no C library to open, imports the whole
package, runs a workflow, and is told plainly that the embedded Postgres is not for its platform."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = textwrap.dedent("""
    import ctypes, sys
    for name in ("pwd", "grp", "resource", "termios"):  # (fcntl: the mcp SDK guards it by sys.platform)
        sys.modules[name] = None  # `import pwd` now raises ImportError, as on Windows

    def no_libc(*args, **kwargs):
        raise OSError("no C library here")

    ctypes.CDLL = no_libc
    import anyio
    import longtail_mcp
    import longtail_mcp.cli
    import system_servers
    from longtail_mcp import LongTail
    from longtail_mcp.db import embedded
    from longtail_mcp.errors import ConfigurationError

    app = LongTail()

    @app.workflow()
    async def hello(ctx, name):
        return await ctx.run(lambda: f"hello {name}")

    async def main():
        async with app, anyio.create_task_group() as tg:
            await tg.start(app.worker().run)
            print((await app.start("hello", "windows")).workflow_id and "started")
            print(await (await app.start("hello", "mac")).result(timeout=30))
            tg.cancel_scope.cancel()

    anyio.run(main)
    sys.platform = "win32"
    try:
        embedded.supported()
    except ConfigurationError as exc:
        print("embedded:", exc)
""")


def test_the_package_imports_and_runs_without_posix_only_modules(dsn: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGTAIL_")}
    env.update(DATABASE_URL=dsn, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "started", "hello mac",
        "embedded: the embedded Postgres does not run on win32: set DATABASE_URL to a PostgreSQL server "
        "(docs/deploy.md)"]

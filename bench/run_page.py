"""Run page benchmark: what a run's page reads to show its child runs.

    python bench/run_page.py [--n 300] [--rounds 20]

Runs a parent that starts `--n` child runs, on a throwaway embedded Postgres (a temp LONGTAIL_HOME,
stopped and removed afterwards; DATABASE_URL is ignored), as an ordinary account (so the visibility
rule applies), then times, in the same run:
  baseline  one `Runs.get(child)` per child the journal names (what the page did before)
  related   one `Runs.related(parent, ids)`: the children and the hooks in one query (what it does now)
and prints the median of `--rounds` of each.
"""

import argparse
import sys
import time
from pathlib import Path

# bench/ holds mcp.py: first on sys.path it would hide the MCP SDK the servers import. Last, it still gives
# _throwaway.
HERE = Path(__file__).resolve().parent
sys.path[:] = [*(p for p in sys.path if Path(p or ".").resolve() != HERE), str(HERE)]

import anyio  # noqa: E402
from _throwaway import compare, on_throwaway_postgres  # noqa: E402

from longtail_mcp import Context, LongTail  # noqa: E402
from longtail_mcp.db import keeper  # noqa: E402
from longtail_mcp.humans import identity  # noqa: E402
from longtail_mcp.humans.identity import SYSTEM  # noqa: E402


async def main(home: Path, port: int, n: int, rounds: int) -> None:
    app = LongTail(home=home, pg_port=port, database_url=None)

    @app.workflow()
    async def part(ctx: Context, i: int) -> int:
        return i

    @app.workflow()
    async def fan_out(ctx: Context, n: int) -> int:
        return sum(await ctx.gather(*(ctx.child("part", i) for i in range(n))))

    try:
        async with app:
            await identity.create_account(app.db, SYSTEM, "rita")
            rita = await identity.get_principal(app.db, "rita")
            runs = app.runs(rita)
            t = time.perf_counter()
            async with anyio.create_task_group() as tg:
                await tg.start(app.worker().run)
                handle = await app.start("fan_out", n, principal=rita)
                await handle.result(timeout=600)
                tg.cancel_scope.cancel()
            print(f"setup: a run with {n} children, {time.perf_counter() - t:.1f} s")
            history = await runs.export(handle.workflow_id)
            ids = [s.input["workflow_id"] for s in history.steps if s.kind == "child"]
            assert len(ids) == n

            async def one_by_one() -> None:
                for child in ids:
                    await runs.get(child)

            faster = await compare(rounds, ("baseline one get per child", one_by_one),
                                   ("related  one query", lambda: runs.related(handle.workflow_id, ids)))
            print(f"related is {faster:.0f}x faster than the baseline at {n} children")
    finally:
        await anyio.to_thread.run_sync(lambda: keeper.stop(app.settings, force=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20)
    options = parser.parse_args()
    on_throwaway_postgres(main, options.n, options.rounds)

"""Pipeline tool lookup benchmark: what a call of an active pipeline's MCP tool reads to find it.

    python bench/pipeline_tools.py [--n 1000] [--rounds 30]

Creates `--n` active pipelines on a throwaway embedded Postgres (a temp LONGTAIL_HOME, stopped and
removed afterwards; DATABASE_URL is ignored), then times, in the same run:
  baseline  `store.active_tools(db)`: every active pipeline with its definition (what a tools/list
            reads, and what the gateway's PipelineTools.call read to find one tool before)
  lookup    `store.active_tool(db, name)`: the one row a call reads now
and prints the median of `--rounds` of each. Then a gateway's tools/list of them (`PipelineTools.tools`):
  baseline  a fresh PipelineTools each time: every active pipeline read and made a tool
  kept      one PipelineTools: the tools it kept, after one read of `pipeline_stamp`
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

from longtail_mcp import LongTail  # noqa: E402
from longtail_mcp.db import keeper  # noqa: E402
from longtail_mcp.humans.identity import SYSTEM  # noqa: E402
from longtail_mcp.pipelines import store  # noqa: E402
from system_servers.runnables import PipelineTools  # noqa: E402

Y = """name: p{i}
description: Write a greeting {i}
input_schema: {{type: object, required: [who], properties: {{who: {{type: string}}}}}}
steps:
  - id: save
    tool: files/write_file
    args: {{path: "hello-{{{{ inputs.who }}}}-{i}.txt", content: "hello {{{{ inputs.who }}}}"}}
output: {{path: "{{{{ steps.save.path }}}}"}}
"""


async def main(home: Path, port: int, n: int, rounds: int) -> None:
    app = LongTail(home=home, pg_port=port, database_url=None)
    try:
        async with app:
            tools = await app.tool_catalog()
            t = time.perf_counter()
            for i in range(n):
                await store.save(app.db, SYSTEM, Y.format(i=i), tools=tools)
                await store.deploy(app.db, SYSTEM, f"p{i}")
                await store.activate(app.db, SYSTEM, f"p{i}", force=True)
            print(f"setup {n} active pipelines: {time.perf_counter()-t:.1f} s")
            faster = await compare(rounds,
                                   ("baseline active_tools (all, pick one)", lambda: store.active_tools(app.db)),
                                   ("lookup   active_tool(name)", lambda: store.active_tool(app.db, f"p{n // 2}")))
            print(f"lookup is {faster:.0f}x faster than the baseline at {n} active pipelines")
            # tools/list through the gateway: every active pipeline read and made a tool (a fresh PipelineTools,
            # the baseline), against the tools kept while pipeline_stamp is unchanged.
            kept = PipelineTools(app)
            assert len(await kept.tools(SYSTEM)) == len(await PipelineTools(app).tools(SYSTEM)) == n
            faster = await compare(rounds,
                                   ("baseline tools/list, read every time", lambda: PipelineTools(app).tools(SYSTEM)),
                                   ("kept     tools/list, stamp unchanged", lambda: kept.tools(SYSTEM)))
            print(f"a kept tools/list is {faster:.0f}x faster at {n} active pipelines")
    finally:
        await anyio.to_thread.run_sync(lambda: keeper.stop(app.settings, force=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    options = parser.parse_args()
    on_throwaway_postgres(main, options.n, options.rounds)

"""A tiny app for the CLI tests: `longtail-mcp serve --app tests.apps.cli_app:app`."""

from typing import Any

from longtail_mcp import Context, LongTail

app = LongTail()


def double(n: int) -> int:
    return n * 2


def square(n: int) -> int:
    return n * n


@app.workflow()
async def tally(ctx: Context, n: int) -> dict[str, Any]:
    doubled = await ctx.run(double, n)
    squared = await ctx.run(square, doubled)
    return {"n": n, "doubled": doubled, "squared": squared}

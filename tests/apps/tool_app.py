"""A workflow that calls a registered MCP server's tool as durable steps (worker-process tests)."""

from longtail_mcp import LongTail

app = LongTail()


@app.workflow("relay")
async def relay(ctx, texts):
    first = await ctx.call_tool("echo/echo", {"text": texts[0]}, retries=1)
    await ctx.wait_for_signal("go")
    second = await ctx.call_tool("echo/echo", {"text": texts[1]}, retries=1)
    return [first, second]

"""A workflow on a per-second cron schedule, for multi-process scheduler tests."""

from longtail_mcp import LongTail

app = LongTail()


@app.workflow("tick", cron="* * * * * *")
async def tick(ctx):
    return "tock"

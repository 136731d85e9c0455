"""Safe system servers: a run's refused tool call becomes an approval, then goes through once.

A workflow writes a report and a `.env` file through the files server, and asks db-query how many
runs there are. The report and the query go through; `.env` is on the deny list, so the run asks
the `approver` role and waits durably. Here a person (the script, acting as `olga`) approves it, and
the write happens exactly once. A second run's request is declined, and it gets the reason.

    python examples/guarded_tools.py
"""

import os
import tempfile
from pathlib import Path
from typing import Any

from _demo import demo_app, run

from longtail_mcp import Context, PolicyDenied
from longtail_mcp.humans import escalations, identity, inbox
from longtail_mcp.humans.identity import SYSTEM

root = Path(tempfile.mkdtemp(prefix="longtail-files-"))
os.environ["LONGTAIL_FILES_ROOT"] = str(root)  # the files server's root (default ~/.longtail-mcp/files)
app = demo_app("guarded")


@app.workflow("rotate")
async def rotate(ctx: Context, token: str) -> dict[str, Any]:
    runs = await ctx.call_tool("db-query/run_sql", {"sql": "SELECT count(*) AS runs FROM workflow"})
    report = await ctx.call_tool("files/write_file", {"path": "reports/rotation.txt", "make_dirs": True,
                                                      "content": f"runs so far: {runs['rows'][0][0]}\n"})
    try:  # .env is denied by policy: the run waits for an approver instead of failing
        env = await ctx.call_tool("files/write_file", {"path": ".env", "content": f"TOKEN={token}\n"})
    except PolicyDenied as refused:
        return {"report": report["path"], "env": None, "refused": refused.message}
    return {"report": report["path"], "env": env["path"]}


async def decide(olga: Any, approved: bool, reason: str) -> None:
    """Act as the approver: wait for the next approval request, show it, decide."""
    import anyio

    with anyio.fail_after(30):
        # Like a person, the approver looks at the inbox now and then.
        while not (pending := await inbox.find_escalations(app.db, olga, role="approver", status="pending")):  # noqa: ASYNC110
            await anyio.sleep(0.1)
    request = pending[0]
    print(f"approval asked: {request['data']['tool']} {request['data']['arguments']['path']!r} "
          f"(rule {request['data']['rule']})")
    await escalations.resolve(app.db, olga, request["id"], {"approved": approved, "reason": reason})


async def main() -> None:
    import anyio

    async with app, anyio.create_task_group() as tg:
        await tg.start(app.worker().run)
        await identity.create_account(app.db, SYSTEM, "olga")
        await identity.set_membership(app.db, SYSTEM, "approver", "olga")
        olga = await identity.get_principal(app.db, "olga")

        first = await app.start("rotate", "s3cr3t")
        await decide(olga, True, "rotation ticket OPS-7")
        print("approved run:", await first.result(timeout=60))
        print(".env now holds:", (root / ".env").read_text().strip())

        second = await app.start("rotate", "other")
        await decide(olga, False, "no ticket")
        print("declined run:", await second.result(timeout=60))
        print(".env still holds:", (root / ".env").read_text().strip())
        steps = [(s["kind"], s["name"], s["status"]) for s in (await first.export())["steps"]]
        print("journal of the approved run:", steps)
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    try:
        run(main)
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)

"""The closed loop from a request: an agent does it once, then a pipeline does it with no model.

The `query` router gets "save a report of open escalations for role reviewer to reports/reviewer.json".
No pipeline fits, so the agent loop runs: the scripted model (a local Messages API server, reached
through the real anthropic SDK; no key, no network) looks the escalations up with db-query and writes
them with files. The closed-loop policy `activate` compiles that run into a pipeline, verifies it and
publishes it as an MCP tool. The same request for another role then matches the pipeline's prompt
template and runs it: zero model calls.

    python examples/agents.py
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
from _demo import demo_app, run

from longtail_mcp.agents import closed_loop
from longtail_mcp.humans import escalations, identity
from longtail_mcp.humans.identity import SYSTEM

root = Path(tempfile.mkdtemp(prefix="longtail-files-"))
os.environ["LONGTAIL_FILES_ROOT"] = str(root)
os.environ["LONGTAIL_LLM_PROVIDER"] = "scripted"  # LONGTAIL_LLM_PROVIDER=anthropic + ANTHROPIC_API_KEY: a real model
os.environ["LONGTAIL_LLM_SCRIPT"] = str(Path(__file__).resolve().parents[1] / "longtail_mcp" / "agents" / "scripts"
                                        / "report.yaml")
app = demo_app("agents")


def show(label: str, result: dict[str, Any]) -> None:
    print(f"{label}: path={result['path']} llm_calls={result['llm_calls']} status={result['status']}")
    print(f"  why: {result['why']}")
    if result.get("compiled"):
        compiled = result["compiled"]
        print(f"  compiled: {compiled['pipeline']} v{compiled['version']} {compiled['status']}"
              f" (verified: {compiled['verified']})")


async def main() -> None:
    async with app, anyio.create_task_group() as tg:
        await tg.start(app.worker().run)
        await identity.create_role(app.db, SYSTEM, "reviewer")
        for role, message in (("reviewer", "check invoice 7"), ("approver", "pay invoice 7")):
            await escalations.create_escalation(app.db, SYSTEM, role=role, message=message)
        await closed_loop.set_policy(app.db, SYSTEM, "activate", router="query")

        first = await app.start("query", {"request": "save a report of open escalations for role reviewer "
                                                     "to reports/reviewer.json"})
        show("first", await first.result(timeout=120))
        second = await app.start("query", {"request": "save a report of open escalations for role approver "
                                                      "to reports/approver.json"})
        result = await second.result(timeout=120)
        show("second", result)
        print("  answer:", result["output"]["answer"])
        for name in ("reviewer", "approver"):
            saved = json.loads((root / "reports" / f"{name}.json").read_text())
            print(f"reports/{name}.json:", [e["message"] for e in saved["escalations"]])
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    run(main)

"""mcpTriage, offline: a role's escalation strategy hands new escalations to the triage router; the triage
agent (the scripted model through the real anthropic SDK) does the work and resolves the escalation, the
fix compiles into a pipeline, and the next such escalation is resolved by that pipeline with no model call.
Re-routing, leaving findings for a person, a refused resolution, approvals and custom handlers, too."""

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from mcp import Client as McpClient

from longtail_mcp import Context, LongTail
from longtail_mcp.agents import closed_loop, triage
from longtail_mcp.agents.scripted import ScriptedServer
from longtail_mcp.errors import Forbidden, InvalidInput
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.mcp_glue.server import fixed_principal
from longtail_mcp.pipelines import store
from system_servers.human_queue import server as human_queue
from tests.conftest import running
from tests.humans.helpers import eventually
from tests.pipelines.helpers import files_app

pytestmark = pytest.mark.anyio

SCRIPT = Path(__file__).resolve().parents[2] / "longtail_mcp" / "agents" / "scripts" / "report.yaml"
MISSING = "The weekly report is missing: save a report of open escalations for role {role} to reports/{role}.json"
FORM = {"type": "object", "required": ["saved"], "properties": {"saved": {"type": "string"}}}


@pytest.fixture
def app(dsn: str, tmp_path: Path) -> LongTail:
    return files_app(dsn, tmp_path / "files", llm_provider="scripted")


async def resolved(app: LongTail, escalation_id: str) -> Any:
    async def check() -> Any:
        row = await esc.get_escalation(app.db, SYSTEM, escalation_id)
        return row if row.status == "resolved" else None

    return await eventually(check, 60)


async def test_triage_resolves_an_escalation_its_fix_compiles_and_the_next_one_needs_no_model(
        app: LongTail) -> None:
    with ScriptedServer(SCRIPT) as model:
        app.settings.llm_base_url = model.url
        async with running(app):
            for role in ("ops", "reviewer"):
                await ident.create_role(app.db, SYSTEM, role)
            await ident.add_form(app.db, SYSTEM, "ops", FORM)
            for role, message in (("reviewer", "check invoice 7"), ("approver", "pay 7")):
                await esc.create_escalation(app.db, SYSTEM, role=role, message=message)
            await triage.set_strategy(app.db, SYSTEM, "ops", "triage")
            await closed_loop.set_policy(app.db, SYSTEM, "activate", router="triage")

            first = await esc.create_escalation(app.db, SYSTEM, role="ops", message=MISSING.format(role="reviewer"))
            done = await resolved(app, first.id)
            run = await app.handle(triage.strategy_run_id("ops", first.id)).result(timeout=60)
            history = await esc.history(app.db, SYSTEM, first.id)

            model.reset()
            second = await esc.create_escalation(app.db, SYSTEM, role="ops", message=MISSING.format(role="approver"))
            again = await resolved(app, second.id)
            routed = await app.handle(triage.strategy_run_id("ops", second.id)).result(timeout=60)
            pipeline = await store.get(app.db, run["compiled"]["pipeline"])
        files = Path(app.settings.files_dir)

    assert (run["path"], run["decision"], run["llm_calls"]) == ("agent", "resolved", 4), run
    assert done.resolution == {"saved": "reports/reviewer.json"} and done.resolved_by == "system"
    assert [h["action"] for h in history] == ["escalation.create", "escalation.strategy", "escalation.resolve"]
    assert history[1]["data"] == {"strategy": "triage", "run": triage.strategy_run_id("ops", first.id)}
    assert history[2]["reason"].startswith(f"triaged by run {triage.strategy_run_id('ops', first.id)}")
    assert [e["message"] for e in json.loads((files / "reports/reviewer.json").read_text())["escalations"]] == [
        "check invoice 7"]
    assert run["compiled"]["status"] == "active" and run["compiled"]["verified"] is True, run["compiled"]
    assert pipeline.prompt_template == ("The weekly report is missing: save a report of open escalations for role "
                                        "{role} to {path}")

    assert (routed["path"], routed["decision"], routed["llm_calls"]) == ("template", "resolved", 0), routed
    assert model.requests == [], "the second escalation asked the model nothing"
    assert again.resolution == {"saved": "reports/approver.json"}
    assert [e["message"] for e in json.loads((files / "reports/approver.json").read_text())["escalations"]] == [
        "pay 7"]


DECIDING = """\
    model: scripted
    turns:
      - name: reroute
        when: {request: "refund the money", last_tool: none}
        reply:
          - tool: reroute
            input: {role: finance, reason: "it is about money"}
      - name: wrong_form
        when: {request: "fill in the form", last_tool: none}
        reply:
          - tool: resolve
            input: {resolution: {saved: 7}}
      - name: then_leave
        when: {last_tool: resolve, error: true}
        reply:
          - tool: leave_for_person
            input: {findings: "I could not fill the form: ${last_result}"}
      - name: unsure
        when: {last_tool: none}
        reply:
          - text: "I looked and I am not sure what is wanted."
    """


async def test_triage_reroutes_leaves_findings_for_a_person_and_never_decides_an_approval(
        app: LongTail, tmp_path: Path) -> None:
    script = tmp_path / "deciding.yaml"
    script.write_text(textwrap.dedent(DECIDING))
    with ScriptedServer(script) as model:
        app.settings.llm_base_url = model.url
        async with running(app):
            for role in ("ops", "finance"):
                await ident.create_role(app.db, SYSTEM, role)
            await ident.add_form(app.db, SYSTEM, "ops", FORM)
            items = {key: await esc.create_escalation(app.db, SYSTEM, role="ops", message=message)
                     for key, message in (("money", "refund the money to ACME"), ("form", "fill in the form"),
                                          ("vague", "something odd happened"))}
            approval = await esc.create_escalation(app.db, SYSTEM, role="ops", message="may I?", type="approval")
            results = {}
            async with McpClient(human_queue.build(app, fixed_principal(SYSTEM))) as client:
                for key, item in [*items.items(), ("approval", approval)]:
                    called = await client.call_tool("triage_escalation", {"escalation_id": item.id})
                    assert not called.is_error and called.structured_content["done"], called.content[0].text
                    results[key] = called.structured_content["result"]
                bad = await client.call_tool("triage_escalation", {"escalation_id": ""})
                history = (await client.call_tool("escalation_history", {"escalation_id": items["form"].id}))
            rows = {key: await esc.get_escalation(app.db, SYSTEM, item.id) for key, item in items.items()}

    assert results["money"]["decision"] == "rerouted" and rows["money"].role == "finance"
    assert rows["money"].status == "pending", "finance's strategy is the default: a person decides"
    assert results["form"]["decision"] == "left" and rows["form"].status == "pending"
    assert "the resolution does not match the form" in rows["form"].metadata["triage"]["findings"]
    assert [r["_rule"] for r in model.requests if "fill in the form" in json.dumps(r["messages"][0])] == [
        "wrong_form", "then_leave"], "the refused resolution went back to the model"
    assert results["vague"]["decision"] == "left"
    assert rows["vague"].metadata["triage"]["findings"] == "I looked and I am not sure what is wanted."
    assert (results["approval"]["decision"], results["approval"]["why"]) == ("skipped",
                                                                            "approvals are decided by people")
    assert bad.is_error and "escalation_id" in bad.content[0].text
    assert [h["action"] for h in history.structured_content["history"]] == [
        "escalation.create", "escalation.annotate"]


async def test_a_role_can_hand_its_escalations_to_a_custom_handler(app: LongTail) -> None:
    @app.workflow("refunds")
    async def refunds(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
        return await ctx.call_tool("human-queue/resolve_escalation", {
            "escalation_id": input["escalation_id"], "resolution": {"refunded": True}, "reason": "refund bot"})

    async with running(app):
        await ident.create_role(app.db, SYSTEM, "refunds-desk")
        await ident.create_account(app.db, SYSTEM, "mia")
        await ident.set_membership(app.db, SYSTEM, "refunds-desk", "mia")
        mia = await ident.get_principal(app.db, "mia")
        with pytest.raises(Forbidden):
            await triage.set_strategy(app.db, mia, "refunds-desk", "triage")
        with pytest.raises(InvalidInput, match="unknown strategy 'refund'"):
            await triage.set_strategy(app.db, SYSTEM, "refunds-desk", "refund", known=app.registry.names())
        await triage.set_strategy(app.db, SYSTEM, "refunds-desk", "refunds", known=app.registry.names())
        item = await esc.create_escalation(app.db, SYSTEM, role="refunds-desk", message="refund order 9")
        done = await resolved(app, item.id)
        strategies = {s["role"]: s["strategy"] for s in await triage.list_strategies(app.db)}
        history = [h["action"] for h in await esc.history(app.db, SYSTEM, item.id)]
        started = await triage.dispatch(app.db)
    assert done.resolution == {"refunded": True} and strategies["refunds-desk"] == "refunds"
    assert strategies["approver"] == "default"
    assert history == ["escalation.create", "escalation.strategy", "escalation.resolve"]
    assert started == 0, "an escalation is handed to its strategy once"

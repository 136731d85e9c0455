"""The audit log: every escalation and identity change appends who/what/before/after; it is append-only."""

import psycopg
import pytest

from longtail_mcp import Conflict, LongTail, NotFound
from longtail_mcp.humans import certified
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from tests.humans.helpers import sql_exec, sql_one

pytestmark = pytest.mark.anyio
FORM = {"type": "object"}


def brief(row: dict) -> tuple:
    return (row["actor"], row["action"], row["object_type"], row["object_id"], row["before_status"],
            row["after_status"], row["reason"])


async def test_every_escalation_and_identity_change_is_exported_in_order(app: LongTail) -> None:
    async with app:
        db = app.db
        await ident.create_role(db, SYSTEM, "reviewer")
        await ident.create_role(db, SYSTEM, "legal")
        await ident.create_account(db, SYSTEM, "rita")
        await ident.create_account(db, SYSTEM, "adm")
        await ident.set_membership(db, SYSTEM, "reviewer", "adm", "admin")
        adm = await ident.get_principal(db, "adm")
        await ident.set_membership(db, adm, "reviewer", "rita")
        await ident.add_form(db, adm, "reviewer", FORM)
        await ident.set_chain(db, adm, "reviewer", 600, "legal")
        rita = await ident.get_principal(db, "rita")
        key = await ident.create_key(db, rita, "rita")
        await ident.revoke_key(db, rita, key["id"])
        await esc.create_escalation(db, rita, role="reviewer", message="a", escalation_id="e1",
                                    action=("t", {"x": 1}))
        await esc.claim(db, rita, "e1")
        await esc.release(db, rita, "e1")
        await esc.claim(db, rita, "e1")
        await esc.resolve(db, rita, "e1", {"approved": True}, reason="looks fine")
        await esc.use_approval(db, "e1", "t", {"x": 1})
        await esc.create_escalation(db, SYSTEM, role="reviewer", message="b", escalation_id="e2")
        await esc.cancel(db, adm, "e2", reason="duplicate")
        await esc.create_escalation(db, SYSTEM, role="reviewer", message="c", escalation_id="e3")
        await esc.reroute(db, rita, "e3", "legal", reason="legal question")
        await ident.remove_membership(db, adm, "reviewer", "rita")

        rows = await ident.export_audit(db, SYSTEM)
        assert [brief(r) for r in rows] == [
            ("system", "role.create", "role", "reviewer", None, None, None),
            ("system", "role.create", "role", "legal", None, None, None),
            ("system", "account.create", "account", "rita", None, "active", None),
            ("system", "account.create", "account", "adm", None, "active", None),
            ("system", "role.member.set", "role", "reviewer", None, "admin", None),
            ("adm", "role.member.set", "role", "reviewer", None, "member", None),
            ("adm", "role.form", "role", "reviewer", None, None, None),
            ("adm", "role.chain", "role", "reviewer", None, None, None),
            ("rita", "key.create", "api_key", key["id"], None, "active", None),
            ("rita", "key.revoke", "api_key", key["id"], "active", "revoked", None),
            ("rita", "escalation.create", "escalation", "e1", None, "pending", None),
            ("rita", "escalation.claim", "escalation", "e1", "pending", "pending", None),
            ("rita", "escalation.release", "escalation", "e1", "pending", "pending", None),
            ("rita", "escalation.claim", "escalation", "e1", "pending", "pending", None),
            ("rita", "escalation.resolve", "escalation", "e1", "pending", "resolved", "looks fine"),
            ("system", "escalation.approval.use", "escalation", "e1", None, None, None),
            ("system", "escalation.create", "escalation", "e2", None, "pending", None),
            ("adm", "escalation.cancel", "escalation", "e2", "pending", "cancelled", "duplicate"),
            ("system", "escalation.create", "escalation", "e3", None, "pending", None),
            ("rita", "escalation.reroute", "escalation", "e3", "pending", "pending", "legal question"),
            ("adm", "role.member.remove", "role", "reviewer", "member", None, None),
        ]
        ids = [r["id"] for r in rows]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
        by_action = {r["action"]: r["data"] for r in rows}
        assert by_action["role.member.remove"] == {"account": "rita"}
        assert by_action["escalation.reroute"] == {"from": "reviewer", "to": "legal"}
        assert by_action["role.form"] == {"version": 1}
        assert [brief(r) for r in await ident.export_audit(db, SYSTEM, after=ids[-3])] == [brief(r) for r in rows[-2:]]
        assert len(await ident.export_audit(db, SYSTEM, limit=5)) == 5


async def test_failed_changes_leave_no_audit_record(app: LongTail) -> None:
    async with app:
        db = app.db
        await ident.create_role(db, SYSTEM, "reviewer")
        before = len(await ident.export_audit(db, SYSTEM))
        with pytest.raises(Conflict):
            await ident.create_role(db, SYSTEM, "reviewer")
        with pytest.raises(NotFound):
            await ident.set_membership(db, SYSTEM, "reviewer", "nobody")
        with pytest.raises(NotFound):
            await esc.create_escalation(db, SYSTEM, role="ghost", message="m")
        assert len(await ident.export_audit(db, SYSTEM)) == before


@pytest.mark.parametrize("statement", [
    "UPDATE audit SET actor = 'mallory'",
    "UPDATE audit SET reason = 'rewritten' WHERE action = 'role.create'",
    "DELETE FROM audit",
    "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)",
])
async def test_the_audit_log_refuses_update_and_delete(app: LongTail, statement: str) -> None:
    async with app:
        await ident.create_role(app.db, SYSTEM, "reviewer")
        await ident.create_account(app.db, SYSTEM, "rita")
        before = await ident.export_audit(app.db, SYSTEM)
        with pytest.raises(psycopg.Error, match="append-only"):
            await sql_exec(app.db, statement)
        assert await ident.export_audit(app.db, SYSTEM) == before


async def test_the_audit_log_cannot_be_truncated(app: LongTail) -> None:
    async with app:
        await ident.create_role(app.db, SYSTEM, "reviewer")
        with pytest.raises(psycopg.Error, match="append-only"):
            await sql_exec(app.db, "TRUNCATE audit")
        assert (await sql_one(app.db, "SELECT count(*) AS n FROM audit"))["n"] == 1


async def test_certifying_a_workflow_type_is_audited(app: LongTail) -> None:
    async with app:
        await ident.create_role(app.db, SYSTEM, "reviewer")
        await certified.certify(app.db, SYSTEM, "invoice", role="reviewer")
        rows = [r for r in await ident.export_audit(app.db, SYSTEM) if r["object_id"] == "invoice"]
        assert len(rows) == 1 and rows[0]["actor"] == "system"

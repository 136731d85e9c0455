"""Role forms are versioned; an escalation pins the version current when it was made, and a
resolution that fails the pinned form is refused without touching the claim."""

import pytest

from longtail_mcp import InvalidInput, LongTail, NotFound
from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from tests.humans.helpers import audit_of, make_roles, person

pytestmark = pytest.mark.anyio

V1 = {"type": "object", "required": ["approved"], "properties": {"approved": {"type": "boolean"}}}
V2 = {"type": "object", "required": ["approved", "comment"],
      "properties": {"approved": {"type": "boolean"}, "comment": {"type": "string", "minLength": 3}}}


async def test_forms_are_versioned_and_an_escalation_pins_the_current_version(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        assert (await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m"))["form_version"] is None
        assert await ident.add_form(app.db, SYSTEM, "reviewer", V1) == 1
        old = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="old")
        assert await ident.add_form(app.db, SYSTEM, "reviewer", V2) == 2
        new = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="new")
        assert (old["form_version"], old["form_schema"]) == (1, V1)
        assert (new["form_version"], new["form_schema"]) == (2, V2)
        (role,) = [r for r in await ident.list_roles(app.db) if r["name"] == "reviewer"]
        assert role["form_version"] == 2


async def test_a_payload_valid_for_the_pinned_version_is_accepted_though_a_newer_form_rejects_it(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        await ident.add_form(app.db, SYSTEM, "reviewer", V1)
        old = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="old")
        await ident.add_form(app.db, SYSTEM, "reviewer", V2)
        row = await esc.resolve(app.db, rita, old["id"], {"approved": True})
        assert row["status"] == "resolved" and row["resolution"] == {"approved": True}


async def test_a_resolution_failing_the_pinned_form_is_refused_and_leaves_the_claim_as_it_was(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "member"})
        await ident.add_form(app.db, SYSTEM, "reviewer", V1)
        await ident.add_form(app.db, SYSTEM, "reviewer", V2)
        e = await esc.create_escalation(app.db, SYSTEM, role="reviewer", message="m")
        claimed = await esc.claim(app.db, rita, e["id"])

        with pytest.raises(InvalidInput, match="does not match the form") as missing:
            await esc.resolve(app.db, rita, e["id"], {"approved": True})
        assert "'comment' is a required property" in missing.value.message
        with pytest.raises(InvalidInput) as wrong:
            await esc.resolve(app.db, rita, e["id"], {"approved": "yes", "comment": "ok!"})
        assert "approved: 'yes' is not of type 'boolean'" in wrong.value.message
        with pytest.raises(InvalidInput, match="must be an object"):
            await esc.resolve(app.db, rita, e["id"], ["approved"])  # type: ignore[arg-type]

        row = await esc.get_escalation(app.db, SYSTEM, e["id"])
        assert row["status"] == "pending" and row["resolution"] is None
        assert (row["assigned_to"], row["assigned_until"]) == ("rita", claimed["assigned_until"])
        assert [a[1] for a in await audit_of(app.db, e["id"])] == ["escalation.create", "escalation.claim"]

        done = await esc.resolve(app.db, rita, e["id"], {"approved": False, "comment": "no way"})
        assert done["status"] == "resolved"


@pytest.mark.parametrize("schema", [
    {"type": "banana"},
    {"type": "object", "required": "approved"},
    {"properties": {"x": {"minLength": -1}}},
    ["not", "an", "object"],
    "string",
])
async def test_add_form_rejects_an_invalid_json_schema(app: LongTail, schema: object) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        with pytest.raises(InvalidInput, match="JSON Schema"):
            await ident.add_form(app.db, SYSTEM, "reviewer", schema)  # type: ignore[arg-type]
        assert await ident.add_form(app.db, SYSTEM, "reviewer", V1) == 1  # nothing was stored


async def test_add_form_on_an_unknown_role_is_not_found(app: LongTail) -> None:
    async with app:
        with pytest.raises(NotFound):
            await ident.add_form(app.db, SYSTEM, "ghost", V1)

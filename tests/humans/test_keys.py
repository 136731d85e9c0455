"""API keys: shown once, stored only as a hash; authenticate accepts exactly the live keys."""

import hashlib
from datetime import timedelta

import pytest

from longtail_mcp import Forbidden, LongTail, NotFound
from longtail_mcp.errors import Unauthenticated
from longtail_mcp.humans import identity as ident
from longtail_mcp.humans.identity import SYSTEM
from tests.humans.helpers import make_roles, person, sql_exec, sql_one

pytestmark = pytest.mark.anyio


async def test_a_new_key_is_shown_once_and_only_its_sha256_is_stored(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        rita = await person(app.db, "rita", {"reviewer": "admin"})
        made = await ident.create_key(app.db, rita, "rita", name="laptop")
        token = made["key"]
        assert token.startswith("ltk_") and made["scope"] == "full"
        key_id, secret = ident.split_key(token)
        assert key_id == made["id"] and len(secret) >= 20
        stored = await sql_one(app.db, "SELECT * FROM api_key WHERE id = %s", [key_id])
        assert bytes(stored["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
        as_text = await sql_one(app.db, "SELECT a::text AS t FROM api_key a WHERE id = %s", [key_id])
        assert secret not in as_text["t"] and token not in as_text["t"]
        listed = await ident.list_keys(app.db, rita)
        assert [k["id"] for k in listed] == [key_id] and "secret_hash" not in listed[0] and "key" not in listed[0]

        p = await ident.authenticate(app.db, token)
        assert (p.id, p.kind, p.roles, p.scope) == ("rita", "human", {"reviewer": "admin"}, "full")


async def test_authenticate_rejects_a_wrong_secret_an_unknown_key_and_a_foreign_token(app: LongTail) -> None:
    async with app:
        await person(app.db, "rita")
        token = (await ident.create_key(app.db, SYSTEM, "rita"))["key"]
        key_id, secret = ident.split_key(token)
        for bad in (f"ltk_{key_id}_{secret}x", f"ltk_{key_id}_{secret[:-1]}", f"ltk_nokey_{secret}",
                    f"ltk_{key_id}_", "ltk_", "Bearer abc", secret):
            with pytest.raises(Unauthenticated):
                await ident.authenticate(app.db, bad)
        assert (await ident.authenticate(app.db, token)).id == "rita"


async def test_an_expired_key_is_rejected(app: LongTail) -> None:
    async with app:
        await person(app.db, "rita")
        made = await ident.create_key(app.db, SYSTEM, "rita", expires_in=timedelta(hours=1))
        assert made["expires_at"] is not None
        assert (await ident.authenticate(app.db, made["key"])).id == "rita"
        lapse = "UPDATE api_key SET expires_at = now() - interval '1 second' WHERE id = %s"
        await sql_exec(app.db, lapse, [made["id"]])
        with pytest.raises(Unauthenticated, match="expired"):
            await ident.authenticate(app.db, made["key"])


async def test_a_revoked_key_is_rejected_and_only_its_owner_or_a_superadmin_may_revoke_it(app: LongTail) -> None:
    async with app:
        rita = await person(app.db, "rita")
        sam = await person(app.db, "sam")
        made = await ident.create_key(app.db, rita, "rita")
        with pytest.raises(Forbidden):
            await ident.revoke_key(app.db, sam, made["id"])
        assert (await ident.authenticate(app.db, made["key"])).id == "rita"  # the refused revoke changed nothing
        await ident.revoke_key(app.db, rita, made["id"])
        with pytest.raises(Unauthenticated, match="revoked"):
            await ident.authenticate(app.db, made["key"])
        with pytest.raises(NotFound):
            await ident.revoke_key(app.db, rita, made["id"])


async def test_only_a_superadmin_creates_a_key_for_another_account(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "ops")
        rita = await person(app.db, "rita", {"ops": "admin"})
        await person(app.db, "sam", {"ops": "member"})
        boss = await person(app.db, "boss", {"ops": "superadmin"})
        with pytest.raises(Forbidden):
            await ident.create_key(app.db, rita, "sam")
        made = await ident.create_key(app.db, boss, "sam", scope="read")
        assert (await ident.authenticate(app.db, made["key"])).id == "sam"


async def test_the_key_scope_is_carried_into_the_principal(app: LongTail) -> None:
    async with app:
        await make_roles(app.db, "reviewer")
        await person(app.db, "rita", {"reviewer": "member"})
        read = await ident.create_key(app.db, SYSTEM, "rita", scope="read")
        full = await ident.create_key(app.db, SYSTEM, "rita", scope="full")
        assert (await ident.authenticate(app.db, read["key"])).scope == "read"
        assert (await ident.authenticate(app.db, full["key"])).scope == "full"


async def test_a_disabled_account_cannot_authenticate(app: LongTail) -> None:
    async with app:
        await person(app.db, "rita")
        token = (await ident.create_key(app.db, SYSTEM, "rita"))["key"]
        await sql_exec(app.db, "UPDATE account SET disabled_at = now() WHERE id = 'rita'")
        with pytest.raises(Unauthenticated, match="disabled"):
            await ident.authenticate(app.db, token)


async def test_ensure_admin_creates_a_superadmin_and_a_first_key_once(app: LongTail) -> None:
    async with app:
        first = await ident.ensure_admin(app.db)
        assert first is not None and first["key"].startswith("ltk_") and first["account_id"] == "admin"
        admin = await ident.authenticate(app.db, first["key"])
        assert admin.superadmin and admin.scope == "full" and admin.roles == {"admin": "superadmin"}
        assert await ident.ensure_admin(app.db) is None
        assert (await sql_one(app.db, "SELECT count(*) AS n FROM api_key"))["n"] == 1


async def test_ensure_admin_with_a_given_token_registers_exactly_that_token(app: LongTail) -> None:
    token = "ltk_adminkey01_s3cr3t-given-by-the-operator"
    async with app:
        made = await ident.ensure_admin(app.db, token)
        assert made is not None and made["key"] == token and made["id"] == "adminkey01"
        assert (await ident.authenticate(app.db, token)).superadmin
        assert await ident.ensure_admin(app.db, token) is None
        assert (await sql_one(app.db, "SELECT count(*) AS n FROM api_key"))["n"] == 1
        with pytest.raises(Unauthenticated):
            await ident.authenticate(app.db, "ltk_adminkey01_another-secret")

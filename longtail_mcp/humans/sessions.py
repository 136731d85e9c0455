"""Browser sessions: an API key signs a person in; the session then stands for that key until it ends.

The cookie carries a random token; the table holds only its sha256. Every request re-reads the session
with its key, so revoking or expiring the key, disabling the account or changing its roles takes effect
at the next request, and signing out deletes the row (a copied cookie stops working too).
"""

import hashlib
import secrets

from longtail_mcp.db.pool import Database, expect_row
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Unauthenticated
from longtail_mcp.humans.identity import Principal, audit, authenticate, get_principal, split_key

Q = load("sessions")
SESSION_SECONDS = 12 * 3600  # a working day: then sign in again


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def open_session(db: Database, key: str, *, seconds: float = SESSION_SECONDS) -> tuple[str, Principal]:
    """Sign in with an API key: (the session token for the cookie, who it is).

    Raises:
        Unauthenticated: unknown, wrong, expired or revoked key, or a disabled account.
    """
    principal = await authenticate(db, key)
    key_id = split_key(key)[0]
    token = secrets.token_urlsafe(32)
    async with db.transaction() as conn:
        await conn.execute(Q["prune_web_sessions"])
        row = expect_row(await (await conn.execute(Q["open_web_session"], {
            "hash": _hash(token), "key_id": key_id, "account": principal.id, "seconds": seconds,
        })).fetchone(), "open_web_session")
        await audit(conn, principal, "session.open", "api_key", key_id,
                    data={"until": row["expires_at"].isoformat()})
    return token, principal


async def session_principal(db: Database, token: str) -> Principal:
    """Who a session token stands for now (current roles, the key's scope).

    Raises:
        Unauthenticated: no such session, it ended, its key was revoked or expired, or the account is disabled.
    """
    async with db.connection() as conn:
        row = await (await conn.execute(Q["find_web_session"], {"hash": _hash(token)})).fetchone()
    if row is None:
        raise Unauthenticated("your session has ended; sign in again")
    return await get_principal(db, row["account_id"], scope=row["scope"])


async def close_session(db: Database, token: str) -> None:
    """Sign out: the session ends now (an unknown or ended one is a no-op)."""
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["close_web_session"], {"hash": _hash(token)})).fetchone()
        if row is not None:
            await audit(conn, Principal(row["account_id"]), "session.close", "api_key", row["key_id"])


async def form_secret(db: Database) -> bytes:
    """The key of the web view's pre-sign-in CSRF tokens: random, made once per database (migration 0013), so
    every process serving the web view on it accepts the others' forms, and a restart keeps them valid."""
    async with db.transaction() as conn:
        await conn.execute(Q["make_web_secret"], {"name": "csrf", "secret": secrets.token_bytes(32)})
        row = expect_row(await (await conn.execute(Q["web_secret"], {"name": "csrf"})).fetchone(), "web_secret")
    return bytes(row["secret"])

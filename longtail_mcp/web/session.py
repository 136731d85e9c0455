"""Who a browser request acts for (the session cookie, or the local operator in --dev mode), and its CSRF token.

Signed in, the cookie holds a session token (`humans.sessions`); its CSRF token is an HMAC of that token,
so it needs no storage and dies with the session. Before sign-in (the sign-in form itself) and in --dev
mode without a session, a random double-submit cookie is the binding, HMAC'd with a secret kept in the
database, the same for every process serving it (a page on another port of the same host can set a cookie
for us, but cannot compute the token).
Both cookies are HttpOnly and SameSite=Strict; every POST must carry the token in the `csrf` field.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from longtail_mcp.db.pool import Database
from longtail_mcp.errors import Forbidden, Unauthenticated
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.humans.runs import EventAudience
from longtail_mcp.humans.sessions import SESSION_SECONDS, form_secret, session_principal

SESSION_COOKIE = "longtail_session"
CSRF_COOKIE = "longtail_csrf"
CSRF_FIELD = "csrf"


@dataclass
class Visitor:
    """One request's view of its sender: who acts (None: nobody signed in), whether through a session, and the
    CSRF token its forms carry (plus a new double-submit cookie to set, if it had none)."""

    principal: Principal | None
    session: str | None
    csrf: str
    new_csrf_cookie: str | None = None


class Sessions:
    """Reads visitors from requests, and writes the cookies."""

    def __init__(self, db: Database, *, dev: bool) -> None:
        self.db = db
        self.dev = dev
        self._secret: bytes | None = None  # read once: the database's (form_secret), shared by every process

    async def visitor(self, request: Request) -> Visitor:
        """Who sent `request`. A cookie of an ended session counts as none (in --dev: the local operator)."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            try:
                principal = await session_principal(self.db, token)
            except Unauthenticated:
                pass
            else:
                return Visitor(principal, token, _mac(token.encode(), b"csrf"))
        binding = request.cookies.get(CSRF_COOKIE)
        fresh = None
        if not binding or len(binding) > 100:
            binding = fresh = secrets.token_urlsafe(24)
        if self._secret is None:
            self._secret = await form_secret(self.db)
        return Visitor(SYSTEM if self.dev else None, None, _mac(self._secret, binding.encode()), fresh)

    def audience(self, request: Request, who: Principal) -> EventAudience:
        """Who a live stream opened by `request` (for `who`) sends events to: its session is looked up again
        while the stream is open, so signing out or a revoked key ends it (in --dev without a session: the
        local operator, for good)."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token or (self.dev and who is SYSTEM):
            return EventAudience(self.db, who)
        return EventAudience(self.db, who, recheck=partial(session_principal, self.db, token))

    @staticmethod
    def check_csrf(visitor: Visitor, submitted: object) -> None:
        """Raises Forbidden unless the form carried this visitor's token."""
        if not isinstance(submitted, str) or not hmac.compare_digest(submitted, visitor.csrf):
            raise Forbidden("this form expired or did not come from this site (CSRF check): reload the page and "
                            "try again")

    @staticmethod
    def remember(response: Response, request: Request, visitor: Visitor) -> None:
        """Set the double-submit cookie a visitor without one was given."""
        if visitor.new_csrf_cookie:
            response.set_cookie(CSRF_COOKIE, visitor.new_csrf_cookie, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")

    @staticmethod
    def sign_in(response: Response, request: Request, token: str) -> None:
        response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")

    @staticmethod
    def sign_out(response: Response, request: Request) -> None:
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()

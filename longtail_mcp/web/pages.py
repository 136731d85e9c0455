"""The web view for people: sign in, the inbox, an escalation's page and its actions, live updates.

Plain HTML from Jinja templates, a stylesheet and one small script, all served from here (nothing loads
from elsewhere, and the Content-Security-Policy says so). Every read and change goes through the same
services as the MCP tools and the CLI (`client.humans(actor)`, `escalations.history`), so RBAC and the
visibility rule are theirs; this module holds no SQL.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from longtail_mcp.app.client import Client
from longtail_mcp.errors import Forbidden, InvalidInput, LongtailError, NotFound
from longtail_mcp.humans import escalations, identity, inbox, sessions
from longtail_mcp.humans.identity import Principal
from longtail_mcp.humans.models import Escalation
from longtail_mcp.web import forms
from longtail_mcp.web.errors import status_code
from longtail_mcp.web.live import event_stream
from longtail_mcp.web.pipeline_pages import PipelinePages
from longtail_mcp.web.run_pages import RunPages
from longtail_mcp.web.session import CSRF_FIELD, Sessions, Visitor

HERE = Path(__file__).parent
LIST_LIMIT = 200  # rows a section shows; past it, the page asks for a narrower filter
STATUSES = inbox.STATUSES  # the inbox services' statuses and orders, not copies
SORT_LABELS = {"priority": "Most urgent first", "oldest": "Oldest first", "newest": "Newest first"}
SORTS = {sort: SORT_LABELS[sort] for sort in inbox.SORTS}
DONE = {"claimed": "You claimed this escalation.", "released": "You released your claim.",
        "resolved": "Resolved. The run waiting on it (if any) goes on.", "rerouted": "Sent to another role.",
        "cancelled": "Cancelled."}
HEADERS = {
    # Everything comes from this server; no inline script or style, no framing, forms post only here.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=HERE / "templates")


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def age(value: str | None) -> str:
    """'4 min', '3 h', '2 d' since an ISO timestamp (for reading; decisions use the database's clock)."""
    then = _when(value)
    if then is None:
        return ""
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def stamp(value: str | None) -> str:
    then = _when(value)
    return then.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if then else ""


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


templates.env.filters.update(age=age, stamp=stamp, pretty=pretty)


@dataclass
class InboxQuery:
    """The inbox's filters and order, from the query string."""

    role: str | None = None
    type: str | None = None
    status: str = "pending"
    sort: str = "priority"

    @classmethod
    def of(cls, request: Request) -> "InboxQuery":
        params = request.query_params
        status = params.get("status") or "pending"
        sort = params.get("sort") or "priority"
        return cls(role=params.get("role") or None, type=params.get("type") or None,
                   status=status if status in STATUSES else "pending", sort=sort if sort in SORTS else "priority")

    def query_string(self) -> str:
        return urlencode({k: v for k, v in (("role", self.role), ("type", self.type), ("status", self.status),
                                             ("sort", self.sort)) if v})


@dataclass
class Section:
    key: str
    title: str
    empty: str
    rows: list[Escalation] = field(default_factory=list)
    more: bool = False


class Pages:
    """The page handlers of one app; `routes()` lists them for `build_app`."""

    def __init__(self, client: Client, *, dev: bool) -> None:
        self.client = client
        self.dev = dev
        self.sessions = Sessions(client.db, dev=dev)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.inbox, methods=["GET"], name="inbox"),
            Route("/inbox/list", self.inbox_lists, methods=["GET"]),
            Route("/signin", self.signin_form, methods=["GET"]),
            Route("/signin", self.signin, methods=["POST"]),
            Route("/signout", self.signout, methods=["POST"]),
            Route("/escalations/{escalation_id:path}", self.escalation, methods=["GET"]),
            Route("/escalations/{escalation_id:path}", self.act, methods=["POST"]),
            Route("/live", self.live, methods=["GET"]),
            *RunPages(self).routes(),
            *PipelinePages(self).routes(),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]

    # -- rendering ------------------------------------------------------------------------------------------

    def render(self, request: Request, visitor: Visitor, template: str, context: dict[str, Any] | None = None,
               status: int = 200) -> Response:
        root = request.scope.get("root_path", "")
        response = templates.TemplateResponse(request, template, {
            "visitor": visitor, "who": visitor.principal, "dev": self.dev, "root": root, "csrf_field": CSRF_FIELD,
            "escalation_url": lambda escalation_id: f"{root}/escalations/{quote(escalation_id, safe='')}",
            **(context or {}),
        }, status_code=status, headers=HEADERS)
        self.sessions.remember(response, request, visitor)
        return response

    def to_signin(self, request: Request) -> Response:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/signin?{urlencode({'next': here})}", status_code=303)

    async def signed_in(self, request: Request) -> tuple[Visitor, Principal | None]:
        visitor = await self.sessions.visitor(request)
        return visitor, visitor.principal

    # -- sign in and out ------------------------------------------------------------------------------------

    async def signin_form(self, request: Request) -> Response:
        visitor = await self.sessions.visitor(request)
        return self.render(request, visitor, "signin.html", {"next": _local(request.query_params.get("next"))})

    async def signin(self, request: Request) -> Response:
        visitor = await self.sessions.visitor(request)
        form = await request.form()
        target = _local(_text(form, "next"))
        try:
            self.sessions.check_csrf(visitor, form.get(CSRF_FIELD))
            token, _ = await sessions.open_session(self.client.db, _text(form, "key").strip())
        except LongtailError as exc:
            return self.render(request, visitor, "signin.html", {"next": target, "error": exc.message},
                               status=status_code(exc))
        if visitor.session:  # signing in as someone else ends the session this browser had
            await sessions.close_session(self.client.db, visitor.session)
        response = RedirectResponse(f"{request.scope.get('root_path', '')}{target}", status_code=303)
        self.sessions.sign_in(response, request, token)
        return response

    async def signout(self, request: Request) -> Response:
        visitor = await self.sessions.visitor(request)
        form = await request.form()
        try:
            self.sessions.check_csrf(visitor, form.get(CSRF_FIELD))
        except Forbidden as exc:
            return self.render(request, visitor, "error.html", {"error": exc.message}, status=403)
        if visitor.session:
            await sessions.close_session(self.client.db, visitor.session)
        response = RedirectResponse(f"{request.scope.get('root_path', '')}/signin", status_code=303)
        self.sessions.sign_out(response, request)
        return response

    # -- the inbox ------------------------------------------------------------------------------------------

    async def sections(self, who: Principal, q: InboxQuery) -> list[Section]:
        humans = self.client.humans(who)
        page: dict[str, Any] = {"role": q.role, "type": q.type, "sort": q.sort, "limit": LIST_LIMIT + 1}  # by SQL

        def cut(section: Section, rows: list[Escalation]) -> Section:
            section.rows, section.more = rows[:LIST_LIMIT], len(rows) > LIST_LIMIT
            return section

        if q.status != "pending":
            found = await humans.find(status=q.status, **page)
            return [cut(Section("found", f"{q.status.capitalize()} escalations", f"No {q.status} escalations."),
                        found)]
        mine = await humans.mine(**page)
        available = await humans.available(**page)
        return [cut(Section("mine", "Claimed by me", "You hold no claims."), mine),
                cut(Section("available", "Available to claim", "Nothing is waiting for your roles."), available)]

    async def role_choices(self, who: Principal) -> list[str]:
        if who.superadmin:
            return [r["name"] for r in await identity.list_roles(self.client.db)]
        return sorted(r for r in who.roles if r != "*")

    async def inbox(self, request: Request) -> Response:
        visitor, who = await self.signed_in(request)
        if who is None:
            return self.to_signin(request)
        q = InboxQuery.of(request)
        context: dict[str, Any] = {"q": q, "sorts": SORTS, "statuses": STATUSES, "sections": [],
                                   "roles": await self.role_choices(who),
                                   "done": DONE.get(request.query_params.get("done", ""))}
        status = 200
        try:
            context["sections"] = await self.sections(who, q)
        except LongtailError as exc:
            context["error"], status = exc.message, status_code(exc)
        return self.render(request, visitor, "inbox.html", context, status=status)

    async def inbox_lists(self, request: Request) -> Response:
        """The inbox's lists alone, for live.js to swap in when escalations change."""
        visitor, who = await self.signed_in(request)
        if who is None:
            return JSONResponse({"error": "sign in first"}, status_code=401)
        q = InboxQuery.of(request)
        try:
            found = await self.sections(who, q)
        except LongtailError as exc:
            return self.render(request, visitor, "_error.html", {"error": exc.message}, status=status_code(exc))
        return self.render(request, visitor, "_inbox_lists.html", {"q": q, "sections": found})

    # -- one escalation -------------------------------------------------------------------------------------

    async def page(self, request: Request, visitor: Visitor, who: Principal, escalation_id: str, *,
                   fields: list[forms.Field] | None = None, error: str = "", status: int = 200,
                   kept: FormData | None = None) -> Response:
        humans = self.client.humans(who)
        try:
            esc = await humans.get(escalation_id)
            history = await escalations.history(self.client.db, who, escalation_id)
        except LongtailError as exc:
            return self.render(request, visitor, "error.html", {"error": exc.message}, status=status_code(exc))
        until = _when(esc.assigned_until)
        live_claim = esc.assigned_to is not None and until is not None and until > datetime.now(UTC)
        mine = live_claim and esc.assigned_to == who.id
        may_act = esc.status == "pending" and who.member_of(esc.role) and who.scope == "full"
        held = live_claim and not mine
        roles = [r["name"] for r in await identity.list_roles(self.client.db)] if may_act else []
        return self.render(request, visitor, "escalation.html", {
            "esc": esc, "history": history, "fields": fields or forms.fields_of(esc.form_schema),
            "error": error, "done": DONE.get(request.query_params.get("done", "")),
            "may_act": may_act, "mine": mine, "held": held,
            "may_release": may_act and live_claim and (mine or who.admin_of(esc.role)),
            "may_force": may_act and (not held or who.admin_of(esc.role)),
            "reroute_roles": [r for r in roles if r != esc.role],
            "reason": _text(kept, "reason") if kept else "", "action": _text(kept, "action") if kept else "",
        }, status=status)

    async def escalation(self, request: Request) -> Response:
        visitor, who = await self.signed_in(request)
        if who is None:
            return self.to_signin(request)
        return await self.page(request, visitor, who, request.path_params["escalation_id"])

    async def act(self, request: Request) -> Response:
        """Claim, release, resolve, re-route or cancel (the `action` field), then back to the page."""
        visitor, who = await self.signed_in(request)
        if who is None:
            return self.to_signin(request)
        escalation_id = request.path_params["escalation_id"]
        form = await request.form()
        action = _text(form, "action")
        humans = self.client.humans(who)
        reason = _text(form, "reason").strip() or None
        fields: list[forms.Field] | None = None
        try:
            self.sessions.check_csrf(visitor, form.get(CSRF_FIELD))
        except Forbidden as exc:
            return self.render(request, visitor, "error.html", {"error": exc.message}, status=403)
        try:
            if action == "claim":
                await humans.claim(escalation_id)
            elif action == "release":
                await humans.release(escalation_id)
            elif action == "resolve":
                esc = await humans.get(escalation_id)
                payload, fields = forms.read_form(esc.form_schema, form)
                if any(f.error for f in fields):  # the whole-resolution JSON did not parse
                    raise InvalidInput("Correct the fields marked below.")
                await humans.resolve(escalation_id, payload, reason=reason)
            elif action == "reroute":
                await humans.reroute(escalation_id, _text(form, "role"), reason=reason)
            elif action == "cancel":
                await humans.cancel(escalation_id, reason=reason)
            else:
                raise InvalidInput(f"unknown action {action!r}")
        except LongtailError as exc:
            message = exc.message
            if fields is not None and isinstance(exc, InvalidInput):
                message = forms.place_errors(fields, exc) or "Correct the fields marked below."
            if isinstance(exc, NotFound):  # invisible and absent look the same: nothing to draw
                return self.render(request, visitor, "error.html", {"error": exc.message}, status=404)
            return await self.page(request, visitor, who, escalation_id, fields=fields, error=message,
                                   status=status_code(exc), kept=form)
        done = {"claim": "claimed", "release": "released", "resolve": "resolved", "reroute": "rerouted",
                "cancel": "cancelled"}[action]
        root = request.scope.get("root_path", "")
        if action == "reroute":  # most likely no longer ours to see
            return RedirectResponse(f"{root}/?done={done}", status_code=303)
        return RedirectResponse(f"{root}/escalations/{quote(escalation_id, safe='')}?done={done}", status_code=303)

    # -- live updates ---------------------------------------------------------------------------------------

    async def live(self, request: Request) -> Response:
        """Server-sent `escalation.*` events this visitor may see (the /events rule), for live.js."""
        who = (await self.sessions.visitor(request)).principal
        if who is None:
            return JSONResponse({"error": "sign in first"}, status_code=401)
        return event_stream(self.client, self.sessions.audience(request, who), ["escalation.*"],
                            headers={"Cache-Control": "no-store"})


def _text(form: FormData | None, name: str) -> str:
    value = form.get(name) if form is not None else None
    return value if isinstance(value, str) else ""


def _local(target: str | None) -> str:
    """A path on this site to go to after signing in (never another site: no `//host` or `/\\host`)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def page_routes(client: Client, *, dev: bool) -> list[BaseRoute]:
    """The web view's routes (mounted at / by `build_app`)."""
    return Pages(client, dev=dev).routes()


"""The web view's runs and servers: the runs list and search, a run's page (timeline, state, escalations,
children, export) with live updates, and the MCP servers with their tools.

Every read goes through the services the MCP tools call, as the visitor: `client.runs(who)` (list, get,
export: the runs visibility rule), `reports.find_runs` (db-query's `find_runs`), `client.humans(who)`
(the escalations one may read), `registry.list_servers` / `registry.server_tools` (`list_mcp_servers`,
`find_tools`). A run the visitor may not see is a 404, like one that does not exist. No SQL here.
"""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from longtail_mcp.errors import InvalidInput, LongtailError, NotFound
from longtail_mcp.humans.identity import Principal
from longtail_mcp.humans.models import Escalation
from longtail_mcp.runtime.models import RunExport, RunSummary, Step
from longtail_mcp.runtime.service import LIVE, STATUSES
from longtail_mcp.sql import reports
from longtail_mcp.tools import registry
from longtail_mcp.web.api import route_segments
from longtail_mcp.web.errors import status_code
from longtail_mcp.web.live import event_stream
from longtail_mcp.web.session import Visitor

if TYPE_CHECKING:
    from longtail_mcp.web.pages import Pages

PAGE = 50  # runs a list page shows (then a link to the next)
FOUND_LIMIT = 200  # runs an entity-state search shows (find_runs has no paging)
SHOWN_CHARS = 20_000  # a value longer than this, pretty-printed, is cut on the page (the export has it whole)
RUN_EVENTS = ["run.*", "step.*", "escalation.*"]
PARTS = ("timeline", "export")  # /runs/{id}/timeline, /runs/{id}/export
EXPORT_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def run_url(root: str, workflow_id: str, part: str = "") -> str:
    """A run's page (or one of its PARTS): the id is one percent-encoded segment (a child's id holds a `/`)."""
    return f"{root}/runs/{quote(workflow_id, safe='')}" + (f"/{part}" if part else "")


def shown(value: Any) -> str:
    """A value as indented JSON, cut past SHOWN_CHARS."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > SHOWN_CHARS:
        return text[:SHOWN_CHARS] + f"\n… ({len(text) - SHOWN_CHARS} more characters: download the export)"
    return text


def took(start: str | None, end: str | None) -> str:
    """'850 ms', '12.3 s', '4 min 2 s' between two ISO timestamps ('' if either is missing)."""
    if not start or not end:
        return ""
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    if seconds < 0.001:
        return "under 1 ms"
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def clock(value: str | None) -> str:
    """An ISO timestamp to the second, in UTC (a step's start; `stamp` stops at the minute)."""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


@dataclass
class RunsQuery:
    """The runs list's filters, from the query string."""

    status: str | None = None
    name: str | None = None
    id: str | None = None
    state: str | None = None  # a JSON object the entity state must contain
    path: str | None = None  # a jsonpath predicate on the entity state
    offset: int = 0

    @classmethod
    def of(cls, request: Request) -> "RunsQuery":
        params = request.query_params

        def text(name: str) -> str | None:
            return (params.get(name) or "").strip() or None

        status = text("status")
        offset = text("offset") or "0"
        return cls(status=status if status in STATUSES else None, name=text("name"), id=text("id"),
                   state=text("state"), path=text("path"), offset=int(offset) if offset.isdigit() else 0)

    @property
    def searching_state(self) -> bool:
        return self.state is not None or self.path is not None

    def query_string(self, **changes: Any) -> str:
        values = {"status": self.status, "name": self.name, "id": self.id, "state": self.state, "path": self.path,
                  "offset": self.offset or None, **changes}
        return urlencode({k: v for k, v in values.items() if v})


@dataclass
class Child:
    """A child run, as its parent's journal names it (its row when the visitor may see it)."""

    id: str
    seq: int
    name: str
    run: RunSummary | None


class RunPages:
    """The runs and servers pages, drawn with the `Pages` they belong to (its sessions, sign-in and templates)."""

    def __init__(self, pages: "Pages") -> None:
        self.pages = pages
        self.client = pages.client

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/runs", self.runs, methods=["GET"]),
            Route("/runs/{rest:path}", self.run_part, methods=["GET"]),
            Route("/live/run", self.live, methods=["GET"]),
            Route("/servers", self.servers, methods=["GET"]),
        ]

    def render(self, request: Request, visitor: Visitor, template: str, context: dict[str, Any] | None = None,
               status: int = 200) -> Response:
        root = request.scope.get("root_path", "")
        return self.pages.render(request, visitor, template, {
            "run_url": lambda workflow_id, part="": run_url(root, workflow_id, part), "shown": shown,
            **(context or {})}, status=status)

    def error(self, request: Request, visitor: Visitor, exc: LongtailError) -> Response:
        return self.render(request, visitor, "error.html", {"error": exc.message}, status=status_code(exc))

    # -- the runs list --------------------------------------------------------------------------------------

    async def listing(self, who: Principal, q: RunsQuery) -> tuple[list[RunSummary], bool]:
        """The runs matching `q` that `who` may see, and whether there are more."""
        if q.id is not None:
            try:
                run = await self.client.runs(who).get(q.id)
            except NotFound:
                return [], False
            keep = (q.status in (None, run.status) and q.name in (None, run.name)
                    and not q.searching_state)  # an id with a state search: use the run's page instead
            return ([run] if keep else []), False
        if q.searching_state:
            state = None
            if q.state is not None:
                try:
                    state = json.loads(q.state)
                except ValueError:
                    raise InvalidInput("the state to match must be a JSON object, like {\"stage\": \"paid\"}") from None
            found = await reports.find_runs(self.client.db, who, state=state, path=q.path, status=q.status,
                                            name=q.name, limit=FOUND_LIMIT + 1)
            return list(found[:FOUND_LIMIT]), len(found) > FOUND_LIMIT
        rows = await self.client.runs(who).list(status=q.status, name=q.name, limit=PAGE + 1, offset=q.offset)
        return rows[:PAGE], len(rows) > PAGE

    async def runs(self, request: Request) -> Response:
        visitor, who = await self.pages.signed_in(request)
        if who is None:
            return self.pages.to_signin(request)
        q = RunsQuery.of(request)
        context: dict[str, Any] = {"q": q, "statuses": STATUSES, "rows": [], "more": False, "page": PAGE}
        status = 200
        try:
            context["rows"], context["more"] = await self.listing(who, q)
        except LongtailError as exc:
            context["error"], status = exc.message, status_code(exc)
        return self.render(request, visitor, "runs.html", context, status=status)

    # -- one run --------------------------------------------------------------------------------------------

    async def run_part(self, request: Request) -> Response:
        """`/runs/{id}` (the page), `/runs/{id}/timeline` (the part live updates swap in), `/runs/{id}/export`.

        Routed on the raw path: `/runs/batch%2F7/export` is run `batch/7`'s export, which the decoded path
        cannot tell from run `batch/7/export`. An id typed with bare slashes still finds its page."""
        segments = route_segments(request.scope)[1:]
        part = segments[-1] if len(segments) == 2 and segments[-1] in PARTS else ""
        workflow_id = "/".join(segments[:-1] if part else segments)
        if not workflow_id:
            return RedirectResponse(f"{request.scope.get('root_path', '')}/runs", status_code=303)
        visitor, who = await self.pages.signed_in(request)
        if who is None:
            if part == "timeline":
                return JSONResponse({"error": "sign in first"}, status_code=401)
            return self.pages.to_signin(request)
        if part == "export":
            return await self.export(request, visitor, who, workflow_id)
        try:
            context = await self.run_context(who, workflow_id)
        except LongtailError as exc:
            if part == "timeline":
                return self.render(request, visitor, "_error.html", {"error": exc.message}, status=status_code(exc))
            return self.error(request, visitor, exc)
        return self.render(request, visitor, "_timeline.html" if part == "timeline" else "run.html", context)

    async def run_context(self, who: Principal, workflow_id: str) -> dict[str, Any]:
        """What a run's page shows: the export (run, journal, signals), its escalations and its children.

        Raises:
            NotFound: no such run, or one `who` may not see.
        """
        history = await self.client.runs(who).export(workflow_id)
        children, hooks = await self.children(who, history)
        return {"run": history.run, "steps": history.steps, "signals": history.signals,
                "escalations": await self.escalations(who, history), "children": children, "hooks": hooks,
                "live": history.run.status in LIVE, "took": took, "clock": clock, "tool_args": tool_args}

    async def escalations(self, who: Principal, history: RunExport) -> list[Escalation | str]:
        """The run's escalations `who` may read (of their roles, or asked by them), and the bare ids of the
        ones its journal names that they may not."""
        humans = self.client.humans(who)
        found: dict[str, Escalation | str] = {e.id: e for e in await humans.find(workflow_id=history.run.id,
                                                                                 limit=FOUND_LIMIT)}
        for step in history.steps:
            key = step.input.get("escalation_id") if isinstance(step.input, dict) else None
            if isinstance(key, str) and key not in found:
                try:
                    found[key] = await humans.get(key)
                except NotFound:
                    found[key] = key
        return sorted(found.values(), key=lambda e: (e.created_at, e.id) if isinstance(e, Escalation) else ("", e))

    async def children(self, who: Principal, history: RunExport) -> tuple[list[Child], list[RunSummary]]:
        """The child runs its journal names (each with its row when `who` may see it) and the hooks started on
        it that `who` may see: one query, however many there are."""
        named = [(step, step.input["workflow_id"]) for step in history.steps
                 if step.kind == "child" and isinstance(step.input, dict)
                 and isinstance(step.input.get("workflow_id"), str)]
        related = await self.client.runs(who).related(history.run.id, [child_id for _, child_id in named])
        by_id = {r.id: r for r in related}
        hooks = [r for r in related if r.kind == "hook" and r.parent_id == history.run.id]
        return [Child(child_id, step.seq, step.name, by_id.get(child_id)) for step, child_id in named], hooks

    async def export(self, request: Request, visitor: Visitor, who: Principal, workflow_id: str) -> Response:
        """The run's export (`export_run`) as a JSON download."""
        try:
            history = await self.client.runs(who).export(workflow_id)
        except LongtailError as exc:
            return self.error(request, visitor, exc)
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", workflow_id)[:100] or "run"
        return JSONResponse(history.to_json(), headers={
            **EXPORT_HEADERS, "Content-Disposition": f'attachment; filename="run-{filename}.json"'})

    # -- live updates of one run ----------------------------------------------------------------------------

    async def live(self, request: Request) -> Response:
        """Server-sent run, step and escalation events of one run (`?workflow_id=`) for a visitor who may see
        it, filtered by the same audience rule as /events and /live."""
        who = (await self.pages.sessions.visitor(request)).principal
        if who is None:
            return JSONResponse({"error": "sign in first"}, status_code=401)
        workflow_id = request.query_params.get("workflow_id") or ""
        try:
            await self.client.runs(who).get(workflow_id)
        except NotFound as exc:
            return JSONResponse({"error": exc.message}, status_code=404)
        return event_stream(self.client, self.pages.sessions.audience(request, who), RUN_EVENTS, workflow_id,
                            headers={"Cache-Control": "no-store"})

    # -- servers and tools ----------------------------------------------------------------------------------

    async def servers(self, request: Request) -> Response:
        """Known MCP servers (built in and registered) with their tools, as `list_mcp_servers` and `find_tools`
        show them to this visitor."""
        visitor, who = await self.pages.signed_in(request)
        if who is None:
            return self.pages.to_signin(request)
        servers = await registry.list_servers(self.client.db, who)
        tools = await registry.server_tools(self.client.db)
        return self.render(request, visitor, "servers.html", {
            "servers": sorted(servers, key=lambda s: (s["transport"] != "builtin", s["name"])), "tools": tools})


def tool_args(step: Step) -> Any:
    """What a step was called with: a tool step's arguments object, else the recorded input."""
    value = step.input
    if step.kind == "tool" and isinstance(value, dict) and set(value) == {"args", "kwargs"} \
            and not value["kwargs"] and len(value["args"]) == 1:
        return value["args"][0]
    return value

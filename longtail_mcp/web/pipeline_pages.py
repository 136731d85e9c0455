"""The web view's pipeline pages and Ask: pipelines by status; a pipeline's page (facts, step graph, YAML,
versions, lifecycle buttons); and a request sent through the mcpQuery router (the `query` workflow).

They call what the compiler server's tools and the workflows server's `query` tool call (`pipelines.store`,
`pipelines.service`, `runnables.start_and_wait`, `humans.runs`), as the signed-in visitor, so who may do what
is the services' decision; the buttons only mirror it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from longtail_mcp.agents import router
from longtail_mcp.agents.router import QueryInput, QueryResult
from longtail_mcp.errors import Forbidden, InvalidInput, LongtailError, NotFound
from longtail_mcp.humans import runs
from longtail_mcp.humans.identity import Principal
from longtail_mcp.pipelines import service, store
from longtail_mcp.pipelines.model import STATUSES, Pipeline
from longtail_mcp.pipelines.records import PipelineInfo
from longtail_mcp.web.errors import status_code
from longtail_mcp.web.session import CSRF_FIELD, Visitor
from longtail_mcp.web.step_graph import layout
from system_servers.runnables import start_and_wait

if TYPE_CHECKING:  # pages.py includes these routes: a runtime import would be circular
    from longtail_mcp.web.pages import Pages

LIST_LIMIT = 200  # rows the list shows; past it, the page asks for a narrower search
LISTED = ("active", "deployed", "draft", "archived")  # the sections of the unfiltered list, in this order
DONE = {"verify-passed": "Verified: the latest version passed and may be activated.",
        "verify-failed": "Verification failed: see the problems below.",
        "deployed": "Deployed: ready to activate.", "activated": "Activated: its tool is published.",
        "archived": "Archived: its tool is gone and its schedule stopped.", "restored": "Restored as a draft."}
PATHS = {
    "template": "A pipeline answered: the request reads like its prompt template (no model call).",
    "search": "A pipeline answered: a model chose it among the active pipelines.",
    "agent": "The agent answered: no active pipeline fit the request.",
    "fallback": "A pipeline started and failed; the agent went on from its finished steps.",
}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def actions_for(who: Principal, info: PipelineInfo) -> list[str]:
    """The lifecycle buttons to show: what the services would allow this visitor in this state (they decide
    again on every POST). Superadmins move pipelines; an owner may verify and deploy their own."""
    if who.scope != "full":
        return []
    owner = who.superadmin or info.created_by == who.id
    status = info.status
    offered = []
    if owner and status in ("draft", "deployed", "active"):
        offered.append("verify")
    if owner and status == "draft":
        offered.append("deploy")
    if who.superadmin:
        if status == "deployed" or (status == "active" and info.version != info.active_version):
            offered.append("activate")
        if status != "archived":
            offered.append("archive")
        else:
            offered.append("restore")
    return offered


class PipelinePages:
    """The pipeline and Ask handlers, drawn and guarded by the `Pages` they join."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.client = pages.client

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/pipelines", self.listing, methods=["GET"]),
            Route("/pipelines/{name}", self.pipeline, methods=["GET"]),
            Route("/pipelines/{name}", self.act, methods=["POST"]),
            Route("/ask", self.ask_page, methods=["GET"]),
            Route("/ask", self.ask, methods=["POST"]),
        ]

    def render(self, request: Request, visitor: Visitor, template: str, context: dict[str, Any],
               status: int = 200) -> Response:
        root = request.scope.get("root_path", "")
        return self.pages.render(request, visitor, template, {
            "run_url": lambda workflow_id: f"{root}/runs/{quote(workflow_id, safe='')}",
            "pipeline_url": lambda name: f"{root}/pipelines/{quote(name, safe='')}", **context,
        }, status=status)

    def refused(self, request: Request, visitor: Visitor, exc: LongtailError) -> Response:
        return self.render(request, visitor, "error.html", {"error": exc.message}, status=status_code(exc))

    # -- the list -------------------------------------------------------------------------------------------

    async def listing(self, request: Request) -> Response:
        visitor, who = await self.pages.signed_in(request)
        if who is None:
            return self.pages.to_signin(request)
        status = request.query_params.get("status") or ""
        status = status if status in STATUSES else ""
        words = (request.query_params.get("q") or "").strip()[:500]
        found = await store.search(self.client.db, status=status or None, query=words or None, limit=LIST_LIMIT + 1)
        more, found = len(found) > LIST_LIMIT, found[:LIST_LIMIT]
        sections = [(s, [p for p in found if p.status == s]) for s in ((status,) if status else LISTED)]
        return self.render(request, visitor, "pipelines.html", {
            "sections": sections, "status": status, "words": words, "statuses": STATUSES, "more": more,
            "limit": LIST_LIMIT,
        })

    # -- one pipeline ---------------------------------------------------------------------------------------

    async def page(self, request: Request, visitor: Visitor, who: Principal, name: str, *, error: str = "",
                   status: int = 200) -> Response:
        wanted = request.query_params.get("version")
        try:
            if wanted is not None and not wanted.isdigit():
                raise InvalidInput(f"version {wanted!r} is not a number")
            info = await store.get(self.client.db, name)
            shown = await store.version(self.client.db, name, int(wanted) if wanted else None)
            versions = await store.versions(self.client.db, name)
        except LongtailError as exc:
            return self.refused(request, visitor, exc)
        pipeline = Pipeline.model_validate(shown.definition)
        return self.render(request, visitor, "pipeline.html", {
            "info": info, "shown": shown, "pipeline": pipeline, "graph": layout(pipeline), "versions": versions,
            "actions": actions_for(who, info), "error": error,
            "done": DONE.get(request.query_params.get("done", "")),
        }, status=status)

    async def pipeline(self, request: Request) -> Response:
        visitor, who = await self.pages.signed_in(request)
        if who is None:
            return self.pages.to_signin(request)
        return await self.page(request, visitor, who, request.path_params["name"])

    async def act(self, request: Request) -> Response:
        """verify, deploy, activate (with `force`), archive or restore (the `action` field), then back to the page."""
        visitor, who = await self.pages.signed_in(request)
        if who is None:
            return self.pages.to_signin(request)
        name = request.path_params["name"]
        form = await request.form()
        try:
            self.pages.sessions.check_csrf(visitor, form.get(CSRF_FIELD))
        except Forbidden as exc:
            return self.refused(request, visitor, exc)
        action = _text(form, "action")
        db = self.client.db
        try:
            if action == "verify":
                info = await service.verify(db, who, name, tools=await self.client.tool_catalog())
                done = "verify-passed" if (info.verification or {}).get("passed") else "verify-failed"
            elif action == "deploy":
                await store.deploy(db, who, name)
                done = "deployed"
            elif action == "activate":
                await store.activate(db, who, name, force=_text(form, "force") == "yes")
                done = "activated"
            elif action == "archive":
                await store.archive(db, who, name)
                done = "archived"
            elif action == "restore":
                await store.restore(db, who, name)
                done = "restored"
            else:
                raise InvalidInput(f"unknown action {action!r}")
        except LongtailError as exc:
            if isinstance(exc, NotFound):
                return self.refused(request, visitor, exc)
            return await self.page(request, visitor, who, name, error=exc.message, status=status_code(exc))
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/pipelines/{quote(name, safe='')}?done={done}", status_code=303)

    # -- Ask ------------------------------------------------------------------------------------------------

    async def ask_page(self, request: Request) -> Response:
        """The request form; with `?run=ID`, also where that request stands and which path answered it."""
        visitor, who = await self.pages.signed_in(request)
        if who is None:
            return self.pages.to_signin(request)
        context: dict[str, Any] = {"text": "", "tags": ""}
        status = 200
        run_id = request.query_params.get("run")
        if run_id:
            try:
                run = await runs.get_run(self.client.db, who, run_id)
                if run.name != router.WORKFLOW:
                    raise NotFound(f"run {run_id!r} is not a request (a `{router.WORKFLOW}` run)")
            except LongtailError as exc:
                context["error"], status = exc.message, status_code(exc)
            else:
                asked = run.input if isinstance(run.input, dict) else {}
                result = QueryResult.model_validate(run.result) if run.status == "completed" and run.result else None
                context.update(run=run, asked=asked.get("request", ""), result=result,
                               path_text=PATHS.get(result.path, "") if result else "",
                               failure=(run.error or {}).get("message") if run.status in ("failed", "cancelled")
                               else None)
        return self.render(request, visitor, "ask.html", context, status=status)

    async def ask(self, request: Request) -> Response:
        """Start a `query` run as the visitor and wait for it as the `query` tool does; then show it (/ask?run=)."""
        visitor, who = await self.pages.signed_in(request)
        if who is None:
            return self.pages.to_signin(request)
        form = await request.form()
        try:
            self.pages.sessions.check_csrf(visitor, form.get(CSRF_FIELD))
        except Forbidden as exc:
            return self.refused(request, visitor, exc)
        text, tags = _text(form, "request").strip(), _text(form, "tags")
        try:
            asked = _query_input(text, tags)
            out = await start_and_wait(self.client, who, router.WORKFLOW, asked.model_dump(exclude_none=True))
        except LongtailError as exc:
            return self.render(request, visitor, "ask.html", {"text": text, "tags": tags, "error": exc.message},
                               status=status_code(exc))
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/ask?{urlencode({'run': out['workflow_id']})}", status_code=303)


def _query_input(text: str, tags: str) -> QueryInput:
    """Raises InvalidInput, saying what to change."""
    if not text:
        raise InvalidInput("Write a request first.")
    try:
        return QueryInput(request=text, tags=[t for t in (t.strip() for t in tags.split(",")) if t] or None)
    except ValidationError as exc:
        raise InvalidInput("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None

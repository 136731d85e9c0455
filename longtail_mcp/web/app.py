"""The Starlette app `longtail-mcp serve` runs: /health, /events, the JSON API at /api/v1, /mcp and /sse, and the
web view at /."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from longtail_mcp.app.client import Client
from longtail_mcp.db.migrate import latest_version
from longtail_mcp.errors import InvalidInput
from longtail_mcp.events.bus import check_patterns
from longtail_mcp.humans.runs import EventAudience
from longtail_mcp.mcp_glue.http import BearerAuth, HostGuard, mcp_routes, request_principal
from longtail_mcp.mcp_glue.server import ListChanged
from longtail_mcp.runtime import service
from longtail_mcp.runtime.worker import Worker
from longtail_mcp.web.api import JsonApi
from longtail_mcp.web.live import event_stream
from longtail_mcp.web.pages import page_routes
from system_servers import gateway


async def health_report(app: Client, worker: Worker | None) -> tuple[bool, dict[str, Any]]:
    """(healthy, details): database reachable, migrations current, workers alive."""
    report: dict[str, Any] = {"migrations_latest": latest_version()}
    try:
        counts = await service.health(app.db, stale_seconds=app.settings.lease_seconds)
        report.update(database="ok", **counts)
    except Exception as exc:
        report.update(database=f"unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return False, {"status": "unhealthy", **report}
    if worker is not None:
        report["worker"] = {"id": worker.worker_id, "alive": worker.alive, "running": len(worker.running)}
    healthy = report["migration"] >= report["migrations_latest"] and (worker is None or worker.alive)
    return healthy, {"status": "ok" if healthy else "unhealthy", **report}


def build_app(app: Client, worker: Worker | None = None, *, mcp: bool = False, dev: bool = False,
              host: str = "127.0.0.1") -> Any:
    """The HTTP app: /health, /events, the JSON API at /api/v1 (web/api.py), the web view for people at /
    (web/pages.py), and with `mcp` the whole MCP family at /mcp and /sse.

    Every route checks Host and Origin (DNS rebinding). `/events` and MCP need an API key (read scope
    is enough for events, and each subscriber gets only events about what it may see), unless `dev`
    (loopback only), where requests act as the local operator.
    """
    async def health(request: Request) -> JSONResponse:
        healthy, report = await health_report(app, worker)
        return JSONResponse(report, status_code=200 if healthy else 503)

    async def events(request: Request) -> Response:
        """Server-sent events: `?type=run.completed,step.*` and `?workflow_id=` filter; `event:` is the type."""
        types = [t for t in request.query_params.get("type", "").split(",") if t] or None
        try:
            check_patterns(types)
        except InvalidInput as exc:
            return JSONResponse({"error": exc.message}, status_code=400)
        workflow_id = request.query_params.get("workflow_id") or None
        state = request.scope["state"]
        audience = EventAudience(app.db, state["principal"], recheck=state.get("reauthenticate"))
        return event_stream(app, audience, types, workflow_id)

    routes: list[Any] = [Route("/health", health), Route("/events", BearerAuth(events_endpoint(events), app, dev=dev)),
                         Mount("/api/v1", app=JsonApi(app, dev=dev))]
    lifespan = None
    if mcp:
        list_changed = ListChanged()
        more, mcp_lifespan = mcp_routes(gateway(app, request_principal, list_changed), app, dev=dev, host=host)
        routes += more

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with mcp_lifespan(), anyio.create_task_group() as tg:
                tg.start_soon(list_changed.watch, app.events)  # pipelines (de)activated anywhere: tell clients
                yield
                tg.cancel_scope.cancel()

    routes += page_routes(app, dev=dev)  # after the others: it owns / and whatever they leave
    return HostGuard(Starlette(routes=routes, lifespan=lifespan), host)


def events_endpoint(handler: Any) -> Any:
    """An ASGI app calling a request handler (so BearerAuth can wrap it like the MCP endpoints)."""
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        response = await handler(Request(scope, receive))
        await response(scope, receive, send)

    return asgi

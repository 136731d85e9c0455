"""The Starlette app `longtail-mcp serve` runs: /health today, later /mcp, /sse, /events and the web view."""

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from longtail_mcp.db.migrate import latest_version
from longtail_mcp.db.queries import load
from longtail_mcp.runtime.app import LongTail
from longtail_mcp.runtime.worker import Worker

Q = load("runtime")


async def health_report(app: LongTail, worker: Worker | None) -> tuple[bool, dict[str, Any]]:
    """(healthy, details): database reachable, migrations current, workers alive."""
    report: dict[str, Any] = {"migrations_latest": latest_version()}
    try:
        async with app.db.connection() as conn:
            row = await (await conn.execute(Q["health"], {"stale": app.settings.lease_seconds})).fetchone()
        report.update(database="ok", migration=row["migration"], workers_alive=row["workers_alive"])
    except Exception as exc:
        report.update(database=f"unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return False, {"status": "unhealthy", **report}
    if worker is not None:
        report["worker"] = {"id": worker.worker_id, "alive": worker.alive, "running": len(worker.running)}
    healthy = report["migration"] >= report["migrations_latest"] and (worker is None or worker.alive)
    return healthy, {"status": "ok" if healthy else "unhealthy", **report}


def build_app(app: LongTail, worker: Worker | None = None) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        healthy, report = await health_report(app, worker)
        return JSONResponse(report, status_code=200 if healthy else 503)

    return Starlette(routes=[Route("/health", health)])

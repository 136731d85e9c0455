"""A backend that is not an MCP client, using the JSON API at /api/v1: a shop asks its billing team.

    python examples/json_api.py

The HTTP side of `longtail-mcp serve` (the same `build_app`, here on a free 127.0.0.1 port in this
process, with one worker) serves a `refund` workflow that asks the `billing` role to decide. Then,
over plain HTTP with two API keys:

- the shop's backend (account `shop`, a bot) starts a refund run (201 and a Location header), looks
  at it while it waits for a person (`/wait` with a short timeout answers `done: false`);
- bea (in role `billing`) lists the work she may claim, claims it, sends a decision the role's form
  rejects (400, the error per field), then approves it;
- the shop waits for the run again and gets its result;
- the shop also asks billing a question directly (`POST /escalations`, no workflow), and bea
  re-routes it to `support`, who cancel it; its history tells the story.

Every endpoint is one of the MCP tools over HTTP (same handler, same RBAC); the OpenAPI document is
at /api/v1/openapi.json. Uses DATABASE_URL when set, else a throwaway embedded Postgres.
"""

import socket
import uuid
from contextlib import suppress
from typing import Any

import anyio
import httpx2
import uvicorn
from _demo import demo_app, run

from longtail_mcp import Conflict, Context, LongTail
from longtail_mcp.humans import identity
from longtail_mcp.humans.identity import SYSTEM
from longtail_mcp.web.app import build_app

app = demo_app("api")
FORM = {"type": "object", "required": ["approved"],
        "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}}}


@app.workflow("refund")
async def refund(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    decision = await ctx.escalate("billing", f"Refund {order['cents'] / 100:.2f} EUR on order {order['id']}?",
                                  {"order": order}, priority=2)
    return {"order": order["id"], "refunded": decision["approved"], "note": decision.get("note", "")}


async def keys_for(app: LongTail) -> dict[str, str]:
    """Roles, accounts and one fresh key each (reusing what a database used before holds)."""
    db = app.db
    for role in ("billing", "support"):
        with suppress(Conflict):
            await identity.create_role(db, SYSTEM, role)
    await identity.add_form(db, SYSTEM, "billing", FORM)
    for account, kind, role in (("shop", "bot", None), ("bea", "human", "billing"), ("sol", "human", "support")):
        with suppress(Conflict):
            await identity.create_account(db, SYSTEM, account, kind=kind)
        if role:
            await identity.set_membership(db, SYSTEM, role, account)
    return {who: (await identity.create_key(db, SYSTEM, who, name="json_api example"))["key"]
            for who in ("shop", "bea", "sol")}


def client(base: str, key: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60)


async def backend(base: str, keys: dict[str, str], order_id: str) -> None:
    async with client(base, keys["shop"]) as shop, client(base, keys["bea"]) as bea, \
            client(base, keys["sol"]) as sol:
        started = await shop.post("/runs", json={"name": "refund", "workflow_id": f"refund-{order_id}",
                                                 "input": {"id": order_id, "cents": 4250}})
        where = started.headers["location"].removeprefix("/api/v1")
        print(f"shop: POST /runs -> {started.status_code}, Location: {started.headers['location']}")
        waiting = (await shop.get(f"{where}/wait", params={"timeout_seconds": 1})).json()
        while waiting["run"]["status"] != "waiting":  # started, not yet at its question: ask again
            waiting = (await shop.get(f"{where}/wait", params={"timeout_seconds": 1})).json()
        print(f"shop: waited 1 s -> done={waiting['done']} status={waiting['run']['status']} "
              f"waiting_for={waiting['run']['waiting_for'].split(':')[0]}")

        work = (await bea.get("/escalations", params={"role": "billing", "type": "review"})).json()["escalations"]
        (item,) = [e for e in work if e["workflow_id"] == f"refund-{order_id}"]
        print(f"bea: her work: {item['message']!r} (priority {item['priority']})")
        claimed = (await bea.post(f"/escalations/{item['id']}/claim", json={"minutes": 10})).json()
        print(f"bea: claimed, assigned_to={claimed['assigned_to']}")
        wrong = await bea.post(f"/escalations/{item['id']}/resolve", json={"resolution": {"approved": "yes"}})
        print(f"bea: a decision the form rejects -> {wrong.status_code} {wrong.json()['error']['data']['errors']}")
        done = await bea.post(f"/escalations/{item['id']}/resolve",
                              json={"resolution": {"approved": True, "note": "damaged in transit"}})
        print(f"bea: resolved -> {done.json()['status']}")

        finished = (await shop.get(f"{where}/wait", params={"timeout_seconds": 30})).json()
        print(f"shop: done={finished['done']} result={finished['run']['result']}")

        asked = await shop.post("/escalations", json={"role": "billing", "message": f"May {order_id} pay later?",
                                                      "type": "question", "escalation_id": f"later-{order_id}"})
        print(f"shop: POST /escalations -> {asked.status_code}, Location: {asked.headers['location']}")
        moved = (await bea.post(f"/escalations/later-{order_id}/reroute",
                                json={"role": "support", "reason": "a support matter"})).json()
        print(f"bea: re-routed to {moved['role']}")
        await sol.post(f"/escalations/later-{order_id}/cancel", json={"reason": "asked on the phone"})
        history = (await sol.get(f"/escalations/later-{order_id}/history")).json()["history"]
        for entry in history:
            print(f"  {entry['action']} by {entry['actor']}" + (f": {entry['reason']}" if entry["reason"] else ""))


async def main() -> None:
    async with app:
        keys = await keys_for(app)
        order_id = f"o-{uuid.uuid4().hex[:6]}"  # a new order each time the example runs on a database
        worker = app.worker()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
            server = uvicorn.Server(uvicorn.Config(build_app(app, worker), log_level="warning", lifespan="on"))

            async def serve_http() -> None:
                await server.serve([sock])
                tg.cancel_scope.cancel()  # the HTTP server drained: stop the worker too

            async with anyio.create_task_group() as tg:
                await tg.start(worker.run)
                tg.start_soon(serve_http)
                while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                    await anyio.sleep(0.02)
                await backend(base, keys, order_id)
                server.should_exit = True


if __name__ == "__main__":
    run(main)

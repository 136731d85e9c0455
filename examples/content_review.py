"""A content review workflow with a reviewer -> admin escalation chain.

    python examples/content_review.py

Two blog posts are submitted by a `cms` bot. A certified `review_post` workflow classifies each
post in a step, then asks the `reviewer` role for a decision with `ctx.escalate` and waits
durably (the run is a row; no worker holds it). The reviewer role has a form (JSON Schema,
validated server-side) and a 3-second stage in its chain; after that the escalation moves to the
`admin` role, whose own stage is the last one (past it the escalation expires, and the run gets a
timeout, never an approval).

- post-1: rita (reviewer) claims it, sends a payload the form rejects, then approves it.
- post-2: nobody at `reviewer` acts; the deadline moves it to `admin`, where alex rejects it.

At the end it prints both outcomes and post-2's role history from the audit log.

Uses DATABASE_URL (or LONGTAIL_DATABASE_URL) when set; otherwise it starts the embedded Postgres
in a temporary LONGTAIL_HOME, which it removes on the way out. One worker runs in this process.
Against an existing database it reuses the roles and accounts it finds (point it at a scratch
database: it sets the chains of the `reviewer` and `admin` roles).
"""

import json
import time
import uuid
from collections.abc import Awaitable
from contextlib import suppress
from typing import Any

import anyio
from _demo import demo_app, run

from longtail_mcp import Conflict, Context, InvalidInput, LongTail, NotFound, WaitTimeout
from longtail_mcp.humans import identity
from longtail_mcp.humans.certified import get_task
from longtail_mcp.humans.identity import SYSTEM, Principal
from longtail_mcp.humans.queue import HumanQueue

# -- the app: an external Postgres if configured, else a throwaway embedded one ----------------------

app = demo_app('review')

REVIEW_STAGE = 3.0  # seconds at `reviewer` before the escalation moves to `admin`
ADMIN_STAGE = 600.0  # the last stage: past it the escalation expires (the run gets WaitTimeout)
REVIEW_FORM = {
    "type": "object",
    "required": ["approved"],
    "properties": {"approved": {"type": "boolean"}, "notes": {"type": "string"}},
    "additionalProperties": False,
}

# -- steps ----------------------------------------------------------------------------------------------

SPAM_WORDS = ("free crypto", "buy followers", "click here")


async def classify(text: str) -> dict[str, Any]:
    """Stands in for a model: a label and a confidence too low to publish without a person."""
    hits = [w for w in SPAM_WORDS if w in text.lower()]
    return {"label": "suspicious" if hits else "clean", "confidence": 0.55 if hits else 0.72, "hits": hits}


async def publish(post_id: str) -> dict[str, Any]:
    return {"url": f"https://blog.example/posts/{post_id}"}


async def notify_author(post_id: str, notes: str) -> dict[str, Any]:
    return {"post": post_id, "sent": notes}


# -- the certified workflow -----------------------------------------------------------------------------


@app.workflow("review_post", certified=True, role="admin")  # certified: an uncaught error escalates to admin
async def review_post(ctx: Context, post: dict[str, Any]) -> dict[str, Any]:
    analysis = await ctx.run(classify, post["text"])
    try:
        decision = await ctx.escalate(
            "reviewer",
            f"Review {post['id']}: {analysis['label']} (confidence {analysis['confidence']})",
            {"post": post, "analysis": analysis},
            priority=2 if analysis["hits"] else 3,  # 1 is most urgent
            metadata={"post_id": post["id"]},
        )  # the reviewer role's current form is pinned on the escalation and validates the decision
    except WaitTimeout:  # expired past the last stage: a timeout never approves
        return {"post": post["id"], "status": "rejected", "notes": "no decision in time"}
    if decision["approved"]:
        page = await ctx.run(publish, post["id"])
        return {"post": post["id"], "status": "published", "url": page["url"], "notes": decision.get("notes", "")}
    await ctx.run(notify_author, post["id"], decision.get("notes", ""))
    return {"post": post["id"], "status": "rejected", "notes": decision.get("notes", "")}


# -- driving it ---------------------------------------------------------------------------------------

POSTS = [
    {"id": "post-1", "title": "Ten tips for sourdough", "text": "Feed the starter twice a day..."},
    {"id": "post-2", "title": "Grow fast", "text": "Buy followers today and get free crypto!"},
]


async def exists_ok(made: Awaitable[Any]) -> None:
    with suppress(Conflict):  # already there: a database this example used before
        await made


def masked(key: str) -> str:
    return key[: key.index("_", 4) + 5] + "..."


async def setup(app: LongTail) -> dict[str, Principal]:
    db = app.db
    # First start: an `admin` account (superadmin, in role `admin`) and a key shown once.
    first = await identity.ensure_admin(db)
    if first is None:  # not the first start: mint a fresh key for the example
        first = await identity.create_key(db, SYSTEM, "admin", name="content-review example")
        print("bootstrap: admin exists; new key " + masked(first["key"]))
    else:
        print(f"bootstrap: account admin (superadmin) and its first key {masked(first['key'])} "
              "(shown once; only its sha256 is stored)")
    admin = await app.authenticate(first["key"])  # what an HTTP bearer key resolves to
    print(f"authenticated as {admin.id}: roles={admin.roles} scope={admin.scope}")

    # Everything below is done *as that admin*, so RBAC and the audit log see who did it.
    await exists_ok(identity.create_role(db, admin, "reviewer", "first line of content review"))
    form = await identity.add_form(db, admin, "reviewer", REVIEW_FORM)
    await identity.set_chain(db, admin, "reviewer", REVIEW_STAGE, "admin")
    await identity.set_chain(db, admin, "admin", ADMIN_STAGE)  # no next role: the last stage
    print(f"roles: reviewer (form v{form}, {REVIEW_STAGE:g} s then -> admin), admin ({ADMIN_STAGE:g} s then expires)")

    people = {}
    for account, name, kind, role in (("rita", "Rita Reviewer", "human", "reviewer"),
                                      ("alex", "Alex Admin", "human", "admin"),
                                      ("cms", "CMS publisher", "bot", None)):
        await exists_ok(identity.create_account(db, admin, account, name, kind=kind))
        if role:
            await identity.set_membership(db, admin, role, account, "member")
        key = await identity.create_key(db, admin, account, name="example", scope="full")
        people[account] = await app.authenticate(key["key"])
        print(f"  {account} ({kind}) key {masked(key['key'])} -> roles={people[account].roles}")
    people["admin"] = admin
    return people


async def wait_escalation(queue: HumanQueue, workflow_id: str) -> dict[str, Any]:
    """The escalation a run opened (it is written in the same transaction as the run's suspension)."""
    with anyio.fail_after(30):
        while True:
            rows = await queue.find(workflow_id=workflow_id)
            if rows:
                return rows[0]
            await anyio.sleep(0.05)


async def main() -> None:
    async with app, anyio.create_task_group() as tg:
        await tg.start(app.worker(poll_seconds=0.25).run)  # the worker also runs the deadline loop
        people = await setup(app)
        # The queue as each person sees it: every call is checked against their roles and key scope.
        rita, alex, admin = app.humans(people["rita"]), app.humans(people["alex"]), app.humans(people["admin"])

        suffix = uuid.uuid4().hex[:8]
        handles = {}
        for post in POSTS:  # the run records who started it (its principal)
            handles[post["id"]] = await app.start("review_post", post, workflow_id=f"review-{post['id']}-{suffix}",
                                                  principal=people["cms"])
        items = {pid: await wait_escalation(admin, h.workflow_id) for pid, h in handles.items()}
        started = time.monotonic()
        print(f"started {', '.join(h.workflow_id for h in handles.values())} as cms; both wait for a reviewer")

        ours = {item["id"] for item in items.values()}
        queue = [i for i in await rita.available() if i["id"] in ours]
        print(f"rita's queue (priority, then age): {[(i['data']['post']['id'], i['priority']) for i in queue]}")

        # post-1: claim, a payload the form rejects (nothing changes), then the decision.
        first = items["post-1"]
        claimed = await rita.claim(first["id"])
        print(f"rita claimed {first['id']} until {claimed['assigned_until']} (form v{claimed['form_version']} pinned)")
        try:
            await rita.resolve(first["id"], {"approved": "yes"})
        except InvalidInput as exc:
            print(f"bad payload rejected: {exc.message}")
        row = await rita.get(first["id"])
        print(f"  still {row['status']}, claimed by {row['assigned_to']}")
        await rita.resolve(first["id"], {"approved": True, "notes": "good read"}, reason="on topic")
        result1 = await handles["post-1"].result(timeout=30)
        print("result post-1: " + json.dumps(result1, sort_keys=True))

        # post-2: nobody at `reviewer` acts; the worker's deadline loop moves it up the chain.
        second = items["post-2"]
        with anyio.fail_after(30):
            while True:
                row = await admin.get(second["id"])
                if row["role"] == "admin":
                    break
                await anyio.sleep(0.1)
        print(f"deadline: {second['id']} moved reviewer -> {row['role']} (stage {row['stage']}) "
              f"after {time.monotonic() - started:.1f} s")
        try:
            await rita.claim(second["id"])
        except NotFound as exc:
            print(f"  rita can no longer see it: {exc.message}")
        print(f"  alex's queue has it: {second['id'] in {i['id'] for i in await alex.available()}}")
        await alex.claim(second["id"])
        await alex.resolve(second["id"], {"approved": False, "notes": "spam"}, reason="spam words")
        result2 = await handles["post-2"].result(timeout=30)
        print("result post-2: " + json.dumps(result2, sort_keys=True))

        done = {pid: await admin.get(item["id"]) for pid, item in items.items()}
        tasks = {pid: (await get_task(app.db, h.workflow_id) or {}).get("status") for pid, h in handles.items()}
        audit = [a for a in await identity.export_audit(app.db, SYSTEM) if a["object_id"] == second["id"]]
        tg.cancel_scope.cancel()  # stop the worker; leaving `async with app` stops the embedded Postgres

    for pid, result in (("post-1", result1), ("post-2", result2)):
        row = done[pid]
        print(f"outcome {pid}: {result['status']} by {row['resolved_by']} at role {row['role']} "
              f"(stage {row['stage']}; certified task {tasks[pid]})")
    print(f"role history of {second['id']} (audit log):")
    role = None
    for a in audit:
        data = a["data"] or {}
        if a["action"] == "escalation.create":
            role, moved = data["role"], f"-> {data['role']}"
        elif "to" in data:
            role, moved = data["to"], f"{data['from']} -> {data['to']}"
        else:
            moved = f"at {role}"
        why = f" ({a['reason']})" if a["reason"] else ""
        print(f"  {a['at'][11:23]} {a['action']:<22} {a['actor']:<7} {moved}{why}")


if __name__ == "__main__":
    run(main)

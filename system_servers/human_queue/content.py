"""The human queue's resources (an escalation with its history, my queue) and prompts (work my queue,
explain a denial), read through the same inbox and escalation functions as its tools."""

from typing import Any

from pydantic import Field, model_validator

from longtail_mcp.humans import escalations as esc
from longtail_mcp.humans import inbox
from longtail_mcp.humans.identity import Principal
from longtail_mcp.tools.prompts import Message, PromptSpec
from longtail_mcp.tools.resources import Contents, Listed, ResourceSpec, json_contents, uri_of
from longtail_mcp.tools.spec import Args, ToolCall

ESCALATION_URI = "longtail://escalations/{id}"
QUEUE_URI = "longtail://queue"
ROLE_QUEUE_URI = "longtail://queue/{role}"
QUEUE_SIZE = 20  # escalations of each kind in a queue (most urgent first); get_available_work pages further


async def escalation_record(call: ToolCall, escalation_id: str) -> dict[str, Any]:
    """An escalation and what happened to it, for anyone who may see it (else NotFound, as for the tools)."""
    row = await esc.get_escalation(call.client.db, call.principal, escalation_id)
    return {"escalation": row.model_dump(mode="json"),
            "history": await esc.history(call.client.db, call.principal, escalation_id)}


async def read_escalation(call: ToolCall, uri: dict[str, str]) -> Contents:
    return json_contents(await escalation_record(call, uri["id"]))


async def queue(call: ToolCall, role: str | None = None) -> dict[str, Any]:
    """What `call.principal` holds and may claim (in `role`, else all their roles), as the tools list them."""
    mine, _ = inbox.page(await inbox.my_work(call.client.db, call.principal, limit=QUEUE_SIZE + 1),
                         limit=QUEUE_SIZE, offset=0)
    if role is not None:
        mine = [e for e in mine if e.role == role]
    available, more = inbox.page(await inbox.available_work(call.client.db, call.principal, role=role,
                                                            limit=QUEUE_SIZE + 1), limit=QUEUE_SIZE, offset=0)
    return {"account": call.principal.id, "role": role, "claimed_by_me": [e.model_dump(mode="json") for e in mine],
            "available": [e.model_dump(mode="json") for e in available], "more_available": more is not None}


async def read_queue(call: ToolCall, uri: dict[str, str]) -> Contents:
    return json_contents(await queue(call, uri.get("role")))


async def open_escalations(call: ToolCall) -> list[Listed]:
    """The escalations I hold and may claim (bounded), most urgent first."""
    found = await queue(call)
    seen: dict[str, dict[str, Any]] = {e["id"]: e for e in found["claimed_by_me"] + found["available"]}
    return [Listed(uri=uri_of(ESCALATION_URI, id=e["id"]), name=e["id"],
                   title=f"[{e['role']}] {_line(e['message'])}",
                   description=f"{e['type']} escalation, priority {e['priority']}, {e['status']}"
                               + (f", claimed by {e['assigned_to']}" if e.get("assigned_to") else ""))
            for e in seen.values()]


def _line(text: str, most: int = 80) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= most else first[:most - 1] + "…"


RESOURCES = [
    ResourceSpec(ESCALATION_URI, "escalation", "An escalation with its history, as JSON: the request (message, "
                 "data, form_schema, priority), its status, claim and resolution, and what happened to it "
                 "(escalation_history). Visible to its role's members, whoever holds its claim, and whoever "
                 "asked; those you hold or may claim are listed.",
                 read_escalation, mime="application/json", listing=open_escalations),
    ResourceSpec(QUEUE_URI, "queue", "My queue, as JSON: the escalations I hold a claim on and those I may claim "
                 f"(my roles), most urgent first, at most {QUEUE_SIZE} of each.", read_queue, mime="application/json",
                 title="My queue"),
    ResourceSpec(ROLE_QUEUE_URI, "role_queue", "My queue in one of my roles, as JSON (as longtail://queue).",
                 read_queue, mime="application/json", title="My queue in a role"),
]


class WorkQueueIn(Args):
    role: str | None = Field(None, min_length=1, max_length=100,
                             description="Only this role's escalations (default: all of my roles)")


def _roles(principal: Principal) -> str:
    if principal.superadmin:
        return "a superadmin (every role)"
    return f"a member of {', '.join(sorted(principal.roles))}" if principal.roles else "a member of no role"


async def work_my_queue(call: ToolCall, args: WorkQueueIn) -> list[Message]:
    found = await queue(call, args.role)
    uri = uri_of(ROLE_QUEUE_URI, role=args.role) if args.role else QUEUE_URI
    count = len(found["claimed_by_me"]) + len(found["available"])
    where = f"in role {args.role!r}" if args.role else "in my roles"
    status = (f"Right now {len(found['claimed_by_me'])} escalation(s) are claimed by me and "
              f"{len(found['available'])} wait for someone {where}"
              + (" (more than shown: get_available_work pages further)." if found["more_available"] else ".")
              if count else f"Right now nothing waits {where}: say so, and stop.")
    return [Message(
        f"Help me ({call.principal.id}, {_roles(call.principal)}) work my queue of escalations in longtail-mcp. "
        f"{status} The queue follows: claimed_by_me first, then available, most urgent first.\n\n"
        "For each escalation, most urgent first: read its message, data and form_schema; look at the run it "
        "belongs to (read longtail://runs/{workflow_id}, or get_run / export_run) and at its history "
        "(escalation_history); then propose a decision that matches its form_schema, with the reason. An "
        "escalation of type 'approval' asks to allow one exact tool call once: check its data (tool, arguments, "
        "rule, reason, requested_by) and never approve a request of mine. Only after I agree: claim_escalation "
        "then resolve_escalation (or claim_and_resolve), reroute_escalation to send it to a better role, or "
        "release_escalation to give back a claim. triage_escalation can hand one to the triage agent. Do not "
        "claim, resolve, re-route or cancel anything without asking me first."),
        Message(resource=(uri, json_contents(found)))]


class ExplainDenialIn(Args):
    escalation_id: str | None = Field(None, min_length=1, max_length=300,
                                      description="The approval escalation the refusal opened (from the error)")
    error: str | None = Field(None, min_length=1, max_length=20_000,
                              description="The error text, e.g. '[denied] ...' or '[forbidden] ...'")

    @model_validator(mode="after")
    def _one_given(self) -> "ExplainDenialIn":
        if self.escalation_id is None and self.error is None:
            raise ValueError("give escalation_id (an approval escalation) or error (the refusal's text), or both")
        return self


REFUSALS = (
    "How longtail-mcp refuses a call:\n"
    "- [denied]: a safety policy of db-query, files or http-fetch refused it; the error's rule names which "
    "(SQL that writes; a path outside_root, on the deny list (denied_path), through a symlink or hard_link, "
    "too_large, or read_only; an internal network address). The same call with request_approval: true opens "
    "an escalation to the approver role bound to that exact call; once resolved with approved: true, the same "
    "call with approval_id goes through once (check_resolution shows the decision; an expired or rejected "
    "approval allows nothing). docs/security.md lists every guard.\n"
    "- [forbidden]: access control: the account is not in the role that may do it, or its key has read scope "
    "(write tools need a full-scope key). An admin changes roles and keys.\n"
    "- [not_found]: absent, or not visible to this account: runs and escalations one may not see look absent.\n"
    "- [invalid_input]: the arguments were wrong; nothing was called."
)


async def explain_denial(call: ToolCall, args: ExplainDenialIn) -> list[Message]:
    messages = [Message(
        "Explain to me, in plain words, why longtail-mcp refused this call and what I can do about it: which "
        "rule or permission refused it, whether asking for an approval makes sense, and the exact next call. "
        "Do not request approvals, resolve escalations or retry anything without asking me.\n\n" + REFUSALS
        + (f"\n\nThe error:\n{args.error}" if args.error else ""))]
    if args.escalation_id is not None:
        record = await escalation_record(call, args.escalation_id)
        messages.append(Message("The approval escalation and its history follow (its data holds the tool, the "
                                "arguments, the rule and the reason of the refusal; its status and resolution say "
                                "whether it was allowed):"))
        messages.append(Message(resource=(uri_of(ESCALATION_URI, id=args.escalation_id), json_contents(record))))
    return messages


PROMPTS = [
    PromptSpec("work_my_queue", "Work my queue of escalations: what I hold and may claim is embedded, with how "
               "to decide each one (nothing is resolved without my say).", WorkQueueIn, work_my_queue),
    PromptSpec("explain_denial", "Explain a refused call ([denied], [forbidden], ...) from its error text or its "
               "approval escalation, and what to do next.", ExplainDenialIn, explain_denial),
]

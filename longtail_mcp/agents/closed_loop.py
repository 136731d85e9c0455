"""The closed loop: a successful agent run of a router becomes a pipeline — a draft, or (policy
`activate`) a verified, active one, published as an MCP tool — so the next such request is answered by
the router's first tier with no model call.

The policy (`off | draft | activate`) is set per router (`router:query`, `router:triage`) and per tag
(`tag:<t>`); a request's tags win over its router, and among several tags the most careful wins
(off < draft < activate). With none set, the setting `auto_compile` (LONGTAIL_AUTO_COMPILE) applies.
"""

import re
from typing import Any, Literal, cast

from longtail_mcp.agents.loop import AgentServices
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Conflict, Forbidden, InvalidInput, NotFound
from longtail_mcp.humans.identity import SYSTEM, Principal, audit, require_superadmin
from longtail_mcp.pipelines import service as pipelines
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.model import Pipeline
from longtail_mcp.pipelines.spelling import prompt_template

Q = load("agents")
Policy = Literal["off", "draft", "activate"]
POLICIES: tuple[Policy, ...] = ("off", "draft", "activate")
ROUTERS = ("query", "triage")
_STOP = frozenset({"a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to",
                   "with", "my", "our", "me", "please"})


def _scope(router: str | None, tag: str | None) -> str:
    if (router is None) == (tag is None):
        raise InvalidInput("a policy is set for a router or for a tag (one of them)")
    if router is not None and router not in ROUTERS:
        raise InvalidInput(f"unknown router {router!r}; one of {', '.join(ROUTERS)}")
    return f"router:{router}" if router is not None else f"tag:{tag}"


async def set_policy(db: Any, actor: Principal, policy: str, *, router: str | None = None,
                     tag: str | None = None) -> dict[str, Any]:
    """Set what a router's (or a tag's) successful agent runs become. Superadmins."""
    require_superadmin(actor, "set the closed-loop policy")
    if policy not in POLICIES:
        raise InvalidInput(f"unknown policy {policy!r}; one of {', '.join(POLICIES)}")
    scope = _scope(router, tag)
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["set_policy"], {"scope": scope, "auto_compile": policy,
                                                          "by": actor.id})).fetchone()
        await audit(conn, actor, "agents.policy", "agent_policy", scope, after=policy)
    return dict(row)


async def clear_policy(db: Any, actor: Principal, *, router: str | None = None, tag: str | None = None) -> None:
    require_superadmin(actor, "clear the closed-loop policy")
    scope = _scope(router, tag)
    async with db.transaction() as conn:
        if await (await conn.execute(Q["delete_policy"], {"scope": scope})).fetchone() is None:
            raise NotFound(f"no policy is set for {scope}")
        await audit(conn, actor, "agents.policy", "agent_policy", scope, after="cleared")


async def list_policies(db: Any) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return [dict(r) for r in await (await conn.execute(Q["list_policies"])).fetchall()]


async def policy_for(services: AgentServices, router: str, tags: list[str] | None) -> Policy:
    """The policy that applies to a request of `router` with `tags`."""
    scopes = [f"router:{router}", *(f"tag:{t}" for t in tags or [])]
    async with services.db.connection() as conn:
        found = {r["scope"]: r["auto_compile"] for r in
                 await (await conn.execute(Q["policies_for"], {"scopes": scopes})).fetchall()}
    by_tag = [found[s] for s in scopes[1:] if s in found]
    if by_tag:
        return min(by_tag, key=POLICIES.index)
    return cast(Policy, found.get(scopes[0], services.settings.auto_compile))


def pipeline_name(request: str, inputs: list[tuple[str, Any]]) -> str:
    """A name from the request's own words (its input values and filler words left out): the same kind of
    request compiles to the same pipeline, a new version of it."""
    template = prompt_template(request, inputs) or request
    literal = re.sub(r"\{[^{}]*\}", " ", template.lower())
    words = [w for w in re.findall(r"[a-z][a-z0-9]*", literal) if w not in _STOP]
    name = "_".join(words)[:48].rstrip("_")
    return name or "agent_pipeline"


async def compile_agent_run(services: AgentServices, principal: Principal | None, agent_run: str, request: str,
                            policy: Policy, *, output: Any, replaces: str | None = None,
                            before: str | None = None) -> dict[str, Any]:
    """Compile into a draft and verify it (under policy `draft` only when it is read-only: verifying runs
    it); with policy `activate`, activate it if verification passed. `before` is a
    routed pipeline run that failed, whose finished steps come first; the result is then a new version of
    `replaces`. `output` is what the pipeline answers, as the run had it (the agent's answer, a triage's
    resolution): values in it that came from the request or a step become expressions.

    Returns what happened, for the router's result: `{pipeline, version, status, verified, notes}` or
    `{error}` when the run could not be compiled (it made no tool call, say).
    """
    actor = principal if isinstance(principal, Principal) and principal.scope == "full" else SYSTEM
    tools = await services.tool_catalog()
    runs = [before, agent_run] if before else [agent_run]

    def named(draft: Pipeline) -> str:
        return replaces or pipeline_name(request, list((draft.examples[0] if draft.examples else {}).items()))

    try:
        first, _text, notes = await pipelines.compile_runs(services.db, actor, runs, tools=tools, name=named,
                                                           request=request, result=output, run_input={})
    except (InvalidInput, Conflict, Forbidden) as exc:
        return {"error": str(exc)}
    if policy != "activate" and not first.read_only:
        # Verifying runs the draft, effects and all: a draft with effects is verified by whoever activates it.
        return {"pipeline": first.name, "version": first.version, "status": first.status, "verified": None,
                "problems": [], "notes": notes}
    verified = await pipelines.verify(services.db, actor, first.name, tools=tools)
    passed = bool((verified.verification or {}).get("passed"))
    info = verified
    if passed and policy == "activate":
        if info.status == "draft":
            info = await store.deploy(services.db, SYSTEM, first.name)
        info = await store.activate(services.db, SYSTEM, first.name)
    return {"pipeline": info.name, "version": first.version, "status": info.status, "verified": passed,
            "problems": list((verified.verification or {}).get("problems") or []), "notes": notes}

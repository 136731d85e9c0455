"""Calling one of the family's tools: the one path shared by the MCP servers and by runs.

Validate the arguments, spend an approval if one is given, run the handler, validate its result
against the output model. A refusal by policy of an `Approvable` tool can become an approval
request. Every error that leaves here is a `LongtailError` whose message is safe to show: anything
else a handler raises is logged with a reference and reported as `internal error (ref ...)`.
"""

import logging
import uuid
from typing import Any

from longtail_mcp.errors import LongtailError, PolicyDenied
from longtail_mcp.humans.identity import Principal
from longtail_mcp.tools import approvals
from longtail_mcp.tools.spec import Approvable, Progress, Services, ToolCall, ToolSpec, no_progress, parse_args

logger = logging.getLogger(__name__)


def internal_error(what: str) -> LongtailError:
    """Log the exception being handled with a fresh reference; the error a client sees names only that."""
    ref = uuid.uuid4().hex[:10]
    logger.exception("%s failed (ref %s)", what, ref)
    return LongtailError(f"internal error (ref {ref})")


async def invoke(spec: ToolSpec, server: str, services: Services, principal: Principal,
                 arguments: dict[str, Any], *, explain: bool = True,
                 progress: Progress = no_progress) -> dict[str, Any]:
    """Call one tool as `principal` and return its structured result; a long call tells `progress`
    how it stands (an MCP client that asked for progress; in-run calls pass none).

    A refusal by policy (`PolicyDenied`) of an `Approvable` tool called with `request_approval: true`
    opens an escalation to the approver role bound to this exact call, and the error names it (in its
    message and its data); without it, the error says how to ask (unless `explain` is False: a run
    asks by itself).

    Raises:
        InvalidInput: the arguments do not match the tool's schema (nothing was called).
        PolicyDenied, Forbidden, NotFound, Conflict, ...: from the handler or the approval.
        LongtailError: `internal error (ref ...)` for anything unexpected (logged with that reference).
    """
    args = parse_args(spec, arguments)
    approved = False
    action: tuple[str, dict[str, Any]] | None = None
    if isinstance(args, Approvable):
        action = (f"{server}/{spec.name}", approvals.canonical(args))
        if args.approval_id is not None:
            await approvals.spend(services.db, principal, args.approval_id, *action)
            approved = True
    try:
        result = await spec.handler(ToolCall(services, principal, approved, progress), args)
        return spec.output.model_validate(result).model_dump(mode="json")
    except PolicyDenied as exc:
        if action is None or approved or not explain:
            raise
        assert isinstance(args, Approvable)
        raise await approvals.explain(services, principal, spec.name, action, exc,
                                      ask=args.request_approval) from None
    except LongtailError:
        raise
    except Exception:
        raise internal_error(f"tool {server}/{spec.name}") from None

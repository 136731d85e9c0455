"""HumanQueue: the escalation services bound to one acting principal, for Python callers."""

from typing import Any

from longtail_mcp.db.pool import Database
from longtail_mcp.humans import escalations, inbox
from longtail_mcp.humans.identity import Principal
from longtail_mcp.humans.models import Escalation, EscalationStats


class HumanQueue:
    """`client.humans(principal)`: every call is checked against that principal's roles and scope."""

    def __init__(self, db: Database, actor: Principal, *, allow_self_approval: bool = False) -> None:
        self.db = db
        self.actor = actor
        self.allow_self_approval = allow_self_approval

    async def escalate(self, role: str, message: str, **options: Any) -> Escalation:
        """An escalation outside any run (options as `ctx.escalate`, plus `escalation_id`)."""
        return await escalations.create_escalation(self.db, self.actor, role=role, message=message, **options)

    async def get(self, escalation_id: str) -> Escalation:
        return await escalations.get_escalation(self.db, self.actor, escalation_id)

    async def claim(self, escalation_id: str, *, seconds: float = escalations.CLAIM_SECONDS) -> Escalation:
        return await escalations.claim(self.db, self.actor, escalation_id, seconds=seconds)

    async def claim_next(self, *, role: str | None = None,
                         seconds: float = escalations.CLAIM_SECONDS) -> Escalation | None:
        return await escalations.claim_next(self.db, self.actor, role=role, seconds=seconds)

    async def release(self, escalation_id: str) -> Escalation:
        return await escalations.release(self.db, self.actor, escalation_id)

    async def resolve(self, escalation_id: str, resolution: dict[str, Any], *, reason: str | None = None) -> Escalation:
        return await escalations.resolve(self.db, self.actor, escalation_id, resolution, reason=reason,
                                         allow_self_approval=self.allow_self_approval)

    async def cancel(self, escalation_id: str, *, reason: str | None = None) -> Escalation:
        return await escalations.cancel(self.db, self.actor, escalation_id, reason=reason)

    async def reroute(self, escalation_id: str, role: str, *, reason: str | None = None) -> Escalation:
        return await escalations.reroute(self.db, self.actor, escalation_id, role, reason=reason)

    async def available(self, *, role: str | None = None, type: str | None = None, sort: str = "priority",
                        limit: int = 50, offset: int = 0) -> list[Escalation]:
        return await inbox.available_work(self.db, self.actor, role=role, type=type, sort=sort, limit=limit,
                                          offset=offset)

    async def mine(self, *, role: str | None = None, type: str | None = None, sort: str = "priority",
                   limit: int = 50, offset: int = 0) -> list[Escalation]:
        return await inbox.my_work(self.db, self.actor, role=role, type=type, sort=sort, limit=limit, offset=offset)

    async def find(self, **filters: Any) -> list[Escalation]:
        return await inbox.find_escalations(self.db, self.actor, **filters)

    async def stats(self) -> EscalationStats:
        return await inbox.escalation_stats(self.db, self.actor)

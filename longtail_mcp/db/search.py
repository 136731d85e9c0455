"""Composed search queries: fixed SQL fragments chosen by which filters are given (so indexes apply)."""

from typing import LiteralString

_BASE: LiteralString = (
    "SELECT id, name, kind, status, state, parent_id, created_at, updated_at, completed_at FROM workflow"
)
_FILTERS: dict[str, LiteralString] = {
    "state": "state @> %(state)s::jsonb",  # GIN (jsonb_path_ops)
    "path": "state @? %(path)s::jsonpath",  # GIN (jsonb_path_ops)
    "status": "status = %(status)s",
    "name": "name = %(name)s",
    # RBAC for people who are not superadmins: runs they started, and runs that asked one of their roles.
    "visible": "(principal ->> 'id' = %(who)s OR EXISTS (SELECT 1 FROM escalation e"
               " WHERE e.workflow_id = workflow.id AND e.role = ANY(%(roles)s)))",
}


def find_runs_query(*, state: bool, path: bool, status: bool, name: bool, visible: bool = False) -> LiteralString:
    wanted = {"state": state, "path": path, "status": status, "name": name, "visible": visible}
    clauses = [_FILTERS[k] for k, on in wanted.items() if on]
    where: LiteralString = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return _BASE + where + " ORDER BY created_at DESC, id LIMIT %(limit)s"


_ESC_FILTERS: dict[str, LiteralString] = {
    "roles": "role = ANY(%(roles)s)",
    "status": "status = %(status)s",
    "role": "role = %(role)s",
    "type": "type = %(type)s",
    "priority": "priority = %(priority)s",
    "metadata": "metadata @> %(metadata)s::jsonb",  # GIN (jsonb_path_ops)
    "workflow_id": "workflow_id = %(workflow_id)s",
}


def find_escalations_query(**given: bool) -> LiteralString:
    clauses = [_ESC_FILTERS[k] for k, on in given.items() if on]
    where: LiteralString = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return "SELECT * FROM escalation" + where + " ORDER BY created_at DESC, id LIMIT %(limit)s OFFSET %(offset)s"

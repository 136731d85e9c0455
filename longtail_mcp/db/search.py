"""Composed search queries: fixed fragments of queries/search.sql chosen by which filters are given (so
each combination gets a plan that uses its indexes, rather than one query full of `IS NULL OR`)."""

from psycopg import sql

from longtail_mcp.db.queries import load

F = load("search")


ESCALATION_ORDERS = ("priority", "oldest", "newest")  # the orders a listing of escalations may ask for


def _compose(family: str, given: dict[str, bool], order: str = "order") -> sql.Composed:
    clauses = [sql.SQL(F[f"{family}_{name}"]) for name, on in given.items() if on]
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")
    return sql.Composed([sql.SQL(F[f"{family}_select"]), where, sql.SQL(" "), sql.SQL(F[f"{family}_{order}"])])


def find_runs_query(*, state: bool, path: bool, status: bool, name: bool, visible: bool = False) -> sql.Composed:
    return _compose("runs", {"state": state, "path": path, "status": status, "name": name, "visible": visible})


def find_escalations_query(*, order: str = "newest", **given: bool) -> sql.Composed:
    return _compose("escalations", given, f"order_{order}")


def work_query(which: str, *, role: bool, type: bool, order: str) -> sql.Composed:
    """Work waiting for someone (`which`: `available` to claim, or `mine`, claimed), of one role and type if
    given, one page in an order of ESCALATION_ORDERS."""
    parts = [F[f"work_{which}"]] + [F[f"work_{name}"] for name, on in (("role", role), ("type", type)) if on]
    return sql.SQL(" ").join(sql.SQL(part) for part in [*parts, F[f"escalations_order_{order}"]])

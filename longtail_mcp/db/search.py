"""Composed search queries: fixed fragments of queries/search.sql chosen by which filters are given (so
each combination gets a plan that uses its indexes, rather than one query full of `IS NULL OR`)."""

from psycopg import sql

from longtail_mcp.db.queries import load

F = load("search")


def _compose(family: str, given: dict[str, bool]) -> sql.Composed:
    clauses = [sql.SQL(F[f"{family}_{name}"]) for name, on in given.items() if on]
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")
    return sql.Composed([sql.SQL(F[f"{family}_select"]), where, sql.SQL(" "), sql.SQL(F[f"{family}_order"])])


def find_runs_query(*, state: bool, path: bool, status: bool, name: bool, visible: bool = False) -> sql.Composed:
    return _compose("runs", {"state": state, "path": path, "status": status, "name": name, "visible": visible})


def find_escalations_query(**given: bool) -> sql.Composed:
    return _compose("escalations", given)

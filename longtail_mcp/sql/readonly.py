"""run_sql: one untrusted statement, read-only, enforced by the database rather than by parsing.

Four locks, each enough on its own against writes: the statement is sent through the extended
protocol (the server refuses a second statement in it), inside a READ ONLY transaction, on a
connection logged in as a role with no write grants (migration 0005), and the transaction is always
rolled back. A statement timeout and a row cap bound what one call costs. A statement the database
refused as a write is a `PolicyDenied`: an approver may let that exact statement run once, as the
writer role (migration 0006: no superuser, no DDL, no secrets), committed.

A caller that gives up (an MCP client cancelling the call) stops the statement in the server: the
statement runs shielded from the cancellation while a watcher sends Postgres a cancel request, so the
connection finishes its protocol exchange, rolls back and goes back to its pool clean before the
cancellation goes on. (Cancelling psycopg mid-statement instead leaves the backend running the query
and the connection unusable.)
"""

import base64
import datetime as dt
import decimal
import ipaddress
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import psycopg
from psycopg import errors as pg
from psycopg import pq

from longtail_mcp.db.pool import Conn, Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Forbidden, InvalidInput, PolicyDenied, Unavailable
from longtail_mcp.humans.identity import Principal, require_write

logger = logging.getLogger(__name__)
Q = load("reports")
MAX_SQL_CHARS = 100_000
CANCEL_SECONDS = 5.0  # how long a cancel request to the server may take

# SQLSTATEs that mean "this statement would change something": the policy refusal an approval lifts.
_WRITE_REFUSALS: dict[str, str] = {
    "25006": "it writes, and run_sql is read-only",  # read_only_sql_transaction
    "42501": "the read-only database role has no privilege for it",  # insufficient_privilege
    "25001": "it tries to change the transaction's mode",  # active_sql_transaction (SET TRANSACTION READ WRITE)
    "0A000": "the read-only transaction does not support it",  # feature_not_supported (e.g. in read-only mode)
}


def check_statement(statement: str) -> None:
    """Shape checks only (the database decides what a statement does).

    Raises:
        InvalidInput: empty, NUL bytes, or longer than MAX_SQL_CHARS.
    """
    if not statement.strip():
        raise InvalidInput("sql is empty: give one SQL statement")
    if "\x00" in statement:
        raise InvalidInput("sql contains a NUL byte")
    if len(statement) > MAX_SQL_CHARS:
        raise InvalidInput(f"sql is {len(statement):,} characters; the limit is {MAX_SQL_CHARS:,}")


def may_run_sql(actor: Principal) -> None:
    """run_sql reads every table whatever the caller's roles, so it is for superadmins only."""
    if not actor.superadmin:
        raise Forbidden(f"{actor.id} may not use run_sql: it reads every row regardless of roles, so only "
                        "superadmins may; use find_runs, find_escalations or the stats tools instead")


async def run_sql(db: Database, actor: Principal, statement: str, *, max_rows: int, timeout_ms: int,
                  approved: bool = False) -> dict[str, Any]:
    """Run one statement and return `{columns: [{name, type}], rows, row_count, truncated, command}`.

    Raises:
        Forbidden: the caller is not a superadmin.  InvalidInput: bad SQL, several statements, timeout.
        PolicyDenied: the database refused it as a write (unless `approved`).
        ConfigurationError: no reader role exists.
    """
    may_run_sql(actor)
    check_statement(statement)
    if approved:
        require_write(actor)
    return await _stoppable(db.writer if approved else db.reader, statement, max_rows=max_rows,
                            timeout_ms=timeout_ms, commit=approved)


class _Stopped(Exception):
    """The caller was cancelled before the statement started (replaced by the cancellation itself)."""


async def _stoppable(login: Callable[[], AbstractAsyncContextManager[Conn]], statement: str, *, max_rows: int,
                     timeout_ms: int, commit: bool) -> dict[str, Any]:
    """`_execute` on a `login` connection, shielded; if the caller is cancelled meanwhile, the server is asked
    to cancel the statement, and the cancellation goes on once the connection is back in its pool."""
    stop = anyio.Event()
    current: list[Conn] = []
    done = False

    async def watch() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            if not done:  # the caller was cancelled, not the watcher dismissed
                stop.set()
                # Only a command in progress: a cancel request that arrived between commands would hit the
                # next one (the rollback, or the pool's reset).
                if current and current[0].pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
                    with anyio.CancelScope(shield=True):
                        try:
                            await current[0].cancel_safe(timeout=CANCEL_SECONDS)
                        except Exception as exc:  # the statement timeout still bounds it
                            logger.warning("could not cancel a run_sql statement: %s", exc)

    result: dict[str, Any] | None = None
    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        with anyio.CancelScope(shield=True):
            try:
                async with login() as conn:
                    current.append(conn)
                    try:
                        result = await _execute(conn, statement, max_rows=max_rows, timeout_ms=timeout_ms,
                                                commit=commit, stop=stop)
                    finally:
                        current.clear()  # going back to its pool: nothing of ours to cancel any more
            except Exception as exc:  # carried out of the task group by hand (it would wrap it in a group)
                error = exc
            finally:
                done = True
        tg.cancel_scope.cancel()
    if stop.is_set():  # the caller was cancelled: what the statement did (it was cancelled too) is nobody's answer
        await anyio.lowlevel.checkpoint()  # raises the caller's cancellation
    if error is not None:
        raise error
    assert result is not None
    return result


async def _execute(conn: Conn, statement: str, *, max_rows: int, timeout_ms: int, commit: bool,
                   stop: anyio.Event) -> dict[str, Any]:
    autocommit = conn.autocommit
    if autocommit:
        await conn.set_autocommit(False)
    try:
        cur = conn.cursor()
        await cur.execute(Q["statement_timeout"], {"ms": str(timeout_ms)})
        if stop.is_set():  # the caller gave up while this connection was being set up: do not start
            raise _Stopped
        rows: list[list[Any]] = []
        truncated = False
        try:
            if commit:  # an approved statement: rows or not, once; prepare=True keeps the extended protocol
                await cur.execute(statement, prepare=True)  # untrusted text, never formatted
                fetched = await cur.fetchmany(max_rows + 1) if cur.description else []
                truncated = len(fetched) > max_rows
                rows = [[_jsonable(v) for v in r.values()] for r in fetched[:max_rows]]
            else:
                # stream() always uses the extended protocol: a second statement is a server-side error.
                async for row in cur.stream(statement):  # untrusted text, never formatted
                    if len(rows) == max_rows:
                        truncated = True
                        break
                    rows.append([_jsonable(v) for v in row.values()])
        except pg.QueryCanceled:
            raise InvalidInput(f"the statement ran longer than the {timeout_ms} ms statement timeout") from None
        except psycopg.ProgrammingError as exc:
            if "didn't produce a result" not in str(exc):
                raise _refusal(exc, approved=commit) from None
            raise InvalidInput("run_sql answers with rows: give a statement that returns rows (SELECT, VALUES, "
                               "TABLE, SHOW, EXPLAIN); this one returned none") from None
        except psycopg.Error as exc:
            raise _refusal(exc, approved=commit) from None
        columns = await _columns(conn, cur) if cur.description else []
        command = cur.statusmessage or None
        if commit:
            await conn.commit()
        return {"columns": columns, "rows": rows, "row_count": len(rows), "truncated": truncated,
                "command": command}
    finally:
        await conn.rollback()  # read-only or not yet committed: nothing of it stays
        if autocommit:
            await conn.set_autocommit(True)


def _refusal(exc: psycopg.Error, *, approved: bool = False) -> Exception:
    state = exc.sqlstate or ""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if approved and state == "42501":
        return Forbidden(f"even approved, run_sql runs as the writer role, which may not do this ({first}): it is "
                         "no superuser, creates no roles or databases, changes no tables' definitions, and reads "
                         "no secrets")
    if state in _WRITE_REFUSALS:
        return PolicyDenied(f"the database refused the statement: {_WRITE_REFUSALS[state]} ({first}). Ask for an "
                            "approval (request_approval: true) to run this exact statement once with write access",
                            rule="read_only_sql")
    if state == "42601" and "multiple commands" in first:
        return InvalidInput("run_sql takes exactly one statement per call (the server refused several)")
    if isinstance(exc, psycopg.OperationalError):
        return Unavailable(f"database unavailable: {first}")
    return InvalidInput(f"the database rejected the statement: {first}")


async def _columns(conn: Conn, cur: Any) -> list[dict[str, str]]:
    names: dict[int, str] = {}
    unknown = []
    for col in cur.description:
        info = conn.adapters.types.get(col.type_code)
        if info is not None:
            names[col.type_code] = info.name
        else:
            unknown.append(col.type_code)
    if unknown:  # enums, domains, extension types: ask the catalogue
        found = await (await conn.execute(Q["type_names"], {"oids": unknown})).fetchall()
        names.update({r["oid"]: r["name"] for r in found})
    return [{"name": col.name, "type": names.get(col.type_code, str(col.type_code))} for col in cur.description]


def _jsonable(value: Any) -> Any:
    """A database value as JSON: numbers and text as they are, times in ISO 8601, bytes in base64."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact: a float would round it
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network
                  | ipaddress.IPv6Network | ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)

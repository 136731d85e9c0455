"""psycopg errors -> LongtailError, translated once, here."""

import psycopg
from psycopg import errors as pg

from longtail_mcp.errors import Conflict, InvalidInput, LongtailError, Unavailable


def translate(exc: BaseException) -> BaseException:
    """The domain error for a database error; other exceptions pass through unchanged."""
    if isinstance(exc, LongtailError) or not isinstance(exc, psycopg.Error | TimeoutError):
        return exc
    if isinstance(exc, pg.UniqueViolation):
        return Conflict(f"already exists ({exc.diag.constraint_name or 'unique constraint'})")
    if isinstance(exc, pg.SerializationFailure | pg.DeadlockDetected | pg.LockNotAvailable):
        return Conflict("a concurrent change won; try again")
    if isinstance(exc, pg.DataError | pg.IntegrityError):
        return InvalidInput(str(exc).splitlines()[0])
    if isinstance(exc, psycopg.OperationalError | TimeoutError):
        return Unavailable(f"database unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    return exc

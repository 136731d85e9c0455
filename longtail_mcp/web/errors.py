"""The one mapping of the family's errors to HTTP statuses, for the JSON API and every page."""

from longtail_mcp.errors import Conflict, Forbidden, InvalidInput, LongtailError, NotFound, Unauthenticated, Unavailable

STATUS: list[tuple[type[LongtailError], int]] = [
    (InvalidInput, 400), (Unauthenticated, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409),
    (Unavailable, 503),
]


def status_code(exc: LongtailError) -> int:
    """The HTTP status of an error's kind; 500 for any other."""
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)

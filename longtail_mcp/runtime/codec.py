"""JSON in and out of the journal: strict, so a replay sees exactly what the first run saw."""

import json
from typing import Any

from longtail_mcp.errors import InvalidInput


def dumps(value: Any, *, what: str = "value") -> str:
    """Encode to JSON text, refusing anything JSON cannot hold (no silent str() fallback).

    Raises:
        InvalidInput: the value is not JSON-serialisable.
    """
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} is not JSON-serialisable: {exc}") from None


def dumps_or_none(value: Any, *, what: str = "value") -> str | None:
    return None if value is None else dumps(value, what=what)


def roundtrip(value: Any, *, what: str = "value") -> Any:
    """The value as a replay will see it (tuples become lists, keys become strings)."""
    return json.loads(dumps(value, what=what))

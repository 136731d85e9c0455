"""Named SQL queries, loaded from db/queries/*.sql (`-- name --` blocks)."""

import re
from functools import cache
from pathlib import Path
from typing import LiteralString, cast

_HEADER = re.compile(r"^-- ([a-z0-9_]+) --$", re.MULTILINE)


@cache
def load(family: str) -> dict[str, LiteralString]:
    """All queries of one family (`runtime` -> queries/runtime.sql) by name."""
    text = (Path(__file__).parent / "queries" / f"{family}.sql").read_text()
    parts = _HEADER.split(text)
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.startswith("-- ")]
        # Shipped files, not caller text: the one place a str becomes a LiteralString. mypy reads
        # LiteralString as str (so it finds this cast redundant); checkers that enforce it need it.
        queries[name] = cast(LiteralString, "\n".join(lines).strip())  # type: ignore[redundant-cast]
    return queries

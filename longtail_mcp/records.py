"""The base of the typed results services return (runs, escalations, schedules, ...).

A `Record` is a frozen pydantic model: attributes are typed (`run.status`), it is its own JSON Schema
(the MCP servers reuse the same models as their tools' output schemas), and `to_json()` gives the
plain JSON the tables hold. It also reads like the mapping its row used to be (`run["status"]`,
`run.get("result")`, `dict(run)`, and `==` a dict compares its JSON), so code written against rows keeps working.
"""

from collections.abc import KeysView
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict


def iso(value: Any) -> Any:
    """JSON-friendly copy of a row (datetimes as ISO 8601 strings)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: iso(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [iso(v) for v in value]
    return value


class Record(BaseModel):
    """A typed, immutable result (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def of(cls, row: Any) -> Self:
        """The record of a database row (or any mapping, or another record)."""
        if isinstance(row, Record):
            row = row.to_json()
        return cls.model_validate(iso(dict(row)))

    @classmethod
    def all(cls, rows: Any) -> list[Self]:
        return [cls.of(r) for r in rows]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (timestamps as ISO 8601 strings), as an MCP tool returns it."""
        return self.model_dump(mode="json")

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in type(self).model_fields else default

    def keys(self) -> KeysView[str]:
        return self.to_json().keys()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dict):
            return self.to_json() == other
        return super().__eq__(other)

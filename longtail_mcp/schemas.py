"""What is wrong with a value against a JSON Schema, said one way everywhere: a pipeline's inputs and outputs
(pipelines.runner.check) and a resolution against its form (humans.escalations.validate_resolution).

Each problem names its place twice: `path` for a message ("items/2: 'x' is not of type 'integer'") and
`field` for a form ("resolution.items.2", with a missing required property named as the field it is about),
so a web form or an API client can put the message next to the input it concerns.
"""

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema import ValidationError as SchemaError
from jsonschema.validators import validator_for

SHOWN = 5  # problems a one-line summary names (the per-field entries hold up to `limit`)


@dataclass(frozen=True)
class Problem:
    path: str  # "items/2", or "(root)"
    field: str  # "items.2"; a missing property is its own field ("name", not the object holding it)
    message: str

    def entry(self, prefix: str) -> dict[str, str]:
        """`{field, message}` with the field under `prefix` (e.g. "resolution.items.2")."""
        return {"field": ".".join(p for p in (prefix, self.field) if p), "message": self.message}


def problems(schema: dict[str, Any] | None, value: Any, *, limit: int = 20) -> list[Problem]:
    """What is wrong with `value` against `schema` (none when it matches, or no schema), by place."""
    if not schema:
        return []
    cls = validator_for(schema, default=Draft202012Validator)
    errors = sorted(cls(schema).iter_errors(value), key=_place)
    return [Problem("/".join(map(str, e.absolute_path)) or "(root)",
                    ".".join([*map(str, e.absolute_path), *_missing(e)]), e.message) for e in errors[:limit]]


def summary(found: list[Problem]) -> str:
    """One line naming the first few problems: "a: ... ; b/1: ..."."""
    return "; ".join(f"{p.path}: {p.message}" for p in found[:SHOWN])


def _place(error: SchemaError) -> list[tuple[int, int, str]]:
    """Sort by place: array items by index (2 before 10), properties by name."""
    return [(1, 0, p) if isinstance(p, str) else (0, p, "") for p in error.absolute_path]


def _missing(error: SchemaError) -> list[str]:
    """The property a `required` error is about (its message is "'name' is a required property"), else none."""
    if error.validator != "required" or not isinstance(error.validator_value, list):
        return []
    return [str(p) for p in error.validator_value if error.message.startswith(f"{p!r} ")][:1]

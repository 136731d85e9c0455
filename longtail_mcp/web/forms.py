"""HTML forms from a role's form JSON Schema: the fields to draw, the submitted fields as typed JSON, and
the server's validation errors placed next to their fields.

The schema is checked once, by the service (`escalations.validate_resolution`, as for MCP and the CLI):
this module only converts what a browser sends (strings) into JSON types. A value that does not convert
is passed on as the string it was, so the schema's own rule reports it.
"""

import json
import math
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from longtail_mcp.errors import InvalidInput

PREFIX = "field:"  # form field names of schema properties (so `csrf`, `action` and `reason` never collide)
WHOLE = "resolution"  # the one JSON field when the schema is not a flat object of simple properties
LONG_TEXT = 200  # strings without a maxLength, or with a larger one, get a textarea
SIMPLE = ("string", "integer", "number")
INPUT_FORMATS = {"email": "email", "uri": "url", "date": "date", "time": "time"}


@dataclass
class Field:
    """One input to draw: `kind` is text, textarea, number, checkbox, select, choices (an array of enum
    values as checkboxes), lines (an array of simple values, one a line) or json."""

    name: str
    kind: str
    label: str
    required: bool = False
    description: str = ""
    input_type: str = "text"
    options: list[tuple[str, str]] = field(default_factory=list)  # (submitted value, label)
    value: Any = ""  # what the input shows: a string, a bool (checkbox), a list of chosen options (choices)
    error: str = ""
    attrs: dict[str, str] = field(default_factory=dict)  # minlength, maxlength, min, max, step, pattern
    schema: dict[str, Any] = field(default_factory=dict)
    whole: bool = False  # the whole resolution as one JSON object
    index: int = 0  # its place in the form (ids are field-<index>: property names may hold any character)

    @property
    def form_name(self) -> str:
        return WHOLE if self.whole else PREFIX + self.name

    @property
    def html_id(self) -> str:
        return "resolution" if self.whole else f"field-{self.index}"


def _type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if len(kinds) == 1 else None
    return kind if isinstance(kind, str) else None


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _field(name: str, schema: dict[str, Any], required: bool) -> Field:
    out = Field(name=name, kind="json", label=str(schema.get("title") or name.replace("_", " ").capitalize()),
                required=required, description=str(schema.get("description") or ""), schema=schema)
    kind = _type(schema)
    if isinstance(schema.get("enum"), list):
        out.kind = "select"
        out.options = [(str(i), _shown(v)) for i, v in enumerate(schema["enum"])]
    elif kind == "boolean":
        out.kind = "checkbox"
    elif kind in ("integer", "number"):
        out.kind, out.input_type = "number", "number"
        out.attrs["step"] = "1" if kind == "integer" else "any"
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if isinstance(schema.get(key), int | float):
                out.attrs[attr] = str(schema[key])
    elif kind == "string":
        max_length = schema.get("maxLength")
        fmt = schema.get("format")
        long = (not isinstance(max_length, int) or max_length > LONG_TEXT) and fmt not in INPUT_FORMATS
        out.kind = "textarea" if long and "pattern" not in schema else "text"
        out.input_type = INPUT_FORMATS.get(str(fmt), "text")
        if isinstance(max_length, int):
            out.attrs["maxlength"] = str(max_length)
        if isinstance(schema.get("minLength"), int):
            out.attrs["minlength"] = str(schema["minLength"])
        if isinstance(schema.get("pattern"), str) and out.kind == "text":
            out.attrs["pattern"] = schema["pattern"]
    elif kind == "array" and isinstance(schema.get("items"), dict):
        items = schema["items"]
        if isinstance(items.get("enum"), list):
            out.kind, out.value = "choices", []
            out.options = [(str(i), _shown(v)) for i, v in enumerate(items["enum"])]
        elif _type(items) in SIMPLE:
            out.kind = "lines"
    if "default" in schema:
        out.value = _initial(out, schema["default"])
    return out


def _initial(f: Field, default: Any) -> Any:
    if f.kind == "checkbox":
        return default is True
    if f.kind == "select":
        return next((str(i) for i, v in enumerate(f.schema["enum"]) if v == default), "")
    if f.kind == "choices" and isinstance(default, list):
        return [str(i) for i, v in enumerate(f.schema["items"]["enum"]) if v in default]
    if f.kind == "lines" and isinstance(default, list):
        return "\n".join(_shown(v) for v in default)
    if f.kind == "json":
        return json.dumps(default, indent=2, ensure_ascii=False)
    return _shown(default)


def fields_of(schema: dict[str, Any] | None) -> list[Field]:
    """The inputs of a form schema: one per property of a flat object schema, else one JSON field for the
    whole resolution (no schema, or one this view cannot draw as fields)."""
    props = (schema or {}).get("properties")
    if schema and isinstance(props, dict) and _type(schema) in (None, "object") and props:
        required = [r for r in schema.get("required") or [] if r in props]
        # A stored schema is jsonb, which does not keep key order: required fields first, in the order of
        # `required` (an array keeps its order), then the others by name.
        order = required + sorted(set(props) - set(required))
        fields = [_field(name, props[name] if isinstance(props[name], dict) else {}, name in required)
                  for name in order]
        for i, f in enumerate(fields):
            f.index = i
        return fields
    note = ("No form is set for this role: any JSON object is accepted." if not schema else
            "This form cannot be drawn as fields: write the decision as JSON matching the form's schema (shown "
            "with the escalation).")
    return [Field(name=WHOLE, kind="json", label="Resolution (a JSON object)", required=True, description=note,
                  value="{}", whole=True)]


def _number(text: str, integer: bool) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    if number.is_integer() and (integer or ("." not in text and "e" not in text.lower())):
        return int(number)
    return number


def _convert(kind: str | None, text: str) -> Any:
    if kind in ("integer", "number"):
        return _number(text.strip(), kind == "integer")
    return text


def _pick(options: list[Any], chosen: str) -> Any:
    return options[int(chosen)] if chosen.isdigit() and int(chosen) < len(options) else chosen


def read_form(schema: dict[str, Any] | None, form: FormData) -> tuple[dict[str, Any] | Any, list[Field]]:
    """(the resolution as JSON, the fields showing what was submitted). An empty optional input is left out;
    a value that does not convert is kept as its string, for the schema check to report."""
    fields = fields_of(schema)
    payload: dict[str, Any] = {}
    for f in fields:
        raw = form.getlist(f.form_name)
        text = str(raw[0]).replace("\r\n", "\n") if raw else ""
        if f.whole:
            f.value = text
            try:
                return json.loads(text), fields
            except ValueError as exc:
                f.error = f"not valid JSON: {exc}"
                return None, fields
        if f.kind == "checkbox":
            f.value = bool(raw)
            payload[f.name] = f.value
        elif f.kind == "choices":
            f.value = [str(v) for v in raw]
            if f.value or f.required:
                payload[f.name] = [_pick(f.schema["items"]["enum"], v) for v in f.value]
        elif f.kind == "lines":
            f.value = text
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines or f.required:
                payload[f.name] = [_convert(_type(f.schema["items"]), line) for line in lines]
        else:
            f.value = text
            if text == "":
                continue
            if f.kind == "select":
                payload[f.name] = _pick(f.schema["enum"], text)
            elif f.kind == "json":
                try:
                    payload[f.name] = json.loads(text)
                except ValueError:
                    payload[f.name] = text
            else:
                payload[f.name] = _convert(_type(f.schema), text)
    return payload, fields


def place_errors(fields: list[Field], exc: InvalidInput) -> str:
    """Put the service's per-field messages (`exc.data["errors"]`, each naming its `field` as
    `resolution.<property>...`) on their fields; return what belongs to no field (the whole form), or ""
    when every message found its field."""
    by_name = {f.name: f for f in fields if not f.whole}
    whole = next((f for f in fields if f.whole), None)
    rest: list[str] = []
    details = exc.data.get("errors") if isinstance(exc.data, dict) else None
    if not isinstance(details, list):
        return exc.message
    for item in details:
        field, message = str(item.get("field", "")), str(item.get("message", ""))
        path = field.split(".")[1:] if field.startswith("resolution.") else []
        target = whole or (by_name.get(str(path[0])) if path else None)
        if target is None:
            rest.append(message)
        elif message not in target.error:
            target.error = f"{target.error}; {message}" if target.error else message
    return "; ".join(rest)

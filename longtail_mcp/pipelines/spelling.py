"""How the compilers spell a draft: Jinja literals and paths, step ids, JSON types, the prompt template.

`Renderer` writes the compiled form (`Ref`, `Text`, provenance.py) as pipeline JSON once step ids are known.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from longtail_mcp.pipelines.provenance import PathPart, Ref, Text, number_pattern, refs_in

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# In plain Jinja `x.items` finds the dict's method before the key, and `x.not` reads as a word: such keys
# (step ids and input names too) are written as subscripts, which mean the key in any Jinja environment.
SHADOWED = frozenset(dir(dict)) | frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False", "None"})


def quote(text: str) -> str:
    """`text` as a Jinja string literal."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{escaped}'"


def path_expr(root: str, path: Sequence[PathPart]) -> str:
    """`root.a[0]['b c']`: attribute syntax for identifier keys, subscripts otherwise."""
    out = root
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part) and part not in SHADOWED:
            out += f".{part}"
        else:
            out += f"[{quote(part)}]"
    return out


def literal(text: str, *, before_tag: bool = False) -> str:
    """`text` as template data that renders as itself. A `{` that could open a tag (`{{`, `{%`, `{#`, or
    a last `{` just before an expression) is written `{{ '{' }}`, so the string still reads as a template
    and renders back to the same characters."""
    if not any(t in text for t in ("{{", "{%", "{#")) and not (before_tag and text.endswith("{")):
        return text
    return text.replace("{", "{{ '{' }}")


def jinja_literal(value: Any) -> str:
    """A JSON value as a Jinja literal (`true`, `none`, `'text'`, `[1, 2]`, `{'a': 1}`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(jinja_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quote(str(k))}: {jinja_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def safe_id(text: str, fallback: str) -> str:
    """`text` made a valid step id or pipeline name (`^[a-z][a-z0-9_]{0,62}$`)."""
    out = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]+", "_", text.lower())).strip("_")
    if not out:
        return fallback
    if not out[0].isalpha():
        out = f"{fallback}_{out}"
    return out[:63].rstrip("_")


def unique_id(base: str, used: set[str]) -> str:
    """`base`, else `base_2`, `base_3`, ... (the first one not in `used`, which it joins)."""
    found, n = base, 1
    while found in used:
        n += 1
        suffix = f"_{n}"
        found = base[:63 - len(suffix)] + suffix
    used.add(found)
    return found


def json_type(value: Any) -> dict[str, Any]:
    """The JSON Schema type of a value (`{}` for null: any type)."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array"}
    if isinstance(value, dict):
        return {"type": "object"}
    return {}


def prompt_template(request: str, inputs: Sequence[tuple[str, Any]]) -> str | None:
    """`request` with each input's value replaced by `{name}` (the longest first; literal braces doubled,
    as `str.format` reads them); None when no input's value appears in it."""
    slots: list[tuple[int, str, str]] = []
    for name, value in inputs:
        if isinstance(value, str) and value:
            # A short value is only replaced as a whole word: "EU" is not the start of "EUROPE".
            pattern = re.escape(value) if len(value) >= 3 else rf"(?<!\w){re.escape(value)}(?!\w)"
        elif isinstance(value, int | float) and not isinstance(value, bool):
            pattern = number_pattern(value)
        else:
            continue
        slots.append((-len(str(value)), pattern, name))
    slots.sort(key=lambda s: s[0])  # stable: equal lengths keep the inputs' order
    if not slots:
        return None
    combined = re.compile("|".join(f"(?P<s{i}>{p})" for i, (_, p, _) in enumerate(slots)))
    out, pos = [], 0
    for m in combined.finditer(request):
        out.append(_braces(request[pos:m.start()]))
        out.append("{" + slots[int(str(m.lastgroup)[1:])][2] + "}")
        pos = m.end()
    if not out:
        return None
    return "".join(out) + _braces(request[pos:])


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class Renderer:
    """Turns the compiled form into pipeline JSON, now that step ids are known."""

    def __init__(self, ids: Mapping[int, str]) -> None:
        self.ids = ids

    def expr(self, ref: Ref) -> str:
        if ref.root == "steps":
            text = path_expr("steps", (self.ids[int(ref.key)], *ref.path))
        elif ref.root == "inputs":
            text = path_expr("inputs", (str(ref.key), *ref.path))
        else:
            text = path_expr("item", ref.path)
        return f"{text} | {ref.filter}" if ref.filter else text

    def __call__(self, value: Any) -> Any:
        if isinstance(value, Ref):
            return "{{ " + self.expr(value) + " }}"
        if isinstance(value, Text):
            out = []
            for i, part in enumerate(value.parts):
                if isinstance(part, Ref):
                    out.append("{{ " + self.expr(part) + " }}")
                else:
                    nxt = value.parts[i + 1] if i + 1 < len(value.parts) else None
                    out.append(literal(part, before_tag=isinstance(nxt, Ref)))
            return "".join(out)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):
            return literal(value)
        return value


def describe(args: Mapping[str, Any], render: Renderer) -> str:
    """How a step's arguments were compiled, for the notes: `; url ← inputs.url, body ← steps.a.b`."""
    said = []
    for key, value in args.items():
        if isinstance(value, Ref | Text):
            said.append(f"{key} ← {render(value)}")
        elif any(True for _ in refs_in(value)):
            said.append(f"{key} ← expressions inside")
    constants = len(args) - len(said)
    if constants:
        said.append(f"{constants} constant{'s' if constants > 1 else ''}")
    return ("; " + ", ".join(said)) if said else ""

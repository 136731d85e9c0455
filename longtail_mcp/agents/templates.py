"""The router's first tier: a request that reads like an active pipeline's prompt template (the request it
was compiled from, with its inputs as `{slots}`) runs that pipeline with the slots' text as inputs — no
model involved. Matching is exact up to case and runs of whitespace; a slot's text must convert to its
input's type and the inputs must satisfy the pipeline's input schema.

Fast over many pipelines: each template is indexed under its rarest literal word, so a request is only
tried against templates whose key word it contains (bench/loop.py: 10,000 active pipelines).
"""

import re
import string
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = r"[-+]?\d+(?:\.\d+)?"


@dataclass(frozen=True)
class Template:
    """One active pipeline's template, compiled."""

    name: str
    version: int
    hash: str
    tags: tuple[str, ...]
    text: str
    pattern: re.Pattern[str]
    slots: tuple[str, ...]
    literal: int  # characters of literal text: the more, the more specific
    input_schema: dict[str, Any] = field(default_factory=dict)

    def match(self, request: str) -> dict[str, Any] | None:
        """The inputs this request gives, or None when it does not read like the template."""
        found = self.pattern.fullmatch(_normal(request))
        if found is None:
            return None
        props = (self.input_schema or {}).get("properties") or {}
        inputs: dict[str, Any] = {}
        for slot in self.slots:
            value = _typed(found.group(slot).strip(), (props.get(slot) or {}).get("type"))
            if value is None:
                return None
            inputs[slot] = value
        if self.input_schema and any(Draft202012Validator(self.input_schema).iter_errors(inputs)):
            return None
        return inputs


def _normal(text: str) -> str:
    return " ".join(text.split())


def _typed(text: str, kind: Any) -> Any:
    """A slot's text as its input's type; None when it is not one (then the template does not match)."""
    if not text:
        return None
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return None
    if kind == "boolean":
        return {"true": True, "yes": True, "false": False, "no": False}.get(text.lower())
    return text


def compile_template(row: dict[str, Any]) -> Template | None:
    """A template row (`store.active_templates`) compiled; None when it has no slots (nothing to route)."""
    text = row.get("template")
    if not text:
        return None
    props = ((row.get("input_schema") or {}).get("properties")) or {}
    parts, slots, literal = [], [], 0
    try:
        parsed = list(string.Formatter().parse(_normal(text)))
    except ValueError:
        return None
    for literal_text, slot, _spec, _conv in parsed:
        if literal_text:
            parts.append(r"\s+".join(re.escape(w) for w in literal_text.split(" ")))
            literal += len(literal_text)
        if slot:
            if slot in slots:
                parts.append(f"(?P={slot})")
                continue
            if not slot.isidentifier():
                return None
            kind = (props.get(slot) or {}).get("type")
            parts.append(f"(?P<{slot}>{_NUMBER})" if kind in ("integer", "number") else f"(?P<{slot}>.+?)")
            slots.append(slot)
    if not slots:
        return None
    return Template(name=row["name"], version=int(row["version"]), hash=row["hash"], tags=tuple(row.get("tags") or ()),
                    text=text, pattern=re.compile("".join(parts), re.IGNORECASE | re.DOTALL), slots=tuple(slots),
                    literal=literal, input_schema=dict(row.get("input_schema") or {}))


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a compiled template depends on: its pipeline's version (the hash covers its text and input
    schema) and the pipeline's tags."""
    return row["name"], row["version"], row["hash"], tuple(row.get("tags") or ())


class TemplateIndex:
    """Every active template, keyed by its rarest literal word.

    Built again whenever the active pipelines change; with `previous`, the templates of unchanged versions
    are taken from it rather than compiled again (compiling is most of a build: ~1.4 s at 10,000), so one
    pipeline activated among 10,000 costs the word counts, not 10,000 regular expressions."""

    def __init__(self, rows: list[dict[str, Any]], previous: "TemplateIndex | None" = None) -> None:
        known = previous.compiled if previous is not None else {}
        self.compiled: dict[tuple[Any, ...], Template | None] = {}
        for row in rows:
            made = _key(row)
            self.compiled[made] = known[made] if made in known else compile_template(row)
        templates = [t for t in self.compiled.values() if t is not None]
        words = {t.name: set(_WORD.findall(re.sub(r"\{[^{}]*\}", " ", t.text.lower()))) for t in templates}
        frequency = Counter(w for ws in words.values() for w in ws)
        self.size = len(templates)
        self._keyed: dict[str, list[Template]] = defaultdict(list)
        self._unkeyed: list[Template] = []  # templates that are all slots: tried on every request
        for t in templates:
            key = min(words[t.name], key=lambda w: (frequency[w], -len(w), w), default=None)
            (self._keyed[key] if key else self._unkeyed).append(t)

    def match(self, request: str, tags: list[str] | None = None) -> tuple[Template, dict[str, Any]] | None:
        """The most specific template the request reads like (most literal text, then name), with its inputs."""
        seen = set(_WORD.findall(request.lower()))
        candidates = [t for w in seen for t in self._keyed.get(w, ())] + self._unkeyed
        best: tuple[Template, dict[str, Any]] | None = None
        for t in sorted(candidates, key=lambda t: (-t.literal, t.name)):
            if tags and not set(tags) & set(t.tags):
                continue
            inputs = t.match(request)
            if inputs is not None:
                best = (t, inputs)
                break
        return best

"""Where a draft's values come from: JSON values matched to inputs, earlier results and a loop's items.

A match is kept in the compiled form (`Ref`, `Text`, `Same`) until step ids are known; spelling.py writes
it out as expressions.
"""

import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

PathPart = str | int
Path = tuple[PathPart, ...]


def canon(value: Any) -> str:
    """A value's identity for matching: JSON with sorted keys, so 1, 1.0 and true all differ."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def weak(value: Any) -> bool:
    """Values too common to say where they came from: they match an input only of the same name."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return value in (0, 1)
    if isinstance(value, str | list | dict):
        return not value
    return True


def wireable(value: Any) -> bool:
    """Wires are made only for values distinctive enough that a match is no coincidence."""
    if isinstance(value, str):
        return len(value) >= 3
    return not weak(value)


def walk(value: Any) -> Iterator[tuple[Path, Any]]:
    """Every sub-value with its path, breadth first: the shortest paths first, then in document order."""
    queue: deque[tuple[Path, Any]] = deque([((), value)])
    while queue:
        path, v = queue.popleft()
        yield path, v
        if isinstance(v, dict):
            queue.extend(((*path, k), x) for k, x in v.items())
        elif isinstance(v, list):
            queue.extend(((*path, i), x) for i, x in enumerate(v))


def _get(value: Any, path: Path) -> Any:
    for part in path:
        value = value[part]
    return value


def _scalar_text(value: Any) -> str | None:
    """How `{{ value }}` renders a scalar inside text, or None for values not matched inside text."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True)
class Ref:
    """An expression on a value the pipeline has when it runs: an input, a step's result, the loop's item."""

    root: Literal["inputs", "steps", "item"]
    key: str | int  # the input's name, or the step's node number (its id is chosen last)
    path: Path = ()
    filter: str | None = None


@dataclass(frozen=True)
class Text:
    """A string template: literal text and expressions."""

    parts: tuple[str | Ref, ...]


@dataclass(frozen=True)
class Same:
    """A value every call of a loop passed alike (compiled like a single call's argument)."""

    value: Any


def refs_in(value: Any) -> Iterator[Ref]:
    """Every `Ref` in a compiled value."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Text):
        yield from (p for p in value.parts if isinstance(p, Ref))
    elif isinstance(value, dict):
        for v in value.values():
            yield from refs_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from refs_in(v)


def leaves(value: Any, key: str) -> Iterator[tuple[str, Any]]:
    """The scalar values inside arguments, each with the name of the nearest key above it."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v, key)
    else:
        yield key, value


def number_pattern(value: int | float) -> str:
    """A regex for the number written as a word (not inside a longer number or name)."""
    return rf"(?<![\w.]){re.escape(str(value))}(?![\w]|\.\d)"


def mentioned(request: str, value: Any) -> bool:
    """Whether the request states this value: a string (≥ 3 characters) inside it, a number as a word."""
    if isinstance(value, str):
        return len(value) >= 3 and value in request
    if isinstance(value, int | float) and not weak(value):
        return re.search(number_pattern(value), request) is not None
    return False


def align(values: list[Any], items: list[Any]) -> Any:
    """The loop body's form of one argument, given its value in each call and the list's items: `Same`
    where every call passed the same, an item expression (`item`, `item.name`, or text around either)
    where it follows the items, its parts aligned when it is an object or list; None when it varies
    otherwise."""
    first = canon(values[0])
    if all(canon(v) == first for v in values[1:]):
        return Same(values[0])
    fields: list[Path] = [()]
    if all(isinstance(item, dict) for item in items):
        fields += [(k,) for k in items[0] if all(k in item for item in items)]
    for path in fields:
        if all(canon(v) == canon(_get(item, path)) for v, item in zip(values, items, strict=True)):
            return Ref("item", "", path)
    if all(isinstance(v, str) for v in values):
        for path in fields:
            texts = [_scalar_text(_get(item, path)) for item in items]
            if all(t is not None for t in texts):
                text = _item_text(values, [str(t) for t in texts], Ref("item", "", path))
                if text is not None:
                    return text
        return None
    if all(isinstance(v, dict) and list(v) == list(values[0]) for v in values):
        aligned = {k: align([v[k] for v in values], items) for k in values[0]}
        return None if any(a is None for a in aligned.values()) else aligned
    if all(isinstance(v, list) and len(v) == len(values[0]) for v in values):
        parts = [align([v[n] for v in values], items) for n in range(len(values[0]))]
        return None if any(p is None for p in parts) else parts
    return None


def _item_text(values: list[str], texts: list[str], ref: Ref) -> Text | None:
    """Strings that are one template with each call's item text in it: `prefix + item + suffix` alike for
    every call (tried at each place the first item occurs), else the item at every place it occurs."""
    first, text = values[0], texts[0]
    start = first.find(text)
    while start >= 0:
        prefix, suffix = first[:start], first[start + len(text):]
        if all(v == prefix + t + suffix for v, t in zip(values, texts, strict=True)):
            return Text(tuple(p for p in (prefix, ref, suffix) if p != ""))
        start = first.find(text, start + 1)
    splits = [v.split(t) for v, t in zip(values, texts, strict=True)]
    if len(splits[0]) > 1 and all(s == splits[0] for s in splits):
        parts: list[str | Ref] = []
        for n, chunk in enumerate(splits[0]):
            if n:
                parts.append(ref)
            if chunk:
                parts.append(chunk)
        return Text(tuple(parts))
    return None

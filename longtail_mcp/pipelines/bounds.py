"""The bounds on rendering an expression: its time and iteration budget, and the size of what it builds."""

import json
import math
import re
import string
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.runtime import LoopContext, Undefined

MAX_OUTPUT = 1 << 20  # characters of a rendered result, and of any value an expression builds
MAX_ITERATIONS = 1_000_000  # loop iterations of one render
MAX_SECONDS = 1.0  # per render, checked between operations (render runs on the caller's thread)
MAX_INT_BITS = 100_000  # ~30,000 digits


class Limit(Exception):
    """A size, iteration or time bound was reached."""


@dataclass
class Budget:
    deadline: float
    iterations: int = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise Limit(f"rendering took longer than {MAX_SECONDS:g} s")

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise Limit(f"more than {MAX_ITERATIONS:,} loop iterations")
        if not self.iterations % 1024:
            self.tick()


BUDGET: ContextVar[Budget | None] = ContextVar("longtail_expression_budget", default=None)


def current_budget() -> Budget:
    return BUDGET.get() or Budget(time.monotonic() + MAX_SECONDS)


def size_of(value: Any, limit: int = MAX_OUTPUT) -> int:
    """About the length of the value written out (shared references counted each time); stops past `limit`."""
    total, stack = 0, [value]
    while stack and total <= limit:
        v = stack.pop()
        if isinstance(v, Undefined):
            continue
        if isinstance(v, str):
            total += len(v) + 2
        elif isinstance(v, bool) or v is None:
            total += 4
        elif isinstance(v, int):
            total += v.bit_length() * 3 // 10 + 1
        elif isinstance(v, float):
            total += 8
        elif isinstance(v, Mapping):
            total += 2 + 2 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            total += 2 + len(v)
            stack.extend(v)
    return total


def check_size(size: int, what: str) -> None:
    if size > MAX_OUTPUT:
        raise Limit(f"{what} would be about {size:,} characters; the limit is {MAX_OUTPUT:,}")


def check_writable(value: Any) -> None:
    """Refuse to write out a structure longer than the limit (a list holding one big string 1000 times)."""
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        check_size(size_of(value), "the text of a value")


def as_text(value: Any) -> str:
    check_writable(value)
    return str(value)


def argument(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def check_printf(template: str, args: Any) -> None:
    """`template % args`: no `*` widths, no width over the limit, and fields x arguments under the limit."""
    fields = 0
    for match in _PRINTF.finditer(template):
        for number in match.groups():
            if number == "*":
                raise Limit("'*' widths are not supported in % formatting")
            if number is not None:
                check_size(int(number), "a formatted field")
        fields += 1
    check_size(len(template) + fields * size_of(args), "the formatted text")


def _check_format(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """`template.format(...)`: literal widths under the limit, and fields x arguments under the limit."""
    fields = 0
    for _literal, field, spec, _conversion in string.Formatter().parse(template):
        if field is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise Limit("nested replacement fields in a format spec are not supported")
        for number in re.findall(r"\d+", spec or ""):
            check_size(int(number), "a formatted field")
    check_size(len(template) + fields * (size_of(args) + size_of(dict(kwargs))), "the formatted text")


def replaced_size(s: str, old: Any, new: Any, count: Any) -> int:
    old, new = str(old), str(new)
    times = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(s) + times * max(len(new) - len(old), 0)


def check_str_method(owner: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if name in ("center", "ljust", "rjust", "zfill"):
        width = argument(args, kwargs, 0, "width", 0)
        if isinstance(width, int):
            check_size(width, f"str.{name}()")
    elif name == "expandtabs":
        tabsize = argument(args, kwargs, 0, "tabsize", 8)
        if isinstance(tabsize, int):
            check_size(len(owner) + owner.count("\t") * max(tabsize, 0), "str.expandtabs()")
    elif name == "replace":
        check_size(replaced_size(owner, argument(args, kwargs, 0, "old", ""), argument(args, kwargs, 1, "new", ""),
                                 argument(args, kwargs, 2, "count", -1)), "str.replace()")
    elif name == "format":
        _check_format(owner, args, kwargs)
    elif name == "format_map" and args:
        _check_format(owner, (), args[0] if isinstance(args[0], Mapping) else {})


def materialize(values: Iterable[Any]) -> list[Any]:
    budget, out = current_budget(), []
    for value in values:
        budget.iterate()
        out.append(value)
    return out


def to_json(value: Any, depth: int = 0, total: list[int] | None = None) -> Any:
    """The value as plain JSON data (iterators and tuples become lists), within the output bound."""
    total = total if total is not None else [0]
    if depth > 100:
        raise Limit("the value nests deeper than 100")
    if isinstance(value, Undefined):
        str(value)  # raises the undefined's error
    if value is None or isinstance(value, bool):
        total[0] += 4
        out: Any = value
    elif isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise Limit(f"a number of more than {MAX_INT_BITS:,} bits")
        total[0] += value.bit_length() * 3 // 10 + 1
        out = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number")
        total[0] += 8
        out = float(value)
    elif isinstance(value, str):
        total[0] += len(value) + 2
        out = str(value)
    elif isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise ValueError(f"a {type(key).__name__} cannot be a JSON key")
            out[key if isinstance(key, str) else json.dumps(key)] = to_json(item, depth + 1, total)
            total[0] += 2
    elif isinstance(value, LoopContext) or not isinstance(value, Iterable):
        raise ValueError(f"a {type(value).__name__} is not a JSON value")
    else:
        out = []
        budget = current_budget()
        for item in value:
            budget.iterate()
            out.append(to_json(item, depth + 1, total))
            total[0] += 1
    check_size(total[0], "the value")
    return out

"""The filters expressions may use: Jinja's built-ins with bounds, and our own join, sum, tojson and fromjson."""

import json
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any

from jinja2 import Environment
from jinja2.filters import do_join, do_sum, make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.sandbox import MAX_RANGE
from jinja2.utils import pass_environment, pass_eval_context

from longtail_mcp.pipelines.bounds import (
    MAX_OUTPUT,
    Limit,
    argument,
    as_text,
    check_printf,
    check_size,
    check_writable,
    current_budget,
    materialize,
    replaced_size,
    size_of,
    to_json,
)

_TEXT_FILTERS = frozenset({
    "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower", "pprint", "replace", "safe",
    "string", "striptags", "title", "trim", "truncate", "upper", "urlencode", "urlize", "wordcount", "wordwrap",
    "xmlattr",
})


def _pre_center(value: Any, *args: Any, **kwargs: Any) -> None:
    width = argument(args, kwargs, 0, "width", 80)
    if isinstance(width, int):
        check_size(width, "center()")


def _pre_indent(value: Any, *args: Any, **kwargs: Any) -> None:
    width = argument(args, kwargs, 0, "width", 4)
    if isinstance(width, int):
        check_size(width, "indent()")
    prefix = width if isinstance(width, str) else " " * max(width if isinstance(width, int) else 0, 0)
    text = as_text(value)
    check_size(len(text) + (text.count("\n") + 1) * len(prefix), "indent()")


def _pre_wordwrap(value: Any, *args: Any, **kwargs: Any) -> None:
    width = argument(args, kwargs, 0, "width", 79)
    wrap = argument(args, kwargs, 2, "wrapstring", None)
    text = as_text(value)
    lines = len(text) // max(width if isinstance(width, int) else 1, 1) + text.count(" ") + text.count("\n") + 1
    check_size(len(text) + lines * len(as_text(wrap) if wrap is not None else "\n"), "wordwrap()")


def _pre_replace(value: Any, *args: Any, **kwargs: Any) -> None:
    check_size(replaced_size(as_text(value), argument(args, kwargs, 0, "old", ""), argument(args, kwargs, 1, "new", ""),
                             argument(args, kwargs, 2, "count", None)), "replace()")


def _pre_format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_printf(as_text(value), kwargs or args)


def _pre_batch(value: Any, *args: Any, **kwargs: Any) -> None:
    count = argument(args, kwargs, 0, "linecount", 0)
    if isinstance(count, int) and count > MAX_RANGE:
        raise Limit(f"batch() of more than {MAX_RANGE:,} items")


def _pre_slice(value: Any, *args: Any, **kwargs: Any) -> None:
    count = argument(args, kwargs, 0, "slices", 0)
    if isinstance(count, int) and count > MAX_RANGE:
        raise Limit(f"slice() into more than {MAX_RANGE:,} parts")


_PRE_CHECKS: dict[str, Callable[..., None]] = {
    "center": _pre_center, "indent": _pre_indent, "wordwrap": _pre_wordwrap, "replace": _pre_replace,
    "format": _pre_format, "batch": _pre_batch, "slice": _pre_slice,
}


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    items = materialize(value)
    check_size(sum(size_of(v) for v in items) + len(as_text(d)) * max(len(items) - 1, 0), "join()")
    return str(do_join(eval_ctx, items, d, attribute))


@pass_environment
def _sum(environment: Environment, iterable: Iterable[Any], attribute: str | int | None = None,
         start: Any = 0) -> Any:
    items = materialize(iterable)
    if not isinstance(start, (list, tuple)):
        return do_sum(environment, items, attribute, start)
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        items = [getter(v) for v in items]
    out = list(start)  # list + list one by one is quadratic: extend instead
    for v in items:
        if type(v) is not type(start):
            raise TypeError(f"can only concatenate {type(start).__name__} (not {type(v).__name__}) in sum()")
        out.extend(v)
    return out if isinstance(start, list) else tuple(out)


def _tojson(value: Any, indent: int | None = None) -> str:
    """Compact JSON with sorted keys (`indent` for a readable form)."""
    data = to_json(value)
    separators = (",", ": ") if indent is not None else (",", ":")
    return json.dumps(data, sort_keys=True, separators=separators, indent=indent, ensure_ascii=False, allow_nan=False)


def _fromjson(value: Any) -> Any:
    """The value of a JSON text."""
    if not isinstance(value, (str, bytes)):
        raise TypeError(f"fromjson needs a string, not {type(value).__name__}")
    return json.loads(value)


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """The filter with the budget's clock, its own pre-check, and no growth past the limit."""
    passes_arg = getattr(func, "jinja_pass_arg", None) is not None
    pre = _PRE_CHECKS.get(name)
    text_filter = name in _TEXT_FILTERS

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        current_budget().tick()
        rest = args[1:] if passes_arg else args
        if text_filter:
            for v in (*rest, *kwargs.values()):
                check_writable(v)
        if pre is not None and rest:
            pre(*rest, **kwargs)
        result = func(*args, **kwargs)
        if text_filter and isinstance(result, str) and len(result) > MAX_OUTPUT:  # escape & co. grow by a factor
            out = len(result)
            if rest and out > size_of(rest[0], out):
                raise Limit(f"{name}() would make a value of more than {MAX_OUTPUT:,} characters")
        return result

    return guarded


def guard_loop(value: Any) -> Iterator[Any]:
    """Wrapped around every `{% for %}` iterable: counts iterations against the render's budget."""
    budget = current_budget()
    for item in value:
        budget.iterate()
        yield item


LOOP_GUARD = "loop guard"  # not a name a template can spell
FILTERS: dict[str, Callable[..., Any]] = {  # over Jinja's own join, sum and tojson; fromjson is ours
    "join": _join, "sum": _sum, "tojson": _tojson, "fromjson": _fromjson,
}

"""The environment expressions compile and run in: Jinja's immutable sandbox, rendering native values, bounded.

Undefined names raise `Missing`; only the calls, operators and filters known to be safe (and bounded) run.
"""

from collections.abc import Callable
from typing import Any, NoReturn

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import Frame
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.nativetypes import NativeCodeGenerator, NativeTemplate, native_concat
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import Cycler, Joiner

from longtail_mcp.pipelines.bounds import (
    MAX_INT_BITS,
    Limit,
    argument,
    as_text,
    check_printf,
    check_size,
    check_str_method,
    current_budget,
    materialize,
    size_of,
)
from longtail_mcp.pipelines.filters import FILTERS, LOOP_GUARD, guard_filter, guard_loop


class Missing(UndefinedError):
    """StrictUndefined's error, carrying what was missing so the message can name the path."""

    def __init__(self, message: str, obj: Any, name: Any) -> None:
        super().__init__(message)
        self.obj = obj
        self.name = name


class _Undefined(StrictUndefined):
    """StrictUndefined raising `Missing` (or the sandbox's SecurityError)."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if self._undefined_exception is not UndefinedError:  # the sandbox's SecurityError for `__class__` & co.
            raise self._undefined_exception(self._undefined_message)
        raise Missing(self._undefined_message, self._undefined_obj, self._undefined_name)


# Undefined binds its operators to the base function object: point each one at the override.
for _cls in (Undefined, StrictUndefined):
    for _name, _value in list(vars(_cls).items()):
        if _value is Undefined._fail_with_undefined_error and _name != "_fail_with_undefined_error":
            setattr(_Undefined, _name, _Undefined._fail_with_undefined_error)


_STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha", "isascii", "isdecimal",
    "isdigit", "isidentifier", "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip",
    "partition", "removeprefix", "removesuffix", "rfind", "rindex", "rpartition", "rsplit", "rstrip", "split",
    "splitlines", "startswith", "strip", "swapcase", "title", "upper",
    "center", "ljust", "rjust", "zfill", "expandtabs", "replace", "join", "format", "format_map",  # checked
})
_GLOBAL_CALLABLES = (safe_range, dict, Cycler, Joiner)
_OWNER_METHODS: tuple[tuple[type, frozenset[str]], ...] = (
    (dict, frozenset({"get", "keys", "values", "items", "copy"})),
    (list, frozenset({"index", "count", "copy"})),
    (tuple, frozenset({"index", "count"})),
    (LoopContext, frozenset({"cycle", "changed"})),
    (Cycler, frozenset({"next", "reset"})),
)


class _CodeGenerator(NativeCodeGenerator):
    """Native output without compile-time folding (`{{ 1 }}` stays the number 1), and a bounded `~`."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> Any:
        if isinstance(node, nodes.TemplateData):
            return node.as_const(frame.eval_ctx)
        raise nodes.Impossible()

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Environment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, rendering native values, with every growing operation bounded."""

    code_generator_class = _CodeGenerator
    template_class = NativeTemplate
    concat = staticmethod(native_concat)  # type: ignore[assignment]  # Jinja's own render path; ours is in expressions.py
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:  # JSON data first: `data.items` is the key "items"
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        current_budget().tick()
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "+" and isinstance(left, str) and isinstance(right, str):
            check_size(len(left) + len(right), "the result of '+'")
        elif operator == "+" and isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            check_size(size_of(left) + size_of(right), "the result of '+'")
        elif operator == "*" and ints:
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise Limit(f"the result of '*' would have more than {MAX_INT_BITS:,} bits")
        elif operator == "*":
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                check_size((len(seq) if isinstance(seq, str) else size_of(seq)) * max(times, 0), "the result of '*'")
        elif operator == "**" and ints and right > 0 and abs(left) > 1:
            if left.bit_length() * right > MAX_INT_BITS:
                raise Limit(f"the result of '**' would have more than {MAX_INT_BITS:,} bits")
        elif operator == "%" and isinstance(left, str):
            check_printf(left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        current_budget().tick()
        if isinstance(obj, (Undefined, Joiner)) or not callable(obj) or any(obj is f for f in _GLOBAL_CALLABLES):
            return super().call(context, obj, *args, **kwargs)  # an undefined or a non-callable raises its error
        target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
        owner, name = getattr(target, "__self__", None), getattr(target, "__name__", "")
        if isinstance(owner, str) and name in _STR_METHODS:
            if name == "join":
                items = [as_text(v) for v in materialize(argument(args, kwargs, 0, "", ()))]
                check_size(sum(map(len, items)) + len(owner) * max(len(items) - 1, 0), "str.join()")
                return owner.join(items)
            check_str_method(owner, name, args, kwargs)
            return super().call(context, obj, *args, **kwargs)
        for kind, names in _OWNER_METHODS:
            if isinstance(owner, kind) and name in names:
                return super().call(context, obj, *args, **kwargs)
        what = getattr(target, "__qualname__", None) or type(obj).__name__
        raise SecurityError(f"calling {what} is not allowed in expressions")

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        texts = [as_text(p) for p in parts]
        check_size(sum(map(len, texts)), "the result of '~'")
        return "".join(texts)


def _environment() -> _Environment:
    env = _Environment(undefined=_Undefined, autoescape=False, optimized=False)
    for name in ("lipsum", "namespace"):  # unbounded text; mutable state carried across loop iterations
        env.globals.pop(name, None)
    filters: dict[str, Callable[..., Any]] = {**env.filters, **FILTERS}
    env.filters = {name: guard_filter(name, f) for name, f in filters.items()}
    env.filters[LOOP_GUARD] = guard_loop
    return env


ENV = _environment()

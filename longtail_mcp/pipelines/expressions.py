"""Pipeline expressions: Jinja2's immutable sandbox with native types, bounded in size and time.

A string holding `{{ ... }}`, `{% ... %}` or `{# ... #}` is a template; any other string is plain
text and stays as it is. A template that is exactly one expression (`"{{ steps.rates.data }}"`)
renders to the value itself (a dict, a list, a number); with text around it renders to text
(values written with `str`, as Jinja does; use `| tojson` for JSON). What the expressions see:

- `inputs`: the run's inputs;  `run`: `{"id": <workflow id>}`
- `steps`: each finished step's result by id (a skipped step is `None`, a `for_each` step's result is
  the list of per-item results, a human step's result is the resolution)
- `item`, `index`: the current element and its position, in a `for_each` step's arguments only

On a mapping, `a.b` is the key `b` when there is one (so `data.items` is the key, not `dict.items`).
Rendering is bounded (docs/pipelines.md#limits): templates of at most 20,000 characters,
results of at most 1 MiB, `range` of at most 100,000 items, 1,000,000 loop iterations, 1 second.

Here templates are checked, compiled, rendered and their references read; the environment they run in
is sandbox.py, with its bounds in bounds.py and its filters in filters.py.
"""

import re
import time
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.lexer import Token, TokenStream
from jinja2.nativetypes import NativeTemplate
from jinja2.parser import Parser
from jinja2.utils import missing, object_type_repr

from longtail_mcp.errors import InvalidInput
from longtail_mcp.pipelines.bounds import BUDGET, MAX_SECONDS, Budget, Limit, as_text, check_size, to_json
from longtail_mcp.pipelines.chains import find_chains
from longtail_mcp.pipelines.filters import LOOP_GUARD
from longtail_mcp.pipelines.sandbox import ENV, Missing

MAX_TEMPLATE = 20_000  # characters of one template string
CONTEXT_NAMES = ("inputs", "steps", "item", "index", "run")
GLOBAL_NAMES = frozenset({"range", "dict", "cycler", "joiner"})
FALSE_TEXT = frozenset({"", "0", "false", "none", "null"})
MARKERS = ("{{", "{%", "{#")


class SyntaxProblem(Exception):
    """A template does not compile; `line_offset` (0-based) and `column` (1-based) are inside the string."""

    def __init__(self, message: str, line_offset: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line_offset = line_offset
        self.column = column


# -- compiling ---------------------------------------------------------------------------------------------

_FORBIDDEN_STATEMENTS = {
    nodes.Macro: "macro", nodes.CallBlock: "call", nodes.FilterBlock: "filter", nodes.AssignBlock: "set",
    nodes.Extends: "extends", nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from",
    nodes.Block: "block",
}
_ALLOWED_STATEMENTS = (nodes.Output, nodes.If, nodes.For, nodes.Assign, nodes.With)


def is_template(text: str) -> bool:
    """Whether the string holds template markup (any other string renders to itself)."""
    return any(m in text for m in MARKERS)


def _position(text: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(text)))
    line_offset = text.count("\n", 0, offset)
    return line_offset, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _find_on_line(text: str, lineno: int, pattern: str) -> tuple[int, int]:
    """Position of a regex match on a template line (1-based `lineno`), else that line's start."""
    lines = text.split("\n")
    index = max(0, min(lineno - 1, len(lines) - 1))
    match = re.search(pattern, lines[index])
    return index, (match.start() + 1) if match else 1


def _parse_tracked(text: str) -> nodes.Template:
    """Parse, and on a syntax error say where in the string it is (Jinja gives the line only)."""
    lexer = ENV.lexer
    where = {"start": 0, "end": 0, "lexing": False}
    offsets: list[tuple[Token, int]] = []

    def raw() -> Iterator[tuple[int, str, str]]:
        where["lexing"] = True
        for lineno, kind, value in lexer.tokeniter(text, None):
            found = text.find(value, where["end"]) if value else -1
            where["start"] = found if found >= 0 else where["end"]
            where["end"] = where["start"] + len(value) if found >= 0 else where["end"]
            where["lexing"] = False
            yield lineno, kind, value
            where["lexing"] = True
        where["lexing"] = False

    def tokens() -> Iterator[Token]:
        for token in lexer.wrap(raw()):
            offsets.append((token, where["start"]))
            yield token

    parser = Parser(ENV, "")  # then fed our own stream: building it lexes, which may fail already
    try:
        parser.stream = TokenStream(tokens(), None, None)
        return parser.parse()
    except TemplateSyntaxError as exc:
        offset = where["end"]
        if not where["lexing"]:
            current = parser.stream.current
            matches = [o for t, o in offsets if t is current]
            end = len(text) - 1 if text.endswith("\n") else len(text)  # Jinja drops one trailing newline
            offset = matches[-1] if matches else (end if current.type == "eof" else where["start"])
        line_offset, column = _position(text, offset)
        if exc.lineno and exc.lineno - 1 != line_offset:  # trust Jinja's line over our search
            line_offset, column = exc.lineno - 1, 1
        raise SyntaxProblem(exc.message or "invalid template", line_offset, column) from None


def _restrict(ast: nodes.Template, text: str) -> None:
    """Refuse what expressions do not need and could abuse: macros, blocks, includes, recursive loops,
    filter and set blocks; unknown filters and tests."""
    for node in ast.find_all(nodes.Node):
        if isinstance(node, nodes.Stmt) and not isinstance(node, _ALLOWED_STATEMENTS):
            keyword = _FORBIDDEN_STATEMENTS.get(type(node), type(node).__name__.lower())
            line, column = _find_on_line(text, node.lineno, rf"{{%-?\s*{keyword}\b")
            raise SyntaxProblem(f"'{{% {keyword} %}}' is not allowed in expressions "
                                "(use if, for, set and with)", line, column)
        if isinstance(node, nodes.For) and node.recursive:
            line, column = _find_on_line(text, node.lineno, r"\brecursive\b")
            raise SyntaxProblem("recursive loops are not allowed in expressions", line, column)
        if isinstance(node, nodes.NSRef):
            line, column = _find_on_line(text, node.lineno, rf"\b{re.escape(node.name)}\s*\.")
            raise SyntaxProblem("assigning to an attribute is not allowed in expressions", line, column)
        if isinstance(node, (nodes.Filter, nodes.Test)):
            kind, known = ("filter", ENV.filters) if isinstance(node, nodes.Filter) else ("test", ENV.tests)
            if node.name not in known or node.name == LOOP_GUARD:
                line, column = _find_on_line(text, node.lineno, rf"\b{re.escape(node.name)}\b")
                raise SyntaxProblem(f"no {kind} named {node.name!r}", line, column)


def _parse(text: str) -> nodes.Template:
    if len(text) > MAX_TEMPLATE:
        raise SyntaxProblem(f"a template may have at most {MAX_TEMPLATE:,} characters (this has {len(text):,})",
                            0, 1)
    try:
        ast = _parse_tracked(text)
    except (RecursionError, MemoryError):
        raise SyntaxProblem("the expression nests too deeply", 0, 1) from None
    _restrict(ast, text)
    return ast


@lru_cache(maxsize=1024)
def _compiled(text: str) -> NativeTemplate:
    ast = _parse(text)
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(getattr(node, "arg", None), "value", None)
        if isinstance(name, str) and name.startswith("_"):  # the sandbox refuses it when run: refuse it now
            raise SyntaxProblem(f"{name!r}: names starting with _ are not allowed in expressions",
                                max(node.lineno - 1, 0), 1)
    for loop in ast.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, LOOP_GUARD, [], [], None, None, lineno=loop.lineno)
    try:
        template = ENV.from_string(ast)
    except TemplateSyntaxError as exc:
        raise SyntaxProblem(exc.message or "invalid template", max((exc.lineno or 1) - 1, 0), 1) from None
    except (RecursionError, SyntaxError, MemoryError):  # Python's own compiler on absurd nesting
        raise SyntaxProblem("the expression nests too deeply", 0, 1) from None
    assert isinstance(template, NativeTemplate)
    return template


def check(text: str) -> None:
    """Compile the template only.

    Raises:
        SyntaxProblem: it does not compile (or uses what expressions may not); the position is in `text`.
    """
    if is_template(text):
        _compiled(text)


# -- rendering ---------------------------------------------------------------------------------------------

def _short(text: str) -> str:
    return repr(text if len(text) <= 200 else text[:197] + "...")


def _collect(pieces: Iterator[Any]) -> Any:
    """One piece is the native value; several are text (no literal_eval: "[{{ a }}]" stays text)."""
    first = next(pieces, missing)
    if first is missing:
        return ""
    second = next(pieces, missing)
    if second is missing:
        return to_json(first)
    parts = [as_text(first), as_text(second)]
    size = len(parts[0]) + len(parts[1])
    for piece in pieces:
        text = as_text(piece)
        size += len(text)
        check_size(size, "the rendered text")
        parts.append(text)
    check_size(size, "the rendered text")
    return "".join(parts)


def _lookup(context: Mapping[str, Any], chain: tuple[str, ...]) -> Any:
    value: Any = context
    for part in chain:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return missing
    return value


def _missing_message(exc: Missing, text: str, context: Mapping[str, Any]) -> str:
    if exc.obj is missing:
        hint = " (item and index exist only in a for_each step's arguments)" if exc.name in ("item", "index") else ""
        return f"{exc.name!r} is undefined{hint}"
    try:
        chains = sorted(_references_in(text))
    except SyntaxProblem:
        chains = []
    for chain in chains:
        for k in range(1, len(chain)):
            if chain[k] == exc.name and _lookup(context, chain[:k]) is exc.obj:
                path = ".".join(chain[:k])
                if exc.obj is None:
                    return f"{path} is None, so it has no attribute {exc.name!r} (a skipped step's result is None)"
                return f"{path} has no attribute {exc.name!r}"
    what = "item" if not isinstance(exc.name, str) else "attribute"
    return f"{object_type_repr(exc.obj)} has no {what} {exc.name!r}"


def _render_text(text: str, context: dict[str, Any]) -> Any:
    try:
        template = _compiled(text)
        return _collect(template.root_render_func(template.new_context(context)))
    except SyntaxProblem as exc:
        where = f" (line {exc.line_offset + 1}, column {exc.column})" if "\n" in text else f" (column {exc.column})"
        raise InvalidInput(f"expression {_short(text)}: {exc.message}{where}") from None
    except Missing as exc:
        raise InvalidInput(f"expression {_short(text)}: {_missing_message(exc, text, context)}") from None
    except (Limit, SecurityError, TemplateError) as exc:
        raise InvalidInput(f"expression {_short(text)}: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"expression {_short(text)}: the value nests too deeply") from None
    except Exception as exc:  # the expression's own arithmetic, conversions, lookups: its author's error
        raise InvalidInput(f"expression {_short(text)}: {type(exc).__name__}: {exc}") from None


def _render(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _render_text(value, context) if is_template(value) else value
    if isinstance(value, dict):
        return {k: _render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context) for v in value]
    return value


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template string in a JSON value (dict keys are not rendered).

    Raises:
        InvalidInput: naming the expression and the problem (an undefined name, a missing attribute,
            a refused operation, a bound reached).
    """
    token = BUDGET.set(Budget(time.monotonic() + MAX_SECONDS))
    try:
        return _render(value, dict(context))
    finally:
        BUDGET.reset(token)


def truthy(value: Any) -> bool:
    """Whether a rendered `when` lets its step run: Python truthiness, except that the texts "", "0",
    "false", "none" and "null" (any case, surrounding blanks ignored) are false."""
    if isinstance(value, str):
        return value.strip().lower() not in FALSE_TEXT
    return bool(value)


# -- references --------------------------------------------------------------------------------------------

@lru_cache(maxsize=1024)
def _references_in(text: str) -> frozenset[tuple[str, ...]]:
    return frozenset(find_chains(_parse(text)))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def references(value: Any) -> set[tuple[str, ...]]:
    """Every name chain the templates in a JSON value read: `{{ steps.rates.data.EUR }}` gives
    ("steps", "rates", "data", "EUR"). Names bound inside (loop variables, `set`) are not references.

    Raises:
        InvalidInput: a template does not compile.
    """
    found: set[tuple[str, ...]] = set()
    for text in _strings(value):
        if is_template(text):
            try:
                found |= _references_in(text)
            except SyntaxProblem as exc:
                raise InvalidInput(f"expression {_short(text)}: {exc.message}") from None
    return found

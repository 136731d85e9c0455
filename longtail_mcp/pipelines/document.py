"""A pipeline's YAML composed into plain JSON values that keep their positions, and the problems found on the way.

`compose` builds the values from YAML's nodes, refusing what is not JSON (tags, merge keys, NaN), duplicate
keys, and documents too large or too deep; the `Document` it returns says where any path is (line and
column, 1-based) and collects the `Problem`s reported against it.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1 << 20
MAX_STEPS = 500
MAX_DEPTH = 64
MAX_VALUES = 100_000  # after aliases are expanded: `&a [*b, *b, ...]` chains grow exponentially

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline document, where it is (1-based) and the value's path."""

    line: int
    column: int
    message: str
    path: str  # e.g. "steps[2].args.url"; "" for the document as a whole

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"line {self.line}, column {self.column}: {where}{self.message}"


TAG = "tag:yaml.org,2002:"
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")  # YAML's line breaks, as its marks count them
_CONSTRUCTOR = SafeConstructor()


class Fatal(Exception):
    """A problem after which nothing else is parsed."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _TooDeep(Exception):
    def __init__(self, mark: Mark) -> None:
        super().__init__("too deep")
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer, refusing to nest deeper than MAX_DEPTH (it recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _path_text(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_$][\w$-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


class Document:
    """The composed YAML: plain values built from its nodes, the node of every path, and the problems."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = _LINE_BREAK.split(text)
        self.values: dict[Path, Node] = {}
        self.keys: dict[Path, Node] = {}
        self.problems: list[Problem] = []
        self.count = 0

    def clamp(self, line: int, column: int) -> tuple[int, int]:
        """A position inside the document: an existing line, and at most one past that line's end."""
        line = max(1, min(line, len(self.lines)))
        return line, max(1, min(column, len(self.lines[line - 1]) + 1))

    def mark(self, mark: Mark | None) -> tuple[int, int]:
        return self.clamp(mark.line + 1, mark.column + 1) if mark is not None else (1, 1)

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Where the value at `path` is (its key when `key`), else its nearest enclosing value."""
        if key and path in self.keys:
            return self.mark(self.keys[path].start_mark)
        for end in range(len(path), -1, -1):
            node = self.values.get(path[:end])
            if node is not None:
                return self.mark(node.start_mark)
        return 1, 1

    def inside(self, path: Path, line_offset: int, column: int) -> tuple[int, int]:
        """Where a position inside the string at `path` is in the file: exact for a one-line string,
        close for block scalars (`|`, `>`), approximate for folded multi-line flow scalars."""
        node = self.values.get(path)
        if not isinstance(node, ScalarNode) or node.start_mark is None:
            return self.position(path)
        start, end = node.start_mark, node.end_mark
        if node.style in ("|", ">"):
            index = start.line + 1 + line_offset
        elif line_offset == 0:
            quote = 1 if node.style in ("'", '"') else 0
            return self.clamp(start.line + 1, start.column + quote + column)
        else:
            index = min(start.line + line_offset, end.line if end is not None else start.line)
        indent = 0
        if 0 <= index < len(self.lines):
            indent = len(self.lines[index]) - len(self.lines[index].lstrip(" "))
        return self.clamp(index + 1, indent + column)

    def report(self, path: Path, message: str, *, key: bool = False, at: tuple[int, int] | None = None) -> None:
        line, column = at if at is not None else self.position(path, key=key)
        self.problems.append(Problem(line, column, message, _path_text(path)))

    def fatal(self, message: str, mark: Mark | None = None, path: Path = ()) -> Fatal:
        line, column = self.mark(mark) if mark is not None else self.position(path)
        return Fatal(Problem(line, column, message, _path_text(path)))

    # building values

    def build(self, node: Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise self.fatal(f"the document has more than {MAX_VALUES:,} values (with its aliases expanded)",
                             node.start_mark, path)
        if depth > MAX_DEPTH:
            raise self.fatal(f"the document nests deeper than {MAX_DEPTH} levels", node.start_mark, path)
        self.values[path] = node
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != TAG + "seq":
                self.report(path, f"unsupported tag {node.tag!r} (a pipeline holds JSON values)")
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        if node.tag != TAG + "map":
            self.report(path, f"unsupported tag {node.tag!r} (a pipeline holds JSON values)")
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = self.mark(key_node.start_mark)[0]
            if not isinstance(key_node, ScalarNode):
                self.report(path, "a mapping key must be a string", at=self.mark(key_node.start_mark))
                continue
            if key_node.tag == TAG + "merge":
                self.report(path, "merge keys (<<) are not supported: write the keys out",
                            at=self.mark(key_node.start_mark))
                continue
            key = str(key_node.value)  # keys are text as written: `on:` is "on", `1:` is "1"
            if key in first_line:
                self.report((*path, key), f"duplicate key {key!r} (first at line {first_line[key]})",
                            at=self.mark(key_node.start_mark))
            else:
                first_line[key] = line
            self.keys[(*path, key)] = key_node
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return out

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        tag = node.tag
        if tag in (TAG + "str", TAG + "timestamp", TAG + "value", "!"):
            return str(node.value)  # a date stays the text it is written as
        kinds: dict[str, Callable[[ScalarNode], Any]] = {
            TAG + "null": _CONSTRUCTOR.construct_yaml_null, TAG + "bool": _CONSTRUCTOR.construct_yaml_bool,
            TAG + "int": _CONSTRUCTOR.construct_yaml_int, TAG + "float": _CONSTRUCTOR.construct_yaml_float,
        }
        make = kinds.get(tag)
        if make is None:
            self.report(path, f"unsupported tag {tag!r} (a pipeline holds JSON values)")
            return str(node.value)
        try:
            value = make(node)
        except (ValueError, KeyError, TypeError, OverflowError):
            self.report(path, f"{node.value!r} is not a valid {tag.removeprefix(TAG)}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.report(path, f"{node.value!r} is not a JSON number (no NaN or infinity)")
            return None
        return value


def compose(text: str) -> tuple[Document, Any]:
    doc = Document(text)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise doc.fatal(f"the document is larger than {MAX_BYTES:,} bytes")
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # its reader refuses unprintable characters already
        root = loader.get_single_node()
    except _TooDeep as exc:
        raise doc.fatal(f"the document nests deeper than {MAX_DEPTH} levels", exc.mark) from None
    except yaml.MarkedYAMLError as exc:
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context}"
            if exc.context_mark is not None and exc.problem_mark is not None \
                    and exc.context_mark.line != exc.problem_mark.line:
                message += f" at line {exc.context_mark.line + 1}"
            message += ")"
        raise doc.fatal(f"invalid YAML: {message}", exc.problem_mark or exc.context_mark) from None
    except yaml.reader.ReaderError as exc:
        index = int(exc.position) if isinstance(exc.position, int) else 0
        line = len(_LINE_BREAK.findall(text, 0, index)) + 1
        start = max((m.end() for m in _LINE_BREAK.finditer(text, 0, index)), default=0)
        character = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        problem = Problem(*doc.clamp(line, index - start + 1), f"invalid YAML: character {character!r} "
                          "is not allowed (not printable)", "")
        raise Fatal(problem) from None
    except yaml.YAMLError as exc:
        raise doc.fatal(f"invalid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise doc.fatal("the document is empty: a pipeline is a mapping (name: ..., steps: [...])")
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else "a single value"
        raise doc.fatal(f"a pipeline is a mapping (name: ..., steps: [...]), not {kind}", root.start_mark)
    for key_node, value_node in root.value:
        if isinstance(key_node, ScalarNode) and key_node.value == "steps" and isinstance(value_node, SequenceNode) \
                and len(value_node.value) > MAX_STEPS:
            raise doc.fatal(f"a pipeline has at most {MAX_STEPS} steps (this one has {len(value_node.value)})",
                            value_node.start_mark)
    return doc, doc.build(root, (), 0)

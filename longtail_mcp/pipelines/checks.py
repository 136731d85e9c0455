"""The checks of a pipeline beyond its pydantic model, each problem reported with its position on the document.

`Checker` checks the tools and their arguments (looked up with a `ToolLookup`), the expressions and what
they reference, the JSON Schemas, the cron schedule and the dependency cycles.
"""

import difflib
import re
import typing
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from jsonschema import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from pydantic import BaseModel, ValidationError

from longtail_mcp.errors import InvalidInput
from longtail_mcp.pipelines.document import Document, Path
from longtail_mcp.pipelines.expressions import (
    CONTEXT_NAMES,
    GLOBAL_NAMES,
    SyntaxProblem,
    check,
    is_template,
    references,
)
from longtail_mcp.pipelines.model import Pipeline
from longtail_mcp.runtime.service import cron_iter
from longtail_mcp.tools.catalog import ToolInfo  # what the validator needs: read_only and input_schema

ToolLookup = Callable[[str], ToolInfo | None]  # "server/tool" -> its info, or None if unknown


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _model_at(loc: Path) -> type[BaseModel] | None:
    """The model whose field the last element of `loc` would be (None inside free-form JSON)."""
    model: type[BaseModel] = Pipeline
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _inner_model(field.annotation) if field is not None else None
        if inner is None:
            return None
        model = inner
    return model


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _locate(text: str, chain: tuple[str, ...]) -> int:
    """Offset in the template of the reference `chain` (its root and first key), for the column."""
    root = re.escape(chain[0])
    if len(chain) > 1:
        key = re.escape(chain[1])
        match = re.search(rf"(?<![\w.]){root}\s*(?:\.\s*{key}\b|\[\s*['\"]{key}['\"]\s*\])", text)
        if match:
            return match.start()
    match = re.search(rf"(?<![\w.]){root}\b", text)
    return match.start() if match else 0


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset), offset - (text.rfind("\n", 0, offset) + 1) + 1


class Checker:
    """Everything the model cannot check; each problem is reported on the document."""

    def __init__(self, doc: Document, tools: ToolLookup) -> None:
        self.doc = doc
        self.tools = tools
        self.ids: dict[str, int] = {}  # step id -> index of its first step
        self.inputs: set[str] | None = None  # declared input names, when input_schema lists properties
        self.reads: dict[str, set[str]] = {}

    def run(self, data: dict[str, Any]) -> Pipeline | None:
        model = self.model(data)
        input_validator = self.input_schema(data.get("input_schema", {"type": "object", "properties": {}}))
        if isinstance(data.get("output_schema"), dict):
            self.schema(("output_schema",), data["output_schema"])
        steps = data.get("steps")
        if isinstance(steps, list):
            self.steps(steps)
        for path, text in _strings(data.get("output"), ("output",)):
            self.expression(path, text, step=None, item_ok=False)
        self.schedule(data.get("schedule"), input_validator)
        examples = data.get("examples")
        if isinstance(examples, list) and input_validator is not None:
            for index, example in enumerate(examples):
                if isinstance(example, dict):
                    self.instance(("examples", index), example, input_validator, "input_schema")
        return model

    def model(self, data: dict[str, Any]) -> Pipeline | None:
        try:
            return Pipeline.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self.model_error(tuple(error["loc"]), error["type"], error["msg"])
            return None

    def model_error(self, loc: Path, kind: str, message: str) -> None:
        name = loc[-1] if loc else ""
        if kind == "missing":
            self.doc.report(loc, f"missing required key {name!r}")
        elif kind == "extra_forbidden":
            model = _model_at(loc)
            hint = _suggest(str(name), list(model.model_fields)) if model is not None else ""
            self.doc.report(loc, f"unknown key {name!r}{hint}", key=True)
        elif kind == "string_pattern_mismatch" and name in ("id", "name"):
            what = "a step id" if name == "id" else "a pipeline name"
            self.doc.report(loc, f"{what} is 1-63 lowercase letters, digits and '_', starting with a letter")
        elif kind == "too_short" and loc == ("steps",):
            self.doc.report(loc, "a pipeline needs at least one step")
        else:
            self.doc.report(loc, message)

    # schemas

    def schema(self, path: Path, schema: dict[str, Any]) -> type[Validator] | None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # an unknown $schema is only a DeprecationWarning (the latest draft
                cls = validator_for(schema)  # is the default; passing `default=` would silence the warning)
            cls.check_schema(schema)
        except SchemaError as exc:
            self.doc.report((*path, *exc.absolute_path), f"not a valid JSON Schema: {exc.message}")
        except Warning:
            self.doc.report((*path, "$schema"), f"unknown $schema {schema.get('$schema')!r}")
        except Exception as exc:  # a schema odd enough to break the checker is not a valid schema
            self.doc.report(path, f"not a valid JSON Schema: {exc}")
        else:
            return cls
        return None

    def input_schema(self, schema: Any) -> Validator | None:
        if not isinstance(schema, dict):
            return None
        cls = self.schema(("input_schema",), schema)
        if schema.get("type", "object") != "object":
            self.doc.report(("input_schema", "type"), "input_schema describes the pipeline's arguments: "
                                                      "its type must be object")
        properties = schema.get("properties")
        if isinstance(properties, dict):
            self.inputs = {str(k) for k in properties}
        return cls(schema) if cls is not None else None

    def instance(self, path: Path, value: Any, validator: Validator, against: str) -> None:
        try:
            for error in validator.iter_errors(value):
                self.doc.report((*path, *error.absolute_path), f"does not match {against}: {error.message}")
        except Exception as exc:  # e.g. a $ref that cannot be resolved
            self.doc.report(path, f"could not check against {against}: {exc}")

    def schedule(self, schedule: Any, input_validator: Validator | None) -> None:
        if not isinstance(schedule, dict):
            return
        cron = schedule.get("cron")
        if isinstance(cron, str):
            try:
                cron_iter(cron, datetime.now(UTC))
            except InvalidInput as exc:
                self.doc.report(("schedule", "cron"), exc.message)
            except Exception as exc:  # croniter on input it did not expect
                self.doc.report(("schedule", "cron"), f"invalid cron expression {cron!r}: {exc}")
        value = schedule.get("input", {})
        if isinstance(value, dict) and input_validator is not None:
            self.instance(("schedule", "input"), value, input_validator, "input_schema")

    # steps

    def steps(self, steps: list[Any]) -> None:
        found = [(i, s) for i, s in enumerate(steps) if isinstance(s, dict)]
        for i, step in found:
            sid = step.get("id")
            if not isinstance(sid, str):
                continue
            if sid in self.ids:
                first = self.ids[sid]
                line = self.doc.position(("steps", first, "id"))[0]
                self.doc.report(("steps", i, "id"), f"duplicate step id {sid!r} (first used by steps[{first}], "
                                                    f"line {line})")
            else:
                self.ids[sid] = i
        for i, step in found:
            reads = self.step(i, step)
            sid = step.get("id")
            if isinstance(sid, str) and self.ids.get(sid) == i:
                self.reads[sid] = reads
        self.cycles()

    def step(self, i: int, step: dict[str, Any]) -> set[str]:
        """Check one step; return the ids of the steps it waits for."""
        base: Path = ("steps", i)
        sid = step.get("id") if isinstance(step.get("id"), str) else None
        tool, human = step.get("tool"), step.get("human")
        if tool is not None and human is not None:
            self.doc.report(base, "a step has either 'tool' or 'human', not both")
        elif tool is None and human is None:
            self.doc.report(base, "a step needs 'tool' (server/tool) or 'human'")
        if isinstance(tool, str):
            self.tool(base, tool, step.get("args", {}))
        item_ok = step.get("for_each") is not None
        reads: set[str] = set()
        for key in ("when", "for_each"):
            text = step.get(key)
            if isinstance(text, str):
                if not is_template(text):
                    self.doc.report((*base, key), f"{key} is an expression, like \"{{{{ steps.fetch.ok }}}}\": "
                                                  "this is plain text")
                reads |= self.expression((*base, key), text, step=sid, item_ok=False)
        for path, text in _strings(step.get("args"), (*base, "args")):
            reads |= self.expression(path, text, step=sid, item_ok=item_ok)
        if isinstance(human, dict):
            form = human.get("form_schema")
            if isinstance(form, dict):
                self.schema((*base, "human", "form_schema"), form)
            for key in ("message", "data"):
                for path, text in _strings(human.get(key), (*base, "human", key)):
                    reads |= self.expression(path, text, step=sid, item_ok=item_ok)
        needs = step.get("needs")
        if isinstance(needs, list):
            for j, name in enumerate(needs):
                if isinstance(name, str):
                    problem = self.step_problem(name, sid)
                    if problem is None:
                        reads.add(name)
                    else:
                        self.doc.report((*base, "needs", j), problem)
        return reads

    def tool(self, base: Path, name: str, args: Any) -> None:
        info = self.tools(name)
        if info is None:
            names = getattr(self.tools, "names", None)
            candidates = [str(n) for n in names()] if callable(names) else []
            form = "" if "/" in name else "; a tool is named server/tool"
            self.doc.report((*base, "tool"), f"unknown tool {name!r}{form}{_suggest(name, candidates)}")
            return
        if not isinstance(args, dict):
            return
        schema = info.input_schema
        properties = schema.get("properties")
        if isinstance(properties, dict) and schema.get("additionalProperties") is False:
            for arg in args:
                if arg not in properties:
                    self.doc.report((*base, "args", arg), f"{name} has no argument {arg!r}"
                                    f"{_suggest(arg, [str(p) for p in properties])}", key=True)
        required = schema.get("required")
        if isinstance(required, list):
            absent = [r for r in required if isinstance(r, str) and r not in args]
            if absent:
                self.doc.report((*base, "args"), f"{name} needs the argument{'s' if len(absent) > 1 else ''} "
                                                 f"{', '.join(repr(a) for a in absent)}")

    def step_problem(self, name: str, sid: str | None) -> str | None:
        if name == sid:
            return f"step {sid!r} cannot wait for itself"
        if name not in self.ids:
            return f"no step {name!r}{_suggest(name, list(self.ids))}"
        return None

    def expression(self, path: Path, text: str, *, step: str | None, item_ok: bool) -> set[str]:
        """Check one string; return the ids of the steps it reads."""
        if not is_template(text):
            return set()
        try:
            check(text)
        except SyntaxProblem as exc:
            self.doc.report(path, f"invalid expression: {exc.message}",
                            at=self.doc.inside(path, exc.line_offset, exc.column))
            return set()
        reads: set[str] = set()
        for chain in sorted(references(text)):
            problem = self.reference_problem(chain, step, item_ok)
            if problem is None:
                if chain[0] == "steps":
                    reads.add(chain[1])
                continue
            line_offset, column = _offset_position(text, _locate(text, chain))
            self.doc.report(path, problem, at=self.doc.inside(path, line_offset, column))
        return reads

    def reference_problem(self, chain: tuple[str, ...], step: str | None, item_ok: bool) -> str | None:
        root = chain[0]
        if root == "steps":
            if len(chain) < 2:
                return "name the step: steps.<id> (all of steps, or a computed id, cannot be waited for)"
            if chain[1] == step:
                return f"step {step!r} cannot read its own result"
            if chain[1] not in self.ids:
                return f"no step {chain[1]!r}{_suggest(chain[1], list(self.ids))}"
        elif root == "inputs":
            if len(chain) > 1 and self.inputs is not None and chain[1] not in self.inputs:
                declared = ", ".join(sorted(self.inputs)) or "none"
                return f"unknown input {chain[1]!r} (input_schema declares: {declared})"
        elif root in ("item", "index"):
            if not item_ok:
                where = "in the output" if step is None else f"in step {step!r}, which has no for_each"
                return f"{root!r} is used {where} (it exists in the arguments of a for_each step only)"
        elif root == "run":
            if len(chain) > 1 and chain[1] != "id":
                return f"run has only 'id' (not {chain[1]!r})"
        elif root not in GLOBAL_NAMES:
            return f"unknown name {root!r} (expressions see {', '.join(CONTEXT_NAMES)})"
        return None

    def cycles(self) -> None:
        graph = {sid: {d for d in reads if d in self.reads and d != sid} for sid, reads in self.reads.items()}
        reach: dict[str, set[str]] = {}
        for sid in graph:
            seen: set[str] = set()
            queue = deque(graph[sid])
            while queue:
                node = queue.popleft()
                if node not in seen:
                    seen.add(node)
                    queue.extend(graph[node])
            reach[sid] = seen
        reported: set[str] = set()
        for sid in sorted(graph, key=lambda s: self.ids[s]):
            if sid in reported or sid not in reach[sid]:
                continue
            members = {other for other in reach[sid] if sid in reach[other]}
            reported |= members
            path = self.cycle_path(sid, members, graph)
            self.doc.report(("steps", self.ids[sid], "id"), f"dependency cycle: {' -> '.join(path)}")

    def cycle_path(self, start: str, members: set[str], graph: dict[str, set[str]]) -> list[str]:
        """The shortest way from `start` back to itself (a step waits for the next one)."""
        parent: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for dep in sorted(graph[node] & members, key=lambda s: self.ids[s]):
                if dep == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
                if dep not in parent:
                    parent[dep] = node
                    queue.append(dep)
        return [start, start]

"""Compile a Python workflow's source into a pipeline (Long Tail's `ltc compile`): a small, checked subset.

Where `compile_run` infers a pipeline from what one run did, this reads what the code says: each
`await ctx.call_tool(...)` is a step, a `for` over a list is a `for_each`, an `if` is a `when`. Anything
outside the subset is refused with its line, never approximated (docs/pipelines.md).
"""

import ast
import inspect
import re
import textwrap
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from longtail_mcp.errors import InvalidInput
from longtail_mcp.pipelines.compiler import Compiled
from longtail_mcp.pipelines.facts import ToolLookup
from longtail_mcp.pipelines.model import Human, Pipeline, Step
from longtail_mcp.pipelines.ordering import Ordered, effect_needs
from longtail_mcp.pipelines.spelling import jinja_literal, json_type, literal, path_expr, safe_id, unique_id

SUBSET = ("`x = await ctx.call_tool('server/tool', {...})`, `a, b = await ctx.gather(ctx.call_tool(...), ...)`, "
          "`for item in <list>: await ctx.call_tool(...)` (or `x = [await ctx.call_tool(...) for item in <list>]`), "
          "`r = await ctx.escalate('role', 'message', {...})`, `if <condition>:` around those, and a final "
          "`return {...}`; values are literals, the input, earlier results, the item and f-strings of them")
_STATEMENTS: dict[type[ast.AST], str] = {
    ast.While: "a while loop", ast.Try: "a try statement", ast.With: "a with statement",
    ast.AsyncWith: "an async with statement", ast.AsyncFor: "an async for loop", ast.Raise: "a raise statement",
    ast.FunctionDef: "a nested function", ast.AsyncFunctionDef: "a nested function", ast.ClassDef: "a class",
    ast.Import: "an import", ast.ImportFrom: "an import", ast.Delete: "a del statement",
    ast.AugAssign: "an augmented assignment", ast.Assert: "an assert statement", ast.Match: "a match statement",
    ast.Break: "a break statement", ast.Continue: "a continue statement", ast.Global: "a global statement",
    ast.Nonlocal: "a nonlocal statement",
}
_COMPARE: dict[type[ast.cmpop], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.In: "in",
    ast.NotIn: "not in",
}
_FILTERS = {"len": "length", "str": "string", "int": "int", "float": "float"}
_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[(?:-?\d+|'(?:[^'\\]|\\.)*')\])*")


def compile_source(fn: Callable[..., Any], *, name: str | None = None, tools: ToolLookup) -> Compiled:
    """Compile the source of `async def wf(ctx, input)` into a pipeline (the subset in `SUBSET`).

    Raises:
        InvalidInput: the source cannot be read, or uses something outside the subset (the message names
        the line and the construct).
    """
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise InvalidInput(f"cannot read the source of {fn!r}: {exc}") from None
    tree = ast.parse(textwrap.dedent("".join(lines)))
    func = tree.body[0] if tree.body else None
    if not isinstance(func, ast.AsyncFunctionDef):
        raise InvalidInput(f"line {first}: cannot compile {getattr(fn, '__qualname__', fn)!r}: a workflow is an "
                           "`async def wf(ctx, input)`")
    return _SourceCompiler(fn, func, first, tools).compile(name)


@dataclass
class _Draft:
    id: str
    line: int
    group: int
    effects: bool
    refs: set[str]
    tool: str | None = None
    human: Human | None = None
    args: dict[str, Any] = field(default_factory=dict)
    when: str | None = None
    for_each: str | None = None
    retries: int = 3


@dataclass
class _Input:
    schema: dict[str, Any]
    required: bool
    line: int


class _SourceCompiler:
    """One compilation of one workflow function: walks its statements, in order, into step drafts."""

    def __init__(self, fn: Callable[..., Any], func: ast.AsyncFunctionDef, first: int, tools: ToolLookup) -> None:
        self.fn, self.func, self.first, self.tools = fn, func, first, tools
        params = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
        if not params:
            self._fail(func, "a workflow without the context parameter")
        self.ctx = params[0]
        self.input = params[1] if len(params) > 1 else None
        self.model_required: set[str] = set()  # fields an input model requires (read as `input.field`)
        self.annotation = self._annotation()
        # Read as a mapping (`input["k"]`) the input's keys are the pipeline's inputs; used only whole, the
        # input is one value named "input", as compile_run names a run's input that is not an object.
        self.keyed = any(
            (isinstance(n, ast.Subscript | ast.Attribute) and self._is_input(n.value))
            for n in ast.walk(func))
        self.inputs: dict[str, _Input] = {}
        self.bound: dict[str, str] = {}  # variable -> the step id holding its value
        self.item: str | None = None  # the loop variable, while compiling a loop's body
        self.refs: set[str] = set()  # the steps the expression being compiled reads
        self.drafts: list[_Draft] = []
        self.used: set[str] = set()
        self.groups = 0
        self.notes: list[str] = []
        self.output: Any = None
        self.description = ""

    def compile(self, name: str | None) -> Compiled:
        body = list(self.func.body)
        doc = ast.get_docstring(self.func)
        if doc is not None:
            body = body[1:]
            self.description = " ".join(doc.split("\n\n")[0].split())
        last = body[-1] if body else None
        returned = last if isinstance(last, ast.Return) else None
        self._block(body[:-1] if returned is not None else body, [])
        if returned is not None and returned.value is not None:
            self.output = self._value(returned.value)
        if not self.drafts:
            self._fail(self.func, "a workflow without a tool call or an escalation")
        needs = effect_needs([Ordered(d.id, d.effects, frozenset(d.refs), d.group) for d in self.drafts])
        steps = []
        for d in self.drafts:
            steps.append(Step(id=d.id, tool=d.tool, human=d.human, args=d.args, when=d.when, for_each=d.for_each,
                              retries=d.retries, needs=needs[d.id]))
            if needs[d.id]:
                self.notes.append(f"step {d.id} needs {', '.join(needs[d.id])}: steps with effects keep the order "
                                  "the code gives them")
        for key, inp in self.inputs.items():
            self.notes.append(f"input {key!r}: read at line {inp.line}" + (" (required)" if inp.required else ""))
        tools = [d.tool for d in self.drafts if d.tool]
        sequence = " → ".join((d.tool + (" (for each)" if d.for_each else "")) if d.tool else "human"
                              for d in self.drafts)
        try:
            pipeline = Pipeline(
                name=safe_id(name or f"{self.fn.__name__}_pipeline", "pipeline"),
                description=(self.description or f"Compiled from the source of {self.fn.__qualname__}: "
                             f"{sequence}")[:4000],
                tags=list(dict.fromkeys(t.partition("/")[0] for t in tools))[:50],
                input_schema={"type": "object", "required": [k for k, i in self.inputs.items() if i.required],
                              "properties": {k: i.schema for k, i in self.inputs.items()}},
                steps=steps, output=self.output)
        except ValidationError as exc:
            raise InvalidInput(f"the compiled pipeline is not valid: {exc}") from None
        return Compiled(pipeline, self.notes)

    # -- statements

    def _block(self, body: Sequence[ast.stmt], conds: list[tuple[str, set[str]]]) -> None:
        for stmt in body:
            self._statement(stmt, conds)

    def _statement(self, stmt: ast.stmt, conds: list[tuple[str, set[str]]]) -> None:
        if isinstance(stmt, ast.Assign) or (isinstance(stmt, ast.AnnAssign) and stmt.value is not None):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if len(targets) != 1 or stmt.value is None:
                self._fail(stmt, "a chained assignment")
            self._assign(stmt, targets[0], stmt.value, conds)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Await):
            call, method = self._ctx_call(stmt.value.value, stmt)
            if method == "gather":
                self._gather(call, None, conds)
            else:
                self._action(call, method, None, conds, self._group())
        elif isinstance(stmt, ast.For):
            if stmt.orelse:
                self._fail(stmt, "a for loop with an else clause")
            only = stmt.body[0] if len(stmt.body) == 1 else None
            if not (isinstance(only, ast.Expr) and isinstance(only.value, ast.Await)):
                self._fail(stmt, "a for loop whose body is not one `await ctx.call_tool(...)`")
            self._each(None, stmt.target, stmt.iter, self._ctx_call(only.value.value, only), conds)
        elif isinstance(stmt, ast.If):
            cond = self._condition(stmt.test)
            self._block(stmt.body, [*conds, cond])
            if stmt.orelse:
                self._block(stmt.orelse, [*conds, (f"not ({cond[0]})", cond[1])])
        elif isinstance(stmt, ast.Pass):
            pass
        elif isinstance(stmt, ast.Return):
            self._fail(stmt, "a return that is not the workflow's last statement")
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self._fail(stmt, self._called(stmt.value) + " that is not awaited")
        else:
            self._fail(stmt, _STATEMENTS.get(type(stmt), f"a {type(stmt).__name__} statement"))

    def _assign(self, stmt: ast.stmt, target: ast.expr, value: ast.expr, conds: list[tuple[str, set[str]]]) -> None:
        if isinstance(value, ast.ListComp) and isinstance(target, ast.Name):
            comp = value.generators[0] if len(value.generators) == 1 else None
            if comp is None or comp.ifs or comp.is_async or not isinstance(value.elt, ast.Await):
                self._fail(value, "a list comprehension other than `[await ctx.call_tool(...) for item in <list>]`")
            self._each(target.id, comp.target, comp.iter, self._ctx_call(value.elt.value, value), conds)
            return
        if not isinstance(value, ast.Await):
            self._fail(stmt, "an assignment that is not an awaited tool call, gather or escalation")
        call, method = self._ctx_call(value.value, stmt)
        if method == "gather":
            if not isinstance(target, ast.Tuple | ast.List):
                self._fail(stmt, "a gather assigned to one name (unpack it: `a, b = await ctx.gather(...)`)")
            self._gather(call, target.elts, conds)
        elif isinstance(target, ast.Name):
            self._action(call, method, target.id, conds, self._group())
        else:
            self._fail(stmt, "an assignment to something other than a name")

    def _gather(self, call: ast.Call, names: list[ast.expr] | None, conds: list[tuple[str, set[str]]]) -> None:
        if call.keywords or (names is not None and len(names) != len(call.args)):
            self._fail(call, "a gather whose results are not unpacked one name per call")
        group = self._group()
        bound: list[tuple[str, str]] = []
        for n, arg in enumerate(call.args):
            target = names[n] if names is not None else None
            if target is not None and not isinstance(target, ast.Name):
                self._fail(call, "a gather unpacked into something other than names")
            var = target.id if isinstance(target, ast.Name) and target.id != "_" else None
            inner, method = self._ctx_call(arg, call)
            if method == "gather":
                self._fail(arg, "a gather inside a gather")
            draft = self._action(inner, method, var, conds, group, bind=False)
            if var is not None:
                bound.append((var, draft.id))
        self.bound.update(bound)  # after the whole gather: its calls cannot read each other

    def _action(self, call: ast.Call, method: str, var: str | None, conds: list[tuple[str, set[str]]], group: int,
                *, bind: bool = True) -> _Draft:
        """One step from `ctx.call_tool(...)` or `ctx.escalate(...)`."""
        self.refs = set()
        if method == "call_tool":
            tool, args, retries = self._tool_call(call)
            facts = self.tools(tool)
            if facts is None:
                self.notes.append(f"unknown tool {tool} (line {self._line(call)}): treated as having effects")
            base = var or tool.partition("/")[2]
            draft = _Draft(self._id(base), self._line(call), group, facts is None or not facts.read_only, self.refs,
                           tool=tool, args=args, retries=retries)
        else:
            draft = _Draft(self._id(var or "review"), self._line(call), group, True, self.refs,
                           human=self._human(call))
        self._when(draft, conds)
        self.drafts.append(draft)
        self.notes.append(f"step {draft.id}: {draft.tool or 'human step'} (line {draft.line})")
        if bind and var is not None:
            self.bound[var] = draft.id
        return draft

    def _each(self, var: str | None, target: ast.expr, over: ast.expr, found: tuple[ast.Call, str],
              conds: list[tuple[str, set[str]]]) -> None:
        """A `for_each` step: one tool call per item of a list."""
        call, method = found
        if not isinstance(target, ast.Name):
            self._fail(target, "a loop over something other than one name")
        if method != "call_tool":
            self._fail(call, "a loop whose body is not one `ctx.call_tool(...)`")
        self.refs = set()
        source = "{{ " + self._expr(over) + " }}"
        over_refs = self.refs
        self.item = target.id
        try:
            tool, args, retries = self._tool_call(call)
        finally:
            self.item = None
        facts = self.tools(tool)
        draft = _Draft(self._id(var or f"each_{tool.partition('/')[2]}"), self._line(call), self._group(),
                       facts is None or not facts.read_only, self.refs | over_refs, tool=tool, args=args,
                       for_each=source, retries=retries)
        self._when(draft, conds)
        self.drafts.append(draft)
        self.notes.append(f"step {draft.id}: {tool} for each item of {source} (line {draft.line})")
        if var is not None:
            self.bound[var] = draft.id

    def _tool_call(self, call: ast.Call) -> tuple[str, dict[str, Any], int]:
        """`ctx.call_tool("server/tool", {...}, retries=n)`: the tool, its compiled arguments, the attempts."""
        positional = list(call.args)
        named = {k.arg: k.value for k in call.keywords}
        if None in named or len(positional) > 2 or set(named) - {"args", "retries"}:
            self._fail(call, "ctx.call_tool with arguments other than the tool, its arguments and retries")
        tool_node = positional[0] if positional else None
        if not (isinstance(tool_node, ast.Constant) and isinstance(tool_node.value, str) and "/" in tool_node.value):
            self._fail(call, "a tool name that is not a 'server/tool' string literal")
        args_node = positional[1] if len(positional) > 1 else named.get("args")
        if args_node is not None and not isinstance(args_node, ast.Dict):
            self._fail(args_node, "tool arguments that are not a dict literal")
        args = self._value(args_node) if args_node is not None else {}
        retries = 3
        if "retries" in named:
            node = named["retries"]
            if not (isinstance(node, ast.Constant) and type(node.value) is int and 1 <= node.value <= 10):
                self._fail(node, "retries other than an integer literal from 1 to 10")
            retries = node.value
        return tool_node.value, args, retries

    def _human(self, call: ast.Call) -> Human:
        """`ctx.escalate("role", "message", {data}, form_schema=..., priority=..., timeout=...)`."""
        names = ("role", "message", "data")
        given = dict(zip(names, call.args, strict=False))
        allowed = {*names, "form_schema", "priority", "timeout"}
        for k in call.keywords:
            if k.arg is None or k.arg not in allowed or k.arg in given:
                self._fail(call, f"ctx.escalate with the argument {k.arg or '**'!r}")
            given[k.arg] = k.value
        if len(call.args) > 3 or "role" not in given or "message" not in given:
            self._fail(call, "ctx.escalate without a role and a message, or with more than three positional arguments")
        role, message = given["role"], self._value(given["message"])
        if not (isinstance(role, ast.Constant) and isinstance(role.value, str)):
            self._fail(role, "a role that is not a string literal")
        if not isinstance(message, str) or not message:
            self._fail(given["message"], "a message that is not a string")
        data = self._value(given["data"]) if "data" in given else {}
        if not isinstance(data, dict):
            self._fail(given["data"], "escalation data that is not a dict literal")
        options: dict[str, Any] = {}
        for key, target in (("form_schema", "form_schema"), ("priority", "priority"), ("timeout", "timeout_seconds")):
            if key in given:
                try:
                    options[target] = ast.literal_eval(given[key])
                except ValueError:
                    self._fail(given[key], f"an escalation {key} that is not a literal")
        try:
            return Human(role=role.value, message=message, data=data, **options)
        except ValidationError as exc:
            self._fail(call, f"an escalation the pipeline format refuses ({exc.errors()[0]['msg']})")

    def _when(self, draft: _Draft, conds: list[tuple[str, set[str]]]) -> None:
        if conds:
            codes = [c for c, _ in conds]
            draft.when = "{{ " + (codes[0] if len(codes) == 1 else " and ".join(f"({c})" for c in codes)) + " }}"
            for _, refs in conds:
                draft.refs |= refs

    def _condition(self, test: ast.expr) -> tuple[str, set[str]]:
        self.refs = set()
        return self._expr(test), self.refs

    # -- values and expressions

    def _value(self, node: ast.expr) -> Any:
        """A JSON value in which strings may be templates: for arguments, messages, data and the output."""
        node = _negated(node)
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str | int | float)):
            return literal(node.value) if isinstance(node.value, str) else node.value
        if isinstance(node, ast.Dict):
            out: dict[str, Any] = {}
            for key, value in zip(node.keys, node.values, strict=True):
                if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                    self._fail(value, "a dict key that is not a string literal")
                out[key.value] = self._value(value)
            return out
        if isinstance(node, ast.List | ast.Tuple):
            return [self._value(v) for v in node.elts]
        if isinstance(node, ast.JoinedStr):
            parts: list[str] = []
            for n, part in enumerate(node.values):
                if isinstance(part, ast.Constant):
                    nxt = node.values[n + 1] if n + 1 < len(node.values) else None
                    parts.append(literal(str(part.value), before_tag=isinstance(nxt, ast.FormattedValue)))
                elif isinstance(part, ast.FormattedValue):
                    if part.format_spec is not None or part.conversion not in (-1, ord("s")):
                        self._fail(part, "an f-string format spec or conversion")
                    parts.append("{{ " + self._expr(part.value) + " }}")
            return "".join(parts)
        return "{{ " + self._expr(node) + " }}"

    def _expr(self, node: ast.expr) -> str:
        """A Jinja expression for a Python one: paths into the input, results and the item; comparisons,
        `and`/`or`/`not`, `len()`, `str()`, `int()`, `float()`, `json.dumps()`, `.get()` and literals."""
        node = _negated(node)
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str | int | float)):
            return jinja_literal(node.value)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Subscript):
            key = _negated(node.slice)
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str | int)
                    and not isinstance(key.value, bool)):
                self._fail(node, "a subscript that is not a string or integer literal")
            if self._is_input(node.value):
                return self._read_input(key.value, node, required=True)
            return path_expr(self._atom(node.value), (key.value,))
        if isinstance(node, ast.Attribute):
            if self._is_input(node.value):  # an input annotated with a model: `input.base`
                return self._read_input(node.attr, node, required=node.attr in self.model_required)
            self._fail(node, f"the attribute .{node.attr} (results are objects: read them as x['key'])")
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Compare):
            out = self._atom(node.left)
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.Is | ast.IsNot):
                    if not (isinstance(right, ast.Constant) and right.value is None):
                        self._fail(node, "`is` with something other than None")
                    out += " is none" if isinstance(op, ast.Is) else " is not none"
                else:
                    out += f" {_COMPARE[type(op)]} {self._atom(right)}"
            return out
        if isinstance(node, ast.BoolOp):
            word = " and " if isinstance(node.op, ast.And) else " or "
            return word.join(self._atom(v) for v in node.values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"not {self._atom(node.operand)}"
        if isinstance(node, ast.List | ast.Tuple):
            return "[" + ", ".join(self._expr(v) for v in node.elts) + "]"
        self._fail(node, f"the expression `{ast.unparse(node)}`")

    def _atom(self, node: ast.expr) -> str:
        """An operand: parenthesized unless it is a path or a literal (Jinja's precedence differs from Python's)."""
        code = self._expr(node)
        simple = _PATH.fullmatch(code) or isinstance(node, ast.Constant | ast.List | ast.Tuple)
        return code if simple else f"({code})"

    def _call(self, node: ast.Call) -> str:
        func = node.func
        if node.keywords:
            self._fail(node, f"{self._called(node)} with keyword arguments")
        if isinstance(func, ast.Attribute) and func.attr == "get" and 1 <= len(node.args) <= 2:
            key = node.args[0]
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                self._fail(node, "a .get() whose key is not a string literal")
            default: Any = None
            if len(node.args) == 2:
                try:
                    default = ast.literal_eval(node.args[1])
                except ValueError:
                    self._fail(node.args[1], "a .get() default that is not a literal")
            if self._is_input(func.value):
                code = self._read_input(key.value, node, required=False, default=default,
                                        defaulted=len(node.args) == 2)
            else:
                code = path_expr(self._atom(func.value), (key.value,))
            # `default` replaces only a missing key, as .get() does; without one .get() gives None, not undefined.
            return f"{code} | default({jinja_literal(default)})"
        if isinstance(func, ast.Name) and func.id in _FILTERS and len(node.args) == 1:
            return f"{self._atom(node.args[0])} | {_FILTERS[func.id]}"
        if (isinstance(func, ast.Attribute) and func.attr == "dumps" and isinstance(func.value, ast.Name)
                and func.value.id == "json" and len(node.args) == 1):
            return f"{self._atom(node.args[0])} | tojson"
        self._fail(node, self._called(node))

    def _name(self, node: ast.Name) -> str:
        if node.id == self.ctx:
            self._fail(node, "the context used as a value")
        if node.id == self.input:
            return "inputs" if self.keyed else self._read_input("input", node, required=True, whole=True)
        if node.id == self.item:
            return "item"
        if node.id in self.bound:
            self.refs.add(self.bound[node.id])
            return path_expr("steps", (self.bound[node.id],))
        self._fail(node, f"the name {node.id!r} (only the input, earlier results and the loop's item can be read)")

    def _read_input(self, key: str | int, node: ast.AST, *, required: bool, default: Any = None,
                    defaulted: bool = False, whole: bool = False) -> str:
        """Record an input the workflow reads, and give the expression reading it."""
        if not isinstance(key, str):
            self._fail(node, "an input read by an integer index")
        found = self.inputs.get(key)
        if found is None:
            schema = dict(self.annotation.get("" if whole else key, {}))
            found = self.inputs[key] = _Input(schema, False, self._line(node))
        found.required = found.required or required
        if defaulted:
            found.schema.setdefault("default", default)
            if "type" not in found.schema and default is not None:
                found.schema.update(json_type(default))  # the default tells the type when nothing else does
        return path_expr("inputs", (key,))

    # -- helpers

    def _annotation(self) -> dict[str, dict[str, Any]]:
        """Schemas the input's annotation gives: per key for a TypedDict or a pydantic model, or for the whole
        input (key "") for a plain type."""
        try:
            hints = typing.get_type_hints(self.fn)
        except Exception:  # an annotation that cannot be resolved here tells nothing: inputs stay untyped
            return {}
        ann = hints.get(self.input or "")
        if ann is None:
            return {}
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            schema = ann.model_json_schema()
            self.model_required = set(schema.get("required", []))
            props = schema.get("properties", {})
            return {k: v for k, v in props.items() if "$ref" not in str(v)}  # a $ref would dangle here
        if typing.is_typeddict(ann):
            return {k: _schema_of(t) for k, t in typing.get_type_hints(ann).items()}
        return {"": _schema_of(ann)}

    def _is_input(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id == self.input

    def _ctx_call(self, node: ast.expr, where: ast.AST) -> tuple[ast.Call, str]:
        """The call and its method, if `node` is `ctx.call_tool(...)`, `ctx.escalate(...)` or `ctx.gather(...)`."""
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == self.ctx):
            if node.func.attr not in ("call_tool", "escalate", "gather"):
                self._fail(node, f"ctx.{node.func.attr}" + (" (a Python step cannot be a pipeline step)"
                                                            if node.func.attr == "run" else ""))
            return node, node.func.attr
        self._fail(where, f"awaiting {self._called(node) if isinstance(node, ast.Call) else 'something'} other "
                          "than ctx.call_tool, ctx.gather or ctx.escalate")

    def _called(self, node: ast.Call) -> str:
        return f"a call of {ast.unparse(node.func)}"

    def _id(self, base: str) -> str:
        return unique_id(safe_id(base, "step"), self.used)

    def _group(self) -> int:
        self.groups += 1
        return self.groups

    def _line(self, node: ast.AST) -> int:
        return self.first + getattr(node, "lineno", 1) - 1

    def _fail(self, node: ast.AST, construct: str) -> NoReturn:
        line = self._line(node)
        raise InvalidInput(f"line {line}: cannot compile {construct}; the supported subset is {SUBSET}",
                           data={"file": inspect.getsourcefile(self.fn), "line": line})


def _negated(node: ast.expr) -> ast.expr:
    """`-1` is an operation in the AST; as a literal it is the constant -1."""
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float) and not isinstance(node.operand.value, bool)):
        return ast.copy_location(ast.Constant(-node.operand.value), node)
    return node


def _schema_of(ann: Any) -> dict[str, Any]:
    """The JSON Schema type of a plain annotation (`{}` when it says nothing simple)."""
    origin = typing.get_origin(ann) or ann
    samples: dict[Any, Any] = {str: "", int: 0, float: 0.0, bool: False, list: [], dict: {}}
    return json_type(samples[origin]) if origin in samples else {}


"""Compile a run's journal into a draft pipeline, deterministically: no LLM, no database (design.md §7).

The journal gives the tool calls, their arguments and results. A value that came from the run's input
(or from the request text) becomes an input; a value found in an earlier result becomes a wire
(`{{ steps.rates.data.base }}`); the rest stay constants. Three or more consecutive calls of one tool
over the items of a list become one `for_each` step, escalations become human steps, and read-only
calls nothing used are dropped. docs/pipelines.md states every rule and its corner cases.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from longtail_mcp.errors import InvalidInput
from longtail_mcp.pipelines.draft import Input, Node
from longtail_mcp.pipelines.facts import ToolLookup
from longtail_mcp.pipelines.journal import Call, Wait, apply_hints, read_events
from longtail_mcp.pipelines.model import Human, Pipeline, Step
from longtail_mcp.pipelines.ordering import Ordered, effect_needs
from longtail_mcp.pipelines.provenance import (
    Ref,
    Same,
    Text,
    align,
    canon,
    leaves,
    mentioned,
    refs_in,
    walk,
    weak,
    wireable,
)
from longtail_mcp.pipelines.spelling import Renderer, describe, json_type, prompt_template, safe_id, unique_id

LOOP_MIN = 3  # fewer consecutive calls stay separate steps: two calls are not yet a pattern
EMBEDDED_MIN = 16  # shorter JSON quoted in a text is too likely a coincidence to wire


@dataclass(frozen=True)
class ToolFacts:
    """What the compiler knows of a tool: whether it only reads, its input schema, and its compile hints
    (the tool's own `ToolSpec.compile_hints` merged with its registered server's `compile_hints[tool]`)."""

    read_only: bool
    input_schema: dict[str, Any] = field(default_factory=dict)
    hints: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Compiled:
    """A draft pipeline, and what the compiler decided and why (one line each)."""

    pipeline: Pipeline
    notes: list[str]


def compile_run(export: Mapping[str, Any], *, tools: ToolLookup, name: str | None = None,
                description: str | None = None, request: str | None = None,
                escalations: Mapping[str, Mapping[str, Any]] | None = None) -> Compiled:
    """Compile a run's exported journal (`RunExport.to_json()`) into a draft pipeline.

    `request` is the text the run answered (values found in it become inputs, and it is recorded as the
    prompt template); `escalations` maps an escalation id to its row's `message`, `data` and
    `form_schema`, from which human steps are rebuilt. The same arguments always give the same pipeline.

    Raises:
        InvalidInput: the journal holds no completed tool call or human step to compile.
    """
    return _RunCompiler(export, tools, escalations or {}, request).compile(name, description)


# -- the compiler ---------------------------------------------------------------------------------------------


class _RunCompiler:
    """One compilation: reads the journal, decides, and keeps its notes."""

    def __init__(self, export: Mapping[str, Any], tools: ToolLookup,
                 escalations: Mapping[str, Mapping[str, Any]], request: str | None) -> None:
        self.run: Mapping[str, Any] = export.get("run") or {}
        self.entries = sorted((e for e in export.get("steps") or [] if isinstance(e, Mapping)),
                              key=lambda e: int(e.get("seq") or 0))
        self.tools = tools
        self.escalations = escalations
        self.request = request
        self.notes: list[str] = []
        self.inputs: dict[str, Input] = {}
        self.hinted: dict[tuple[int, str], str] = {}  # (seq, argument) -> input named by a compile hint
        self.nodes: list[Node] = []
        self.pattern: re.Pattern[str] | None = None
        self.by_text: dict[str, str] = {}  # an input's string value -> the input's name
        self.inside: dict[str, Ref] = {}  # a value inside an input (a field of an object input) -> its path

    def compile(self, name: str | None, description: str | None) -> Compiled:
        events = apply_hints(read_events(self.entries, self.escalations, self.notes), self.tools, self.notes)
        self._gather_inputs([e for e in events if isinstance(e, Call)])
        self._group(events)
        if not self.nodes:
            raise InvalidInput(f"run {self.run.get('id')!r} has no completed tool call or human step to compile")
        for idx, node in enumerate(self.nodes):
            self._compile_node(idx, node)
        output = self._value(self.run.get("result"), len(self.nodes), "result")
        protected = {int(r.key) for r in refs_in(output) if r.root == "steps"}
        if not any(True for _ in refs_in(output)):
            last = len(self.nodes) - 1
            output, protected = {"result": Ref("steps", last)}, {last}
            self.notes.append("output: nothing in the run's result came from an input or a step, so the output is "
                              "the last step's result")
        alive = self._prune(protected)
        return self._build(alive, output, name, description)

    # -- inputs

    def _add_input(self, name: str, value: Any, origin: str) -> Input:
        found, n = name, 1
        while found in self.inputs:
            n += 1
            found = f"{name}_{n}"
        self.inputs[found] = Input(found, value, origin)
        return self.inputs[found]

    def _find_input(self, value: Any, arg: str) -> Input | None:
        """The input holding exactly `value`: the one named like the argument first, else the first one;
        a weak value (true, 0, "") only matches an input of the argument's name."""
        key = canon(value)
        matches = [i for i in self.inputs.values() if canon(i.value) == key]
        named = [i for i in matches if i.name == arg]
        if weak(value):
            return named[0] if named else None
        found = named or matches
        return found[0] if found else None

    def _gather_inputs(self, calls: list[Call]) -> None:
        """Inputs, in this order: the run's input, arguments a compile hint names, values found in the request."""
        value = self.run.get("input")
        given = value if isinstance(value, dict) else ({} if value is None else {"input": value})
        for key, v in given.items():
            self._add_input(str(key), v, "from the run's input")
        for call in calls:
            hinted = [k for k in call.hint("inputs") if k in call.args]
            for key in hinted:
                found = self._find_input(call.args[key], key)
                if found is None:
                    found = self._add_input(safe_id(key, "value"), call.args[key],
                                            f"compile hint inputs of {call.tool} (seq {call.seq})")
                self.hinted[(call.seq, key)] = found.name
            if self.request:
                skip = set(hinted) | set(call.hint("constants"))
                for key, leaf in leaves({k: v for k, v in call.args.items() if k not in skip}, ""):
                    if self._find_input(leaf, key) is None and mentioned(self.request, leaf):
                        self._add_input(safe_id(key, "value"), leaf,
                                        f"from the request ({key} of {call.tool} at seq {call.seq})")
        for inp in self.inputs.values():
            for path, v in walk(inp.value):
                if path and wireable(v):
                    self.inside.setdefault(canon(v), Ref("inputs", inp.name, path))
        texts = [(i.value, i.name) for i in self.inputs.values() if isinstance(i.value, str) and len(i.value) >= 3]
        for text, input_name in texts:
            self.by_text.setdefault(text, input_name)
        if self.by_text:
            ordered = sorted(self.by_text, key=len, reverse=True)  # the longest first: "EURUSD" before "EUR"
            self.pattern = re.compile("|".join(re.escape(t) for t in ordered))

    # -- loops

    def _group(self, events: list[Call | Wait]) -> None:
        """Make the nodes: a run of ≥ 3 consecutive calls of one tool over a whole list is one loop."""
        i = 0
        while i < len(events):
            event = events[i]
            if isinstance(event, Wait):
                self.nodes.append(Node("human", wait=event))
                i += 1
                continue
            calls: list[Call] = []  # the consecutive calls of this tool from here
            for e in events[i:]:
                if not isinstance(e, Call) or e.tool != event.tool:
                    break
                calls.append(e)
            loop = self._loop(calls) if len(calls) >= LOOP_MIN else None
            if loop is None:
                self.nodes.append(Node("tool", calls=[event]))
                i += 1
                continue
            node, template = loop
            node.args = template
            self.nodes.append(node)
            self.notes.append(f"loop: {len(node.calls)} calls of {event.tool} ({node.seqs}) over the items of "
                              f"{'an input' if node.source and node.source.root == 'inputs' else 'an earlier result'}"
                              " become one for_each step")
            i += len(node.calls)

    def _lists(self) -> list[tuple[Ref, list[Any]]]:
        """Lists a loop may go over: inputs', then earlier steps' (the most recent first), the longest first."""
        found: list[tuple[Ref, list[Any]]] = []
        for inp in self.inputs.values():
            found += [(Ref("inputs", inp.name, p), v) for p, v in walk(inp.value)
                      if isinstance(v, list) and len(v) >= LOOP_MIN]
        for idx in reversed(range(len(self.nodes))):
            found += [(Ref("steps", idx, p), v) for p, v in walk(self.nodes[idx].output)
                      if isinstance(v, list) and len(v) >= LOOP_MIN]
        return sorted(found, key=lambda f: -len(f[1]))

    def _loop(self, calls: list[Call]) -> tuple[Node, dict[str, Any]] | None:
        """A loop over the first calls of `calls`, if their arguments differ only by the items of one list."""
        first = calls[0]
        fixed = set(first.hint("constants")) | set(first.hint("inputs"))
        for source, items in self._lists():
            if len(items) > len(calls):
                continue
            group = calls[:len(items)]
            if any(set(c.args) != set(first.args) for c in group):
                continue
            template: dict[str, Any] = {}
            for key in first.args:
                aligned = align([c.args[key] for c in group], items)
                if aligned is None or (key in fixed and not isinstance(aligned, Same)):
                    break
                template[key] = aligned
            else:
                if any(not isinstance(v, Same) for v in template.values()):
                    return Node("loop", calls=group, source=source), template
        return None

    # -- values

    def _compile_node(self, idx: int, node: Node) -> None:
        if node.kind == "human":
            assert node.wait is not None
            asked = self.escalations.get(node.wait.escalation_id or "", {})
            message = asked.get("message")
            if not isinstance(message, str) or not message:
                message = f"Your decision is needed ({node.wait.role})"
                self.notes.append(f"human step at seq {node.wait.seq}: its escalation's message is not known, so a "
                                  "generic one stands in")
            data = asked.get("data")
            data = data if isinstance(data, dict) else ({} if data is None else {"data": data})
            node.message = self._value(message, idx, "message")
            node.data = {k: self._value(v, idx, k) for k, v in data.items()}  # stays an object, as Human.data is
            schema = asked.get("form_schema")
            node.form_schema = dict(schema) if isinstance(schema, Mapping) else None
            return
        call = node.calls[0]
        template = node.args if node.kind == "loop" else {k: Same(v) for k, v in call.args.items()}
        constants = set(call.hint("constants"))
        args: dict[str, Any] = {}
        for key, value in template.items():
            if key in constants and isinstance(value, Same):
                args[key] = value.value
            elif (call.seq, key) in self.hinted and isinstance(value, Same):
                args[key] = Ref("inputs", self.hinted[(call.seq, key)])
            else:
                args[key] = self._fill(value, idx, key)
        node.args = args

    def _fill(self, value: Any, before: int, arg: str) -> Any:
        """A loop template compiled: its `Same` parts like any argument, its literal text searched for inputs."""
        if isinstance(value, Same):
            return self._value(value.value, before, arg)
        if isinstance(value, Text):
            parts: list[str | Ref] = []
            for part in value.parts:
                parts += [part] if isinstance(part, Ref) else list(self._input_text(part) or (part,))
            return Text(tuple(parts))
        if isinstance(value, dict):
            return {k: self._fill(v, before, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._fill(v, before, arg) for v in value]
        return value

    def _value(self, value: Any, before: int, arg: str) -> Any:
        """An argument compiled: an input, else a string template on inputs, else a value inside an input,
        else a wire to one of the steps before `before`, else (for objects and lists) its parts compiled,
        else the constant."""
        found = self._find_input(value, arg)
        if found is not None:
            return Ref("inputs", found.name)
        if isinstance(value, str):
            as_json = self._json_text(value, before, arg)
            if as_json is not None:
                return as_json
            embedded = self._embedded(value, before)
            if embedded is not None:
                return embedded
            parts = self._input_text(value)
            if parts is not None:
                return Text(parts)
        wire = self.inside.get(canon(value)) if wireable(value) else None
        wire = wire or self._wire(value, before)
        if wire is not None:
            return wire
        if isinstance(value, dict):
            return {k: self._value(v, before, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._value(v, before, arg) for v in value]
        return value

    def _json_text(self, value: str, before: int, arg: str) -> Ref | None:
        """The JSON text of an input or an earlier result (a file's content, say) is that value `| tojson` —
        found before any input's text inside it, which would otherwise make it a template of constants."""
        if value.lstrip()[:1] not in ("{", "["):
            return None
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        if not isinstance(parsed, dict | list) or not parsed:
            return None
        ref = self._find_input(parsed, arg)
        whole = Ref("inputs", ref.name) if ref is not None else self._wire(parsed, before)
        return Ref(whole.root, whole.key, whole.path, "tojson") if whole is not None else None

    def _embedded(self, text: str, before: int) -> Text | None:
        """Text quoting an earlier result's JSON (an agent's answer showing what a tool returned): that part
        becomes the result `| tojson`, the rest literal text and inputs — never a snapshot of old data."""
        for idx in reversed(range(before)):
            output = self.nodes[idx].output
            if not isinstance(output, dict | list) or not output:
                continue
            blob = json.dumps(output, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
            at = text.find(blob) if len(blob) >= EMBEDDED_MIN else -1
            if at < 0:
                continue
            parts: list[str | Ref] = []
            for piece, ref in ((text[:at], Ref("steps", idx, (), "tojson")), (text[at + len(blob):], None)):
                if piece:
                    parts += list(self._input_text(piece) or (piece,))
                if ref is not None:
                    parts.append(ref)
            return Text(tuple(parts))
        return None

    @staticmethod
    def _touches(node: Node) -> frozenset[str]:
        """The distinctive argument values a step was called with (strings of 3 or more characters)."""
        return frozenset(canon(v) for call in node.calls for _, v in leaves(call.args, "")
                         if isinstance(v, str) and len(v) >= 3)

    def _wire(self, value: Any, before: int) -> Ref | None:
        if not wireable(value):
            return None
        key = canon(value)
        for idx in reversed(range(before)):  # the most recent step first
            path = self.nodes[idx].find(key)
            if path is not None:
                return Ref("steps", idx, path)
        return None

    def _input_text(self, text: str) -> tuple[str | Ref, ...] | None:
        """`text` as literal parts and input expressions, if it contains an input's string (≥ 3 characters)."""
        if self.pattern is None:
            return None
        parts: list[str | Ref] = []
        pos = 0
        for m in self.pattern.finditer(text):
            if m.start() > pos:
                parts.append(text[pos:m.start()])
            parts.append(Ref("inputs", self.by_text[m.group()]))
            pos = m.end()
        if not parts:
            return None
        if pos < len(text):
            parts.append(text[pos:])
        return tuple(parts)

    # -- dead ends, ids, the pipeline

    def _prune(self, protected: set[int]) -> list[int]:
        """Drop read-only steps whose results nothing kept uses (the latest first, so chains of them go too)."""
        alive = list(range(len(self.nodes)))
        refs = {idx: self.nodes[idx].refs() for idx in alive}
        changed = True
        while changed:
            changed = False
            for idx in reversed(alive):
                node = self.nodes[idx]
                if node.read_only and idx not in protected and not any(idx in refs[j] for j in alive if j != idx):
                    alive.remove(idx)
                    changed = True
                    self.notes.append(f"dropped {node.tool} at {node.seqs}: read-only and nothing used its result")
        used = set[int]().union(*(refs[j] for j in alive)) | protected
        for idx in alive:
            node = self.nodes[idx]
            if node.kind != "human" and idx not in used:
                self.notes.append(f"kept {node.tool} at {node.seqs}: nothing used its result, but it has effects")
        return alive

    def _build(self, alive: list[int], output: Any, name: str | None, description: str | None) -> Compiled:
        used: set[str] = set()
        ids: dict[int, str] = {}
        for idx in alive:
            node = self.nodes[idx]
            tool = node.tool.partition("/")[2] or node.tool
            base = "review" if node.kind == "human" else ("each_" if node.kind == "loop" else "") + tool
            ids[idx] = unique_id(safe_id(base, "step"), used)
        needs = effect_needs([Ordered(ids[idx], self.nodes[idx].kind == "human" or not self.nodes[idx].read_only,
                                      frozenset(ids[r] for r in self.nodes[idx].refs()), idx,
                                      self._touches(self.nodes[idx])) for idx in alive])
        render = Renderer(ids)
        steps: list[Step] = []
        for idx in alive:
            node, sid = self.nodes[idx], ids[idx]
            if node.kind == "human":
                assert node.wait is not None
                message = render(node.message)
                steps.append(Step(id=sid, human=Human(role=node.wait.role or "reviewer", message=str(message),
                                                      data=render(node.data), form_schema=node.form_schema),
                                  needs=needs[sid]))
                self.notes.append(f"step {sid}: human step for {node.wait.role!r} at {node.seqs}"
                                  + describe({"message": node.message, **(node.data or {})}, render))
            else:
                for_each = "{{ " + render.expr(node.source) + " }}" if node.source is not None else None
                steps.append(Step(id=sid, tool=node.tool, args=render(node.args), for_each=for_each, needs=needs[sid]))
                self.notes.append(f"step {sid}: {node.tool} at {node.seqs}"
                                  + (f", for each item of {render.expr(node.source)}" if node.source else "")
                                  + describe(node.args, render))
            if needs[sid]:
                self.notes.append(f"step {sid} needs {', '.join(needs[sid])}: steps with effects keep their "
                                  "recorded order")
        refs = [*refs_in(output)]
        for idx in alive:
            node = self.nodes[idx]
            refs += [*refs_in(node.args), *refs_in(node.message), *refs_in(node.data)]
            refs += [node.source] if node.source is not None else []
        wanted = {str(r.key) for r in refs if r.root == "inputs"}
        inputs = [i for i in self.inputs.values() if i.name in wanted]
        for inp in self.inputs.values():
            self.notes.append(f"input {inp.name!r}: {inp.origin}" if inp.name in wanted else
                              f"left out input {inp.name!r} ({inp.origin}): nothing uses it")
        template = prompt_template(self.request, [(i.name, i.value) for i in inputs]) if self.request else None
        if self.request:
            self.notes.append(f"prompt template: {template}" if template else
                              "no prompt template: no input's value appears in the request")
        tools = [self.nodes[i].tool for i in alive if self.nodes[i].kind != "human"]
        sequence = " → ".join(self.nodes[i].label for i in alive)
        run_name = str(self.run.get("name") or "compiled")
        try:
            pipeline = Pipeline(
                name=safe_id(name or f"{run_name}_pipeline", "pipeline"),
                description=(description or (f"{template[:1].upper()}{template[1:]}. " if template else "")
                             + f"Compiled from run {self.run.get('id')}: {sequence}")[:4000],
                tags=list(dict.fromkeys(t.partition("/")[0] for t in tools))[:50],
                input_schema={"type": "object", "required": [i.name for i in inputs],
                              "properties": {i.name: {**json_type(i.value), "examples": [i.value]} for i in inputs}},
                steps=steps, output=render(output), prompt_template=template,
                examples=[{i.name: i.value for i in inputs}])
        except ValidationError as exc:
            raise InvalidInput(f"the compiled pipeline is not valid: {exc}") from None
        return Compiled(pipeline, self.notes)

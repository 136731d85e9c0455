"""Pipeline YAML: parse and validate (reporting every problem with its line and column), order, dump.

`parse` composes the YAML into plain JSON values that keep their positions (document.py), validates
those with the pydantic model (model.py) and then checks what the model cannot (checks.py): tools and
their arguments, expressions and what they reference, the dependency graph, JSON Schemas and the cron
schedule. The format is described in docs/pipelines.md.
"""

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import yaml

from longtail_mcp.errors import InvalidInput
from longtail_mcp.pipelines.checks import Checker, ToolLookup
from longtail_mcp.pipelines.document import TAG, Fatal, Problem, compose
from longtail_mcp.pipelines.expressions import references
from longtail_mcp.pipelines.model import Pipeline
from longtail_mcp.tools.catalog import ToolInfo

MAX_REPORTED = 50  # problems listed in the error's message (all are in `problems`)


class ToolTable:
    """A ToolLookup over a mapping; it also lists its names, so an unknown tool gets suggestions."""

    def __init__(self, tools: Mapping[str, ToolInfo]) -> None:
        self.tools = dict(tools)

    def __call__(self, name: str) -> ToolInfo | None:
        return self.tools.get(name)

    def names(self) -> list[str]:
        return sorted(self.tools)


class PipelineInvalid(InvalidInput):
    """The pipeline document is not valid; `problems` lists every problem found, in document order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"invalid pipeline: {count} problem{'s' if count != 1 else ''}"]
        lines += [str(p) for p in self.problems[:MAX_REPORTED]]
        if count > MAX_REPORTED:
            lines.append(f"... and {count - MAX_REPORTED} more")
        super().__init__("\n".join(lines), data={"problems": [asdict(p) for p in self.problems]})

    @classmethod
    def from_json(cls, error: dict[str, Any]) -> InvalidInput:
        data = error.get("data") or {}
        try:
            return cls([Problem(**p) for p in data.get("problems", [])])
        except TypeError:
            return InvalidInput(str(error.get("message", "")), data=data)


def parse(text: str, *, tools: ToolLookup) -> Pipeline:
    """The pipeline a YAML document defines, checked against the model, the tools and itself.

    Raises:
        PipelineInvalid: listing every problem found, each with its line and column.
    """
    try:
        doc, data = compose(text)
    except Fatal as exc:
        raise PipelineInvalid([exc.problem]) from None
    model = Checker(doc, tools).run(data)
    if doc.problems or model is None:
        unique = sorted(set(doc.problems), key=lambda p: (p.line, p.column, p.path, p.message))
        raise PipelineInvalid(unique or [Problem(1, 1, "invalid pipeline", "")])
    return model


# -- the DAG ------------------------------------------------------------------------------------------------

def dependencies(pipeline: Pipeline) -> dict[str, set[str]]:
    """Each step's id -> the ids of the steps it waits for: those its expressions read (`steps.X`) and
    its `needs`."""
    ids = {s.id for s in pipeline.steps}
    out: dict[str, set[str]] = {}
    for step in pipeline.steps:
        values: list[Any] = [step.args, step.when, step.for_each]
        if step.human is not None:
            values += [step.human.message, step.human.data]
        read = {chain[1] for chain in references(values) if chain[0] == "steps" and len(chain) > 1}
        out[step.id] = {d for d in (read | set(step.needs)) if d in ids and d != step.id}
    return out


def order(pipeline: Pipeline) -> list[str]:
    """A topological order of the steps; of the steps ready at once, the earliest in the file first.

    Raises:
        InvalidInput: the steps wait for each other in a cycle (parse reports it first).
    """
    needs = dependencies(pipeline)
    remaining = list(dict.fromkeys(s.id for s in pipeline.steps))
    done: set[str] = set()
    out: list[str] = []
    while remaining:
        ready = next((sid for sid in remaining if needs[sid] <= done), None)
        if ready is None:
            raise InvalidInput(f"dependency cycle among the steps {', '.join(remaining)}")
        remaining.remove(ready)
        done.add(ready)
        out.append(ready)
    return out


def is_read_only(pipeline: Pipeline, tools: ToolLookup) -> bool:
    """Whether every step is a call of a known read-only tool (a human step is not read-only)."""
    for step in pipeline.steps:
        info = tools(step.tool) if step.tool is not None else None
        if info is None or not info.read_only:
            return False
    return True


# -- dumping ------------------------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    """Multi-line text as `|` blocks, short lists of scalars in flow style."""


_FOLDED_BREAKS = ("\r", "\x85", "\u2028", "\u2029", "\ufeff")  # a block or plain scalar would not keep them


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = None
    if any(c in value for c in _FOLDED_BREAKS):
        style = '"'
    elif "\n" in value:
        style = "|"
    return dumper.represent_scalar(TAG + "str", value, style=style)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    flow = bool(value) and all(isinstance(v, (int, float, bool)) or (isinstance(v, str) and "\n" not in v)
                               for v in value) and sum(len(str(v)) + 2 for v in value) <= 60
    return dumper.represent_sequence(TAG + "seq", value, flow_style=flow)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)


def to_yaml(pipeline: Pipeline) -> str:
    """The pipeline as readable YAML (defaults left out, keys in the model's order); `parse` reads it back."""
    data = pipeline.model_dump(mode="json", exclude_defaults=True)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)

"""The draft a run compiles to, before it is written out: its steps (`Node`) and its inputs (`Input`)."""

from dataclasses import dataclass, field
from typing import Any, Literal

from longtail_mcp.pipelines.journal import Call, Wait
from longtail_mcp.pipelines.provenance import Path, Ref, canon, refs_in, walk


@dataclass
class Input:
    """An input of the draft, with the value the run had and where it came from (for the notes)."""

    name: str
    value: Any
    origin: str


@dataclass
class Node:
    """A step of the draft: one call, a loop of calls, or a human wait."""

    kind: Literal["tool", "loop", "human"]
    calls: list[Call] = field(default_factory=list)
    wait: Wait | None = None
    source: Ref | None = None  # a loop's list
    args: dict[str, Any] = field(default_factory=dict)  # compiled
    message: Any = None  # a human step's, compiled
    data: Any = None
    form_schema: dict[str, Any] | None = None
    index: dict[str, Path] | None = None

    @property
    def seqs(self) -> str:
        seqs = [c.seq for c in self.calls] or [self.wait.seq if self.wait else 0]
        return f"seq {seqs[0]}" if len(seqs) == 1 else f"seq {seqs[0]}-{seqs[-1]}"

    @property
    def label(self) -> str:
        if self.kind == "human":
            return f"human ({self.wait.role if self.wait else ''})"
        return self.tool + (" (for each)" if self.kind == "loop" else "")

    @property
    def tool(self) -> str:
        return self.calls[0].tool if self.calls else ""

    @property
    def output(self) -> Any:
        if self.kind == "human":
            return self.wait.output if self.wait else None
        return self.calls[0].output if self.kind == "tool" else [c.output for c in self.calls]

    @property
    def read_only(self) -> bool:
        facts = self.calls[0].facts if self.calls else None
        return self.kind != "human" and facts is not None and facts.read_only

    def find(self, key: str) -> Path | None:
        """The shortest path at which this step's result holds the value whose `canon` is `key`."""
        if self.index is None:
            self.index = {}
            for path, v in walk(self.output):
                self.index.setdefault(canon(v), path)
        return self.index.get(key)

    def refs(self) -> set[int]:
        found = [*refs_in(self.args), *refs_in(self.message), *refs_in(self.data)]
        if self.source is not None:
            found.append(self.source)
        return {int(r.key) for r in found if r.root == "steps"}

"""A pipeline's steps as a layered graph, laid out on the server for the web view: each step sits in the column
after the last step it waits for, and the page draws it as inline SVG (no script, no library)."""

from dataclasses import dataclass

from longtail_mcp.pipelines.loader import dependencies, order
from longtail_mcp.pipelines.model import Pipeline, Step

NODE_WIDTH = 200
NODE_HEIGHT = 48
COLUMN_GAP = 56
ROW_GAP = 16
PAD = 8
LABEL_CHARS = 26  # what fits in a node at the stylesheet's font size; the whole text is the node's <title>


@dataclass(frozen=True)
class Node:
    """One step, where it is drawn, and what the page says about it."""

    id: str
    does: str  # `server/tool`, or `ask <role>` for a human step
    human: bool
    needs: list[str]
    when: str | None
    for_each: str | None
    x: int
    y: int

    @property
    def short_id(self) -> str:
        return _short(self.id)

    @property
    def short_does(self) -> str:
        return _short(self.does)


@dataclass(frozen=True)
class Edge:
    """`target` waits for `source`: a curve from the right of one box to the left of the other."""

    source: str
    target: str
    path: str


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]  # in the order the runner starts them
    edges: list[Edge]
    width: int
    height: int
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…"


def _does(step: Step) -> str:
    if step.human is not None:
        return f"ask {step.human.role}"
    return step.tool or ""


def layout(pipeline: Pipeline) -> Graph:
    """Columns by depth (a step's column is one past the deepest step it waits for), rows in start order."""
    needs = dependencies(pipeline)
    steps = {s.id: s for s in pipeline.steps}
    column: dict[str, int] = {}
    rows: list[list[str]] = []
    for sid in order(pipeline):
        column[sid] = 1 + max((column[d] for d in needs[sid]), default=-1)
        if column[sid] == len(rows):
            rows.append([])
        rows[column[sid]].append(sid)
    place: dict[str, tuple[int, int]] = {}
    for c, ids in enumerate(rows):
        for r, sid in enumerate(ids):
            place[sid] = (PAD + c * (NODE_WIDTH + COLUMN_GAP), PAD + r * (NODE_HEIGHT + ROW_GAP))
    nodes = [Node(id=sid, does=_does(steps[sid]), human=steps[sid].human is not None,
                  needs=sorted(needs[sid], key=list(column).index), when=steps[sid].when,
                  for_each=steps[sid].for_each, x=place[sid][0], y=place[sid][1]) for sid in column]
    edges = []
    for node in nodes:
        for dep in node.needs:
            (x1, y1), (x2, y2) = place[dep], place[node.id]
            x1, y1, y2 = x1 + NODE_WIDTH, y1 + NODE_HEIGHT // 2, y2 + NODE_HEIGHT // 2
            middle = (x1 + x2) // 2
            edges.append(Edge(dep, node.id, f"M {x1} {y1} C {middle} {y1}, {middle} {y2}, {x2 - 2} {y2}"))
    tallest = max(len(ids) for ids in rows)
    return Graph(nodes, edges,
                 width=2 * PAD + len(rows) * NODE_WIDTH + (len(rows) - 1) * COLUMN_GAP,
                 height=2 * PAD + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP)

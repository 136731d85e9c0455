"""The name chains a template's syntax tree reads: `steps.rates.data` as ("steps", "rates", "data").

Names the template binds itself (loop variables, `set`, `with`) are not read from outside, so not counted.
"""

from jinja2 import nodes


def _targets(node: nodes.Node) -> set[str]:
    return {n.name for n in node.find_all(nodes.Name)} | ({node.name} if isinstance(node, nodes.Name) else set())


def _chain(node: nodes.Node) -> tuple[tuple[str, ...], list[nodes.Node]] | None:
    """`a.b['c'].d` as ("a", "b", "c", "d"); a computed subscript or an index ends the chain there."""
    parts: list[str] = []
    dynamic: list[nodes.Node] = []
    current = node
    while True:
        if isinstance(current, nodes.Getattr):
            parts.append(current.attr)
            current = current.node
        elif isinstance(current, nodes.Getitem):
            if isinstance(current.arg, nodes.Const) and isinstance(current.arg.value, str):
                parts.append(current.arg.value)
            else:
                if not isinstance(current.arg, nodes.Const):
                    dynamic.append(current.arg)
                parts.clear()
            current = current.node
        elif isinstance(current, nodes.Name) and current.ctx == "load":
            return (current.name, *reversed(parts)), dynamic
        else:
            return None


def _walk(node: nodes.Node, bound: set[str], out: set[tuple[str, ...]]) -> None:
    if isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Name)):
        found = _chain(node)
        if found is not None:
            chain, dynamic = found
            if chain[0] not in bound:
                out.add(chain)
            for child in dynamic:
                _walk(child, bound, out)
            return
    if isinstance(node, nodes.For):
        _walk(node.iter, bound, out)
        inner = bound | _targets(node.target) | {"loop"}
        if node.test is not None:
            _walk(node.test, inner, out)
        for child in node.body:
            _walk(child, inner, out)
        outer = set(bound)
        for child in node.else_:
            _walk(child, outer, out)
        return
    if isinstance(node, nodes.With):
        for value in node.values:
            _walk(value, bound, out)
        inner = set(bound)
        for target in node.targets:
            inner |= _targets(target)
        for child in node.body:
            _walk(child, inner, out)
        return
    if isinstance(node, nodes.Assign):
        _walk(node.node, bound, out)
        bound |= _targets(node.target)  # from here on in this scope (and after an if: Jinja leaks it)
        return
    for child in node.iter_child_nodes():
        _walk(child, bound, out)


def find_chains(ast: nodes.Node) -> set[tuple[str, ...]]:
    """Every name chain the tree reads; a computed subscript or an index ends a chain there."""
    out: set[tuple[str, ...]] = set()
    _walk(ast, set(), out)
    return out

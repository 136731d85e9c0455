"""The `needs` a compiled draft gets so that its steps with effects keep their recorded order."""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Ordered:
    """A step as effect ordering sees it. Steps of one `group` (a `gather`) are not ordered among themselves."""

    id: str
    effects: bool
    refs: frozenset[str]
    group: int
    touches: frozenset[str] = frozenset()  # the argument values it was called with (what it reads or writes)


def effect_needs(steps: Sequence[Ordered]) -> dict[str, list[str]]:
    """`needs` that keep steps with effects in their recorded order: each one waits for the effect steps
    before it, unless it already depends on them through its expressions. A read-only step waits only
    for earlier effect steps called with an argument value it was called with too (a `file_info` of the
    path a `write_file` wrote must not run before the write); other read-only steps start as soon as
    their inputs are ready."""
    closure: dict[str, set[str]] = {}
    needs: dict[str, list[str]] = {}
    frontier: list[str] = []  # the effect steps the next group's effect steps must follow
    group_effects: list[str] = []
    effects: list[str] = []  # every effect step so far, in order
    touched: dict[str, frozenset[str]] = {}
    current: int | None = None
    for step in steps:
        if step.group != current:
            if group_effects:
                frontier = group_effects
            current, group_effects = step.group, []
        deps: set[str] = set()
        for ref in step.refs:
            deps |= {ref} | closure.get(ref, set())
        if step.effects:
            wanted = [a for a in frontier if a not in deps]
        else:  # the latest effect step that touched the same thing first: the earlier ones come with it
            wanted = []
            for a in reversed(effects):
                if touched[a] & step.touches and a not in deps:
                    wanted.append(a)
                    deps |= {a} | closure.get(a, set())
        for a in wanted:
            deps |= {a} | closure.get(a, set())
        closure[step.id], needs[step.id] = deps, wanted
        if step.effects:
            group_effects.append(step.id)
            effects.append(step.id)
            touched[step.id] = step.touches
    return needs

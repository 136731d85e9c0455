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


def effect_needs(steps: Sequence[Ordered]) -> dict[str, list[str]]:
    """`needs` that keep steps with effects in their recorded order: each one waits for the effect steps
    before it, unless it already depends on them through its expressions. Read-only steps get none."""
    closure: dict[str, set[str]] = {}
    needs: dict[str, list[str]] = {}
    frontier: list[str] = []  # the effect steps the next group's effect steps must follow
    group_effects: list[str] = []
    current: int | None = None
    for step in steps:
        if step.group != current:
            if group_effects:
                frontier = group_effects
            current, group_effects = step.group, []
        deps: set[str] = set()
        for ref in step.refs:
            deps |= {ref} | closure.get(ref, set())
        wanted = [a for a in frontier if a not in deps] if step.effects else []
        for a in wanted:
            deps |= {a} | closure.get(a, set())
        closure[step.id], needs[step.id] = deps, wanted
        if step.effects:
            group_effects.append(step.id)
    return needs

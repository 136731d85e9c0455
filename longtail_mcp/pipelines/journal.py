"""A run's exported journal as the compiler reads it: the completed calls and resolved waits that become steps."""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from longtail_mcp.pipelines.facts import KnownTool, ToolLookup
from longtail_mcp.pipelines.provenance import canon
from longtail_mcp.tools.approvals import CONTROL_FIELDS

HINTS = ("inputs", "constants", "ignore_args", "drop")


@dataclass
class Call:
    """A completed tool call of the journal."""

    seq: int
    tool: str
    args: dict[str, Any]
    output: Any
    facts: KnownTool | None = None

    def hint(self, key: str) -> list[str]:
        found = self.facts.hints.get(key) if self.facts is not None else None
        return [str(v) for v in found] if isinstance(found, list) else []


@dataclass
class Wait:
    """A resolved escalation of the journal (not an approval)."""

    seq: int
    role: str
    escalation_id: str | None
    output: Any


def _call_args(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A tool step's arguments: its input is `{"args": [<the arguments>], "kwargs": {}}`."""
    raw = entry.get("input")
    args = raw.get("args") if isinstance(raw, dict) else None
    return dict(args[0]) if isinstance(args, list) and args and isinstance(args[0], dict) else {}


def _plain(args: Mapping[str, Any]) -> str:
    """The call's identity without the approval controls (approved calls repeat a refused one with an id)."""
    return canon({k: v for k, v in args.items() if k not in CONTROL_FIELDS})


def _error_text(entry: Mapping[str, Any]) -> str:
    error = entry.get("error") or {}
    code, message = error.get("code"), str(error.get("message") or "").splitlines()
    text = f"{code}: {message[0]}" if message else str(code or "no error recorded")
    return text if len(text) <= 200 else text[:197] + "..."


def read_events(entries: Sequence[Mapping[str, Any]], escalations: Mapping[str, Mapping[str, Any]],
                notes: list[str]) -> list[Call | Wait]:
    """The entries (in `seq` order) that become steps: completed tool calls and resolved escalations that
    are not approvals. Each entry left out gets a line in `notes` saying why."""
    done = [(i, e) for i, e in enumerate(entries)
            if e.get("kind") == "tool" and e.get("status") == "completed"]
    approvals = {str(_call_args(e).get("approval_id")) for _, e in done if _call_args(e).get("approval_id")}
    events: list[Call | Wait] = []
    skipped: Counter[str] = Counter()
    for i, entry in enumerate(entries):
        kind, status, seq, name = entry.get("kind"), entry.get("status"), int(entry.get("seq") or 0), \
            str(entry.get("name") or "")
        if kind == "tool":
            args = _call_args(entry)
            if status == "completed":
                events.append(Call(seq, name, args, entry.get("output")))
                continue
            later = next((int(e.get("seq") or 0) for j, e in done
                          if j > i and e.get("name") == name and _plain(_call_args(e)) == _plain(args)), None)
            denied = (entry.get("error") or {}).get("code") == "denied"
            if later is not None and denied:
                notes.append(f"approval flow: {name} refused at seq {seq} and approved at seq {later} is one "
                             "step, without approval_id (the pipeline asks again when it runs)")
            elif later is not None:
                notes.append(f"dropped {name} at seq {seq}: {status}, and the same call completed at "
                             f"seq {later}")
            elif status == "failed":
                notes.append(f"dropped {name} at seq {seq}: it failed for good ({_error_text(entry)})")
            else:
                notes.append(f"dropped {name} at seq {seq}: it had not finished ({status})")
        elif kind == "escalation":
            key = (entry.get("input") or {}).get("escalation_id") if isinstance(entry.get("input"), dict) else None
            before = entries[i - 1] if i else {}
            asked = escalations.get(str(key), {}) if key is not None else {}
            if (str(key) in approvals or asked.get("type") == "approval"
                    or (before.get("kind") == "tool" and (before.get("error") or {}).get("code") == "denied")):
                notes.append(f"seq {seq}: the approval asked of {name!r} is not a step of its own (the "
                             "pipeline asks again if its call is refused)")
            elif status != "completed":
                notes.append(f"dropped the escalation to {name!r} at seq {seq}: it was not resolved "
                             f"({status})")
            else:
                events.append(Wait(seq, name, None if key is None else str(key), entry.get("output")))
        else:
            skipped[str(kind)] += 1
    if skipped:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(skipped.items()))
        count = sum(skipped.values())
        notes.append(f"ignored {count} journal {'entry' if count == 1 else 'entries'} of other kinds "
                     f"({kinds}): a pipeline holds tool calls and human steps only")
    return events


def _defaults(facts: KnownTool | None) -> dict[str, str]:
    """The canonical JSON of each argument's schema default: an argument equal to it says nothing."""
    properties = (facts.input_schema or {}).get("properties") if facts is not None else None
    if not isinstance(properties, dict):
        return {}
    return {k: canon(p["default"]) for k, p in properties.items() if isinstance(p, dict) and "default" in p}


def apply_hints(events: list[Call | Wait], tools: ToolLookup, notes: list[str]) -> list[Call | Wait]:
    """Look each tool up; honour `drop` and `ignore_args`, and leave out the approval controls and the
    arguments equal to their defaults (a checked call records every argument, defaults included)."""
    seen: set[str] = set()
    kept: list[Call | Wait] = []
    left_default: dict[tuple[str, tuple[str, ...]], list[int]] = {}  # said once per tool and arguments
    for event in events:
        if isinstance(event, Wait):
            kept.append(event)
            continue
        event.facts = tools(event.tool)
        if event.tool not in seen:  # say once per tool what is odd about it
            seen.add(event.tool)
            odd = sorted(set(event.facts.hints) - set(HINTS)) if event.facts is not None else []
            if event.facts is None:
                notes.append(f"unknown tool {event.tool}: treated as having effects, with no compile hints")
            elif odd:
                notes.append(f"{event.tool}: ignored compile hints the compiler does not know "
                             f"({', '.join(odd)})")
        if event.facts is not None and event.facts.hints.get("drop") is True:
            notes.append(f"dropped {event.tool} at seq {event.seq}: compile hint drop")
            continue
        ignored = [k for k in event.args if k in event.hint("ignore_args")]
        controls = [k for k in event.args if k in CONTROL_FIELDS and k not in ignored]
        defaults = _defaults(event.facts)
        defaulted = [k for k, v in event.args.items() if k not in ignored and k not in controls
                     and k not in event.hint("inputs") and k in defaults and canon(v) == defaults[k]]
        if ignored:
            notes.append(f"{event.tool} at seq {event.seq}: left out {', '.join(ignored)} (compile hint "
                         "ignore_args)")
        if controls:
            notes.append(f"{event.tool} at seq {event.seq}: left out {', '.join(controls)} (an approval is "
                         "for one call; the pipeline asks for its own)")
        if defaulted:
            left_default.setdefault((event.tool, tuple(defaulted)), []).append(event.seq)
        event.args = {k: v for k, v in event.args.items() if k not in ignored and k not in controls
                      and k not in defaulted}
        kept.append(event)
    for (tool, names), seqs in left_default.items():
        where = f"seq {seqs[0]}" if len(seqs) == 1 else f"seq {', '.join(map(str, seqs))}"
        notes.append(f"{tool} at {where}: left out {', '.join(names)} (equal to the tool's defaults)")
    return kept

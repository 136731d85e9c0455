"""The scripted model's script: rules whose conditions pick the reply to a Messages API request, and rendering it.

A script (YAML, docs/agents.md#scripts) lists `turns`; the first one whose `when` conditions all hold answers
the request. Strings in a reply are `string.Template`s over the regex conditions' named groups, `last_result`
and `request_text`; a tool input value `{json: "..."}` becomes the JSON it holds once substituted.
"""

import hashlib
import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn", "refusal"]
REGEX_CONDITIONS = ("request", "system", "result", "text")


class ScriptInvalid(ValueError):
    """The script breaks a rule of the format; `problems` name each place (rule index and name, field)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid script:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class ReplyError(ValueError):
    """The script cannot answer this request (no rule matches, an unknown `${name}`, bad JSON); a 400 to the client."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_templates(value: Any) -> None:
    if isinstance(value, str) and not string.Template(value).is_valid():
        raise ValueError(f"{value!r} is not a valid template (write $$ for a literal $)")
    if isinstance(value, dict):
        for item in value.values():
            _check_templates(item)
    if isinstance(value, list):
        for item in value:
            _check_templates(item)


class When(_Strict):
    """Conditions on the request; every one given must hold. Regexes are searched (`re.search`)."""

    request: re.Pattern[str] | None = Field(None, description="searched in the first user message's text")
    system: re.Pattern[str] | None = Field(None, description="searched in the system prompt")
    last_tool: str | None = Field(None, description="the tool the latest tool_result answers; 'none': no tool_result")
    result: re.Pattern[str] | None = Field(None, description="searched in the latest tool_result's text")
    error: bool | None = Field(None, description="the latest tool_result is (true) or is not (false) an error")
    tools: list[str] | None = Field(None, description="all these tools are offered")
    round: int | None = Field(None, ge=0, description="assistant messages already in the conversation")
    text: re.Pattern[str] | None = Field(None, description="searched in the last user message's text")

    @field_validator(*REGEX_CONDITIONS, mode="before")
    @classmethod
    def _compile(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value


class Block(_Strict):
    """One content block of a reply: `text`, or `tool` with its `input`."""

    text: str | None = None
    tool: str | None = Field(None, min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> "Block":
        if (self.text is None) == (self.tool is None):
            raise ValueError("a reply block has exactly one of `text` or `tool`")
        if self.text is not None and self.input:
            raise ValueError("`input` belongs to a `tool` block")
        _check_templates(self.text)
        _check_templates(self.input)
        return self


class Reply(_Strict):
    """What the model answers: content blocks in order, after `delay` seconds (else the server's default)."""

    name: str | None = None
    delay: float | None = Field(None, ge=0)
    reply: list[Block] = Field(min_length=1)
    stop_reason: StopReason | None = None


class Turn(Reply):
    """A rule: the reply, given when its conditions hold."""

    when: When = Field(default_factory=When)


class Script(_Strict):
    """A scripted model: the model name it reports, its default delay, its rules and the fallback reply."""

    model: str = "scripted"
    delay: float = Field(0, ge=0)
    turns: list[Turn] = Field(default_factory=list)
    otherwise: Reply | None = None


def _where(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    if len(loc) >= 2 and loc[0] == "turns" and isinstance(loc[1], int):
        turns = data.get("turns")
        rule = turns[loc[1]] if isinstance(turns, list) and loc[1] < len(turns) else None
        name = rule.get("name") if isinstance(rule, dict) else None
        head = f"rule {loc[1]}" + (f" ({name!r})" if name else "")
        return f"{head}, field {'.'.join(map(str, loc[2:])) or '(the rule)'}"
    return "field " + ".".join(map(str, loc)) if loc else "the script"


def load_script(source: Script | str | Path | dict[str, Any]) -> Script:
    """A validated script from a model, a mapping, YAML text or a YAML file (a `Path`, or a one-line
    str naming an existing file or ending in .yaml/.yml/.json). Raises ScriptInvalid naming each problem."""
    if isinstance(source, Script):
        return source
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and (
            source.endswith((".yaml", ".yml", ".json")) or Path(source).is_file())):
        source = Path(source).read_text(encoding="utf-8")
    if isinstance(source, str):
        try:
            source = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise ScriptInvalid([f"not YAML: {exc}"]) from None
    if not isinstance(source, dict):
        raise ScriptInvalid(["the script is a mapping with `turns` (and optionally model, delay, otherwise)"])
    try:
        return Script.model_validate(source)
    except ValidationError as exc:
        raise ScriptInvalid([f"{_where(e['loc'], source)}: {e['msg']}" for e in exc.errors()]) from None


def _text(content: Any, *, results: bool = True) -> str:
    """The text of message content: a string, or text blocks (and tool_result contents when `results`)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif results and isinstance(block, dict) and block.get("type") == "tool_result":
            parts.append(_result_text(block))
    return "\n".join(parts)


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content", "")
    if isinstance(content, str):
        return content
    return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")


@dataclass(frozen=True)
class Conversation:
    """What the conditions look at in a request body."""

    request_text: str
    system: str
    last_text: str
    last_tool: str | None  # None: the last user message carries no tool_result; "": its tool_use is unknown
    last_result: str
    result_error: bool
    tools: frozenset[str]
    round: int

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Conversation":
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        users = [m for m in messages if m.get("role") == "user"]
        assistants = [m for m in messages if m.get("role") == "assistant"]
        last = users[-1].get("content") if users else None
        results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"] \
            if isinstance(last, list) else []
        result = results[-1] if results else None
        names = {b.get("id"): str(b.get("name", "")) for m in assistants if isinstance(m.get("content"), list)
                 for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_use"}
        return cls(
            request_text=_text(users[0].get("content"), results=False) if users else "",
            system=_text(body.get("system", "")),
            last_text=_text(last),
            last_tool=None if result is None else names.get(result.get("tool_use_id"), ""),
            last_result="" if result is None else _result_text(result),
            result_error=bool(result and result.get("is_error")),
            tools=frozenset(str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)),
            round=len(assistants),
        )

    def regex_subject(self, condition: str) -> str | None:
        """The text a regex condition searches (None: there is nothing to search, the condition fails)."""
        if condition == "result":
            return None if self.last_tool is None else self.last_result
        return {"request": self.request_text, "system": self.system, "text": self.last_text}[condition]


def match(when: When, talk: Conversation) -> dict[str, str] | None:
    """The named groups the conditions captured if they all hold, else None."""
    if when.last_tool is not None and ("none" if talk.last_tool is None else talk.last_tool) != when.last_tool:
        return None
    if when.error is not None and (talk.last_tool is None or talk.result_error != when.error):
        return None
    if when.tools is not None and not set(when.tools) <= talk.tools:
        return None
    if when.round is not None and when.round != talk.round:
        return None
    groups: dict[str, str] = {}
    for condition in REGEX_CONDITIONS:
        pattern: re.Pattern[str] | None = getattr(when, condition)
        if pattern is None:
            continue
        subject = talk.regex_subject(condition)
        found = None if subject is None else pattern.search(subject)
        if found is None:
            return None
        groups.update(found.groupdict(default=""))
    return groups


def choose(script: Script, talk: Conversation) -> tuple[int | None, Reply, dict[str, str]]:
    """The first rule that holds (its index; None for `otherwise`), with its captured groups.
    Raises ReplyError when none does and there is no `otherwise`."""
    for index, turn in enumerate(script.turns):
        groups = match(turn.when, talk)
        if groups is not None:
            return index, turn, groups
    if script.otherwise is not None:
        return None, script.otherwise, {}
    first = talk.request_text if len(talk.request_text) <= 200 else talk.request_text[:200] + "…"
    raise ReplyError(f"no turn of the script matches this conversation (first user message: '{first}'; "
                     f"last tool: {talk.last_tool if talk.last_tool is not None else 'none'})")


def label(index: int | None, reply: Reply) -> str | int:
    """How a rule is named in ids and logs: its name, else its index (or 'otherwise')."""
    return reply.name or (index if index is not None else "otherwise")


def _fill(value: Any, names: dict[str, str], where: str, *, top: bool = False) -> Any:
    if isinstance(value, str):
        try:
            return string.Template(value).substitute(names)
        except KeyError as exc:
            known = ", ".join(sorted(names))
            raise ReplyError(f"{where} uses ${{{exc.args[0]}}}, which is not defined here (defined: {known})") from None
    if isinstance(value, list):
        return [_fill(item, names, where) for item in value]
    if isinstance(value, dict):
        if not top and list(value) == ["json"] and isinstance(value["json"], str):
            text = _fill(value["json"], names, where)
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ReplyError(f"{where}: {{json: ...}} is not JSON once filled in ({exc}): {text[:200]!r}") from None
        return {key: _fill(item, names, where) for key, item in value.items()}
    return value


def _tool_id(index: int | None, round_: int, block: int) -> str:
    seed = f"{'otherwise' if index is None else index}:{round_}:{block}"
    return "toolu_" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def render(script: Script, body: dict[str, Any]) -> tuple[str | int, Reply, dict[str, Any]]:
    """The rule that answers `body` (its label), the rule, and the Messages API response it gives.
    Raises ReplyError when the script cannot answer."""
    talk = Conversation.of(body)
    index, reply, groups = choose(script, talk)
    name = label(index, reply)
    names = {**groups, "last_result": talk.last_result, "request_text": talk.request_text}
    content: list[dict[str, Any]] = []
    for number, block in enumerate(reply.reply):
        where = f"the reply of turn {name!r}, block {number},"
        if block.tool is None:
            content.append({"type": "text", "text": _fill(block.text, names, where)})
        else:
            content.append({"type": "tool_use", "id": _tool_id(index, talk.round, number), "name": block.tool,
                            "input": _fill(block.input, names, where, top=True)})
    stop = reply.stop_reason or ("tool_use" if any(b.tool for b in reply.reply) else "end_turn")
    offered = [body.get("messages") or [], body.get("system") or "", body.get("tools") or []]
    seed = hashlib.sha256(f"{name}:{talk.round}".encode()).hexdigest()[:16]
    message = {
        "id": f"msg_{re.sub(r'[^A-Za-z0-9_-]', '-', str(name))}_{seed}", "type": "message", "role": "assistant",
        "model": script.model, "content": content, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": max(1, len(json.dumps(offered)) // 4),
                  "output_tokens": max(1, len(json.dumps(content)) // 4)},
    }
    return name, reply, message

"""The scripted model: a real Messages API server reached through the real anthropic SDK, driven by a script."""

import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx2
import pytest

from longtail_mcp.agents.script import ScriptInvalid, load_script
from longtail_mcp.agents.scripted import ScriptedServer

pytestmark = pytest.mark.anyio

ESCALATIONS = textwrap.dedent("""\
    model: scripted-model
    turns:
      - name: find
        when:
          request: "open escalations for role (?P<role>[\\\\w-]+) to (?P<path>\\\\S+)"
          last_tool: none
        reply:
          - text: "Looking up ${role}'s escalations"
          - tool: db-query__find_escalations
            input: {role: "${role}", status: open, where: {path: "$path", tags: ["${role}", 7]}}
      - name: save
        when: {last_tool: db-query__find_escalations, request: "to (?P<path>\\\\S+)"}
        reply:
          - tool: files__write_file
            input: {path: "${path}", rows: {json: "${last_result}"}}
      - name: done
        when: {last_tool: files__write_file}
        reply:
          - text: "Saved: ${last_result}"
    """)

FIND = {"name": "db-query__find_escalations", "input_schema": {"type": "object"}}
WRITE = {"name": "files__write_file", "input_schema": {"type": "object"}}


@asynccontextmanager
async def scripted(script: Any, **options: Any) -> AsyncIterator[tuple[ScriptedServer, anthropic.AsyncAnthropic]]:
    async with ScriptedServer(script, **options) as server, \
            anthropic.AsyncAnthropic(base_url=server.url, api_key="scripted", max_retries=0) as client:
        yield server, client


async def ask(client: anthropic.AsyncAnthropic, messages: list[dict[str, Any]],
              **options: Any) -> anthropic.types.Message:
    return await client.messages.create(model="any", max_tokens=512, messages=messages, **options)  # type: ignore[arg-type]


def answered(messages: list[dict[str, Any]], reply: anthropic.types.Message, result: str,
             *, error: bool = False) -> list[dict[str, Any]]:
    """The conversation with the reply and a tool_result for its (last) tool_use appended."""
    use = [b for b in reply.content if b.type == "tool_use"][-1]
    return [*messages, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "is_error": error,
                                          "content": [{"type": "text", "text": result}]}]}]


async def test_tool_use_conversation_substitutes_groups_and_tool_results() -> None:
    async with scripted(ESCALATIONS) as (server, client):
        request = "List open escalations for role ops-2 to out/ops.json"
        talk: list[dict[str, Any]] = [{"role": "user", "content": request}]
        first = await ask(client, talk, tools=[FIND, WRITE])
        assert first.model == "scripted-model" and first.role == "assistant" and first.stop_reason == "tool_use"
        assert first.content[0].type == "text" and first.content[0].text == "Looking up ops-2's escalations"
        use = first.content[1]
        assert use.type == "tool_use" and use.name == "db-query__find_escalations" and use.id.startswith("toolu_")
        assert use.input == {"role": "ops-2", "status": "open", "where": {"path": "out/ops.json", "tags": ["ops-2", 7]}}
        assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0

        talk = answered(talk, first, '[{"id": 4, "role": "ops-2"}]')
        second = await ask(client, talk, tools=[FIND, WRITE])
        write = second.content[0]
        assert write.type == "tool_use"
        assert write.input == {"path": "out/ops.json", "rows": [{"id": 4, "role": "ops-2"}]}  # {json: ...}: an object

        third = await ask(client, answered(talk, second, "wrote 1 row"))
        assert third.stop_reason == "end_turn" and third.content[0].type == "text"
        assert third.content[0].text == "Saved: wrote 1 row"
        assert third.usage.input_tokens > first.usage.input_tokens
        assert [r["_rule"] for r in server.requests] == ["find", "save", "done"]

        again = await ask(client, [{"role": "user", "content": "open escalations for role ops-2 to out/ops.json"}])
        assert again.content[1].type == "tool_use" and again.content[1].id == use.id  # same conversation, same id


async def test_first_matching_rule_answers_and_groups_stay_strings() -> None:
    script = {"turns": [
        {"name": "number", "when": {"request": r"ticket (?P<n>\d+)"}, "reply": [{"tool": "t", "input": {"n": "${n}"}}]},
        {"name": "broad", "when": {"request": "ticket"}, "reply": [{"text": "broad"}]},
    ]}
    async with scripted(script) as (server, client):
        numbered = await ask(client, [{"role": "user", "content": "ticket 42"}])
        broad = await ask(client, [{"role": "user", "content": "ticket please"}])
    assert numbered.content[0].type == "tool_use" and numbered.content[0].input == {"n": "42"}
    assert broad.content[0].type == "text" and broad.content[0].text == "broad"
    assert [r["_rule"] for r in server.requests] == ["number", "broad"]


async def test_round_tools_error_and_system_conditions() -> None:
    script = {"turns": [
        {"when": {"error": True}, "reply": [{"text": "retrying after: ${last_result}"}]},
        {"when": {"error": False, "round": 1}, "reply": [{"text": "fine"}]},
        {"when": {"system": "you are (?P<who>\\w+)", "tools": ["a", "b"]}, "reply": [{"tool": "a"}]},
        {"when": {"round": 0, "system": "you are (?P<who>\\w+)"}, "reply": [{"text": "round zero, ${who}"}]},
        {"when": {"round": 0}, "reply": [{"text": "round zero"}]},
    ]}
    start = [{"role": "user", "content": "go"}]
    async with scripted(script) as (_, client):
        a_and_b = [{"name": n, "input_schema": {"type": "object"}} for n in ("a", "b")]
        use = await ask(client, start, system="You are helpful; you are Ada", tools=a_and_b)
        only_a = await ask(client, start, system=[{"type": "text", "text": "you are Ada"}], tools=a_and_b[:1])
        plain = await ask(client, start)
        failed = await ask(client, answered(start, use, "disk full", error=True))
        fine = await ask(client, answered(start, use, "ok"))
    assert use.content[0].type == "tool_use" and use.content[0].name == "a" and use.content[0].input == {}
    assert only_a.content[0].type == "text" and only_a.content[0].text == "round zero, Ada"
    assert plain.content[0].type == "text" and plain.content[0].text == "round zero"
    assert failed.content[0].type == "text" and failed.content[0].text == "retrying after: disk full"
    assert fine.content[0].type == "text" and fine.content[0].text == "fine"


async def test_otherwise_answers_when_no_rule_matches() -> None:
    script = textwrap.dedent("""\
        turns: [{when: {request: never}, reply: [{text: nope}]}]
        otherwise: {reply: [{text: 'You said: $request_text'}]}
        """)
    async with scripted(script) as (server, client):
        reply = await ask(client, [{"role": "user", "content": "hello"}])
    assert reply.content[0].type == "text" and reply.content[0].text == "You said: hello"
    assert reply.stop_reason == "end_turn" and server.requests[0]["_rule"] == "otherwise"


async def test_no_matching_rule_is_a_bad_request_naming_the_first_message() -> None:
    async with scripted({"turns": [{"when": {"request": "never"}, "reply": [{"text": "no"}]}]}) as (server, client):
        with pytest.raises(anthropic.BadRequestError) as raised:
            await ask(client, [{"role": "user", "content": "book a flight to Oslo"}])
    assert "no turn of the script matches" in raised.value.message
    assert "first user message: 'book a flight to Oslo'" in raised.value.message
    assert "last tool: none" in raised.value.message
    assert server.requests[0]["_rule"] is None


async def test_an_unknown_name_in_a_reply_is_a_bad_request_naming_it() -> None:
    async with scripted({"turns": [{"reply": [{"tool": "t", "input": {"a": "${missing_name}"}}]}]}) as (_, client):
        with pytest.raises(anthropic.BadRequestError, match="missing_name"):
            await ask(client, [{"role": "user", "content": "hi"}])


async def test_streaming_is_refused() -> None:
    async with scripted({"turns": [{"reply": [{"text": "hi"}]}]}) as (_, client):
        with pytest.raises(anthropic.BadRequestError, match="streaming is not supported by the scripted model"):
            await client.messages.create(model="any", max_tokens=10, stream=True,
                                         messages=[{"role": "user", "content": "hi"}])


async def test_a_turn_delay_is_waited_before_the_reply() -> None:
    script = {"delay": 0, "turns": [{"when": {"request": "slow"}, "delay": 0.3, "reply": [{"text": "slow"}]},
                                    {"reply": [{"text": "fast"}]}]}
    async with scripted(script) as (_, client):
        started = time.monotonic()
        await ask(client, [{"role": "user", "content": "slow"}])
        assert time.monotonic() - started >= 0.3
    async with scripted({"turns": [{"reply": [{"text": "x"}]}]}, delay=0.3) as (_, client):
        started = time.monotonic()
        await ask(client, [{"role": "user", "content": "any"}])
        assert time.monotonic() - started >= 0.3


async def test_recorded_requests_are_counted_and_reset_over_http() -> None:
    async with scripted({"turns": [{"reply": [{"text": "x"}]}]}) as (server, client):
        await ask(client, [{"role": "user", "content": "one"}])
        await ask(client, [{"role": "user", "content": "two"}])
        async with httpx2.AsyncClient(base_url=server.url) as http:
            listed = (await http.get("/scripted/requests")).json()
            await http.delete("/scripted/requests")
            after = (await http.get("/scripted/requests")).json()
    assert listed["count"] == 2 and [r["messages"][0]["content"] for r in listed["requests"]] == ["one", "two"]
    assert after == {"count": 0, "requests": []} and server.requests == []


def test_the_server_outlives_the_event_loops_of_its_callers() -> None:
    async def call(url: str) -> str:
        async with anthropic.AsyncAnthropic(base_url=url, api_key="scripted", max_retries=0) as client:
            reply = await ask(client, [{"role": "user", "content": "hi"}])
        return reply.content[0].text if reply.content[0].type == "text" else ""

    with ScriptedServer({"turns": [{"reply": [{"text": "hello"}]}]}) as server:
        assert server.start() is server and server.url.startswith("http://127.0.0.1:")
        assert [anyio.run(call, server.url) for _ in range(2)] == ["hello", "hello"]


@pytest.mark.parametrize(("script", "expected"), [
    ({"turns": [{"reply": [{"text": "a"}]}, {"name": "bare", "reply": [{"input": {}}]}]},
     "rule 1 ('bare'), field reply.0: Value error, a reply block has exactly one of `text` or `tool`"),
    ({"turns": [{"when": {"request": "(unclosed"}, "reply": [{"text": "a"}]}]},
     "rule 0, field when.request: Value error, invalid regular expression '(unclosed'"),
    ({"turns": [{"when": {"colour": "red"}, "reply": [{"text": "a"}]}]}, "rule 0, field when.colour: Extra inputs"),
    ({"turns": [{"reply": [{"text": "costs $ 5"}]}]}, "rule 0, field reply.0: Value error, 'costs $ 5' is not a valid"),
    ("turns: [oops", "not YAML"),
])
def test_a_bad_script_is_refused_naming_the_rule_and_field(script: Any, expected: str) -> None:
    with pytest.raises(ScriptInvalid) as raised:
        ScriptedServer(script)
    assert expected in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_a_script_loads_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(ESCALATIONS, encoding="utf-8")
    assert load_script(path) == load_script(str(path)) == load_script(ESCALATIONS)
    assert [t.name for t in load_script(path).turns] == ["find", "save", "done"]

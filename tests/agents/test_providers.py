"""Choosing a model from settings, and what a model call's failures become: a refused request is not
retried, an unreachable or overloaded API is (the step's retries), and nothing runs without a model set."""

import socket

import pytest

from longtail_mcp.agents.llm import AnthropicLLM, Provider
from longtail_mcp.agents.scripted import ScriptedServer
from longtail_mcp.config import load_settings
from longtail_mcp.errors import ConfigurationError, NonRetryableError, Unavailable

pytestmark = pytest.mark.anyio

ONLY_HELLO = {"model": "scripted", "turns": [{"name": "hello", "when": {"request": "hello"},
                                              "reply": [{"text": "hi"}]}]}


def test_longtail_llm_is_the_short_form_and_the_long_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LONGTAIL_LLM", "LONGTAIL_LLM_PROVIDER", "LONGTAIL_LLM_SCRIPT", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert load_settings().llm_provider == "anthropic"
    monkeypatch.setenv("LONGTAIL_LLM", "scripted:/srv/script.yaml")
    settings = load_settings()
    assert (settings.llm_provider, str(settings.llm_script)) == ("scripted", "/srv/script.yaml")
    monkeypatch.setenv("LONGTAIL_LLM_SCRIPT", "/srv/other.yaml")
    assert str(load_settings().llm_script) == "/srv/other.yaml"
    for bad in ("scripted", "gpt", "anthropic:x"):
        monkeypatch.setenv("LONGTAIL_LLM", bad)
        with pytest.raises(ValueError, match=r"use 'anthropic' or 'scripted:<script\.yaml>'"):
            load_settings()


def test_without_a_key_or_a_script_the_first_model_call_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="set ANTHROPIC_API_KEY"):
        Provider.from_settings(load_settings(llm_provider="anthropic")).build()
    with pytest.raises(ConfigurationError, match="LONGTAIL_LLM_SCRIPT"):
        Provider.from_settings(load_settings(llm_provider="scripted")).build()
    assert "sk-secret" not in repr(load_settings(anthropic_api_key="sk-secret")), "the key is never shown"


async def test_a_refused_request_is_not_retried_and_an_unreachable_api_is_unavailable() -> None:
    with ScriptedServer(ONLY_HELLO) as model:
        llm = AnthropicLLM(api_key="scripted", model="m", base_url=model.url, max_retries=0)
        answered = await llm.create(system="", messages=[{"role": "user", "content": "hello there"}])
        assert answered.text() == "hi" and answered.tokens_in > 0 and answered.latency_ms > 0
        with pytest.raises(NonRetryableError, match="the model API answered 400"):
            await llm.create(system="", messages=[{"role": "user", "content": "something else"}])
        await llm.aclose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = AnthropicLLM(api_key="x", model="m", base_url=f"http://127.0.0.1:{port}", max_retries=0)
    with pytest.raises(Unavailable, match="could not be reached"):
        await gone.create(system="", messages=[{"role": "user", "content": "hello"}])
    await gone.aclose()

"""LLM providers behind one small interface: `anthropic` (the real SDK) and `scripted` (the same SDK against
the package's scripted Messages API server, agents/scripted.py). Every call returns an `LLMCall` that
records the model, the tokens both ways and the latency: what the agent loop journals for each turn."""

import importlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from pydantic import BaseModel, Field

from longtail_mcp.config import Settings
from longtail_mcp.errors import ConfigurationError, NonRetryableError, Unavailable

if TYPE_CHECKING:
    import anthropic  # imported where used: the SDK costs over a second, which `--help` should not pay


class LLMCall(BaseModel):
    """One model turn: its content blocks (Messages API shape) and what it cost."""

    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0

    def text(self) -> str:
        return "".join(str(b.get("text", "")) for b in self.content if b.get("type") == "text")

    def tool_uses(self) -> list[dict[str, Any]]:
        return [b for b in self.content if b.get("type") == "tool_use"]


class LLM(Protocol):
    """What the agents need of a model."""

    model: str

    async def create(self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                     tool_choice: dict[str, Any] | None = None, max_tokens: int = 4096) -> LLMCall: ...

    async def aclose(self) -> None: ...


class AnthropicLLM:
    """The Messages API through the `anthropic` SDK (any `base_url`: Anthropic's, a proxy, the scripted one)."""

    def __init__(self, *, api_key: str, model: str, base_url: str | None = None, max_retries: int = 2,
                 timeout: float = 600.0) -> None:
        self.model = model
        self.base_url = base_url
        self._options: dict[str, Any] = {"api_key": api_key, "base_url": base_url, "max_retries": max_retries,
                                         "timeout": timeout}
        self._client: Any = None

    async def _sdk(self) -> Any:
        """The SDK, imported in a thread the first time: importing it takes over a second, which would stall
        the event loop — and with it the worker's lease renewals — inside a running step."""
        if self._client is None:
            sdk = await anyio.to_thread.run_sync(importlib.import_module, "anthropic")
            self._client = sdk.AsyncAnthropic(**self._options)
        return sys.modules["anthropic"]

    async def create(self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                     tool_choice: dict[str, Any] | None = None, max_tokens: int = 4096) -> LLMCall:
        """One turn. Raises NonRetryableError on a request the API refuses (4xx but 429: sending it again
        would not help) and Unavailable when it cannot be reached, is overloaded or limits the rate."""
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = tools
        if tool_choice:
            extra["tool_choice"] = tool_choice
        anthropic = await self._sdk()
        started = time.perf_counter()
        try:
            reply = await self._client.messages.create(model=self.model, system=system, messages=messages,
                                                       max_tokens=max_tokens, **extra)
        except anthropic.APIStatusError as exc:
            message = f"the model API answered {exc.status_code}: {_message(exc)}"
            if exc.status_code == 429 or exc.status_code >= 500:
                raise Unavailable(message) from None
            raise NonRetryableError(message) from None
        except anthropic.APIConnectionError as exc:
            raise Unavailable(f"the model API could not be reached ({self.base_url or 'api.anthropic.com'}): "
                              f"{exc}") from None
        latency = (time.perf_counter() - started) * 1000
        body = reply.model_dump(mode="json", exclude_none=True)
        return LLMCall(model=str(body.get("model") or self.model), content=list(body.get("content") or []),
                       stop_reason=body.get("stop_reason"), tokens_in=int(body["usage"]["input_tokens"]),
                       tokens_out=int(body["usage"]["output_tokens"]), latency_ms=round(latency, 2))


    async def aclose(self) -> None:
        """Close the SDK's HTTP connections."""
        if self._client is not None:
            await self._client.close()


def _message(exc: "anthropic.APIStatusError") -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc.message)


class Provider(BaseModel):
    """Which model the agents use, from settings: `anthropic` (needs a key) or `scripted` (a script file;
    the scripted server starts in this process on first use unless `base_url` points at a running one)."""

    kind: str = Field(pattern="^(anthropic|scripted)$")
    model: str
    api_key: str | None = Field(None, repr=False)
    base_url: str | None = None
    script: Path | None = None
    delay: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Provider":
        key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
        return cls(kind=settings.llm_provider, model=settings.llm_model, api_key=key,
                   base_url=settings.llm_base_url, script=settings.llm_script, delay=settings.llm_delay)

    def build(self) -> LLM:
        """The client. Raises ConfigurationError saying what to set when something is missing."""
        if self.kind == "anthropic":
            if not self.api_key:
                raise ConfigurationError("no model is configured: set ANTHROPIC_API_KEY (or LONGTAIL_LLM_PROVIDER="
                                         "scripted with LONGTAIL_LLM_SCRIPT=<script.yaml> to run offline)")
            return AnthropicLLM(api_key=self.api_key, model=self.model, base_url=self.base_url)
        if self.base_url:
            return AnthropicLLM(api_key="scripted", model=self.model, base_url=self.base_url, max_retries=0)
        if self.script is None:
            raise ConfigurationError("the scripted model needs a script: set LONGTAIL_LLM_SCRIPT=<script.yaml> "
                                     "(docs/agents.md#scripts) or LONGTAIL_LLM_BASE_URL of a running one")
        from longtail_mcp.agents.scripted import shared_server  # same layer: the server is only started when used

        server = shared_server(self.script, self.delay)
        return AnthropicLLM(api_key="scripted", model=self.model, base_url=server.url, max_retries=0)

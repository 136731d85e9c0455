"""Workflow and step definitions: what the decorators record."""

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter

from longtail_mcp.errors import InvalidInput, NotFound
from longtail_mcp.runtime.models import WorkflowTool


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff of a step. The wait before retry k (k = 1, 2, ...) is min(backoff**k, max_interval) s."""

    retries: int = 3  # total attempts, HotMesh's maximumAttempts
    backoff: float = 10.0
    max_interval: float = 120.0
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.retries < 1:
            raise InvalidInput("retries counts attempts and must be at least 1")
        if self.backoff < 0 or self.max_interval < 0:
            raise InvalidInput("backoff and max_interval must not be negative")

    def delay(self, failed_attempts: int) -> float:
        return float(min(self.backoff**failed_attempts, self.max_interval))


@dataclass(frozen=True)
class StepSpec:
    """A function run as a checkpointed step."""

    fn: Callable[..., Any]
    name: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def is_async(self) -> bool:
        fn = self.fn.func if hasattr(self.fn, "func") else self.fn  # functools.partial
        return inspect.iscoroutinefunction(fn)


@dataclass(frozen=True)
class WorkflowSpec:
    """A registered workflow function `async def fn(ctx, input)`. When its input is annotated with a
    pydantic model, the run's JSON input is validated into that model before the body sees it."""

    fn: Callable[..., Any]
    name: str
    takes_input: bool
    options: dict[str, Any] = field(default_factory=dict)
    input_model: type[BaseModel] | None = None

    def tool(self) -> WorkflowTool | None:
        """The MCP tool this type publishes (`tool=True`): schemas from the function's type hints."""
        if not self.options.get("tool"):
            return None
        hints = _hints(self.fn)
        params = list(inspect.signature(self.fn).parameters.values())
        given = hints.get(params[1].name, Any) if self.takes_input else None
        schema: dict[str, Any] = {"type": "object", "properties": {}}
        wrapped = False
        if given is not None:
            schema = _schema(given)
            if schema.get("type") != "object":
                schema, wrapped = {"type": "object", "required": ["input"], "properties": {"input": schema}}, True
        returned = hints.get("return", Any)
        output = _schema(returned) if returned is not Any else None
        return WorkflowTool(name=self.name, description=str(self.options.get("description") or
                                                             inspect.getdoc(self.fn) or self.name),
                            input_schema=schema, output_schema=output, wrapped=wrapped,
                            roles=list(self.options.get("roles") or []))


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # a hint that does not resolve: publish the loosest schema rather than fail
        return {}


def _schema(annotation: Any) -> dict[str, Any]:
    if annotation is Any or annotation is inspect.Parameter.empty:
        return {}
    schema = TypeAdapter(annotation).json_schema()
    schema.pop("title", None)
    return schema


def step_spec(fn: Callable[..., Any], **policy: Any) -> StepSpec:
    existing = getattr(fn, "__longtail_step__", None)
    if isinstance(existing, StepSpec) and not policy:
        return existing
    name = policy.pop("name", None) or getattr(fn, "__qualname__", None) or repr(fn)
    return StepSpec(fn=fn, name=name, retry=RetryPolicy(**policy))


class Registry:
    """The workflows one process can run, by name."""

    def __init__(self) -> None:
        self.workflows: dict[str, WorkflowSpec] = {}

    def add_workflow(self, fn: Callable[..., Any], name: str, **options: Any) -> WorkflowSpec:
        if not inspect.iscoroutinefunction(fn):
            raise InvalidInput(f"workflow {name!r} must be an async function taking (ctx, input)")
        params = list(inspect.signature(fn).parameters.values())
        if not params:
            raise InvalidInput(f"workflow {name!r} must take the context as its first argument")
        if name in self.workflows and self.workflows[name].fn is not fn:
            raise InvalidInput(f"workflow {name!r} is already registered")
        model = _hints(fn).get(params[1].name) if len(params) > 1 else None
        input_model = model if isinstance(model, type) and issubclass(model, BaseModel) else None
        spec = WorkflowSpec(fn=fn, name=name, takes_input=len(params) > 1, options=options, input_model=input_model)
        self.workflows[name] = spec
        return spec

    def get(self, name: str) -> WorkflowSpec:
        try:
            return self.workflows[name]
        except KeyError:
            raise NotFound(f"no workflow type named {name!r} is registered in this process") from None

    def names(self) -> list[str]:
        return sorted(self.workflows)

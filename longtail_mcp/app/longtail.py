"""LongTail: a Client that also defines workflows and steps and runs workers for them."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from longtail_mcp.agents import designer, loop, router, triage
from longtail_mcp.app.client import Client
from longtail_mcp.config import Settings
from longtail_mcp.humans.identity import Principal
from longtail_mcp.pipelines import runner
from longtail_mcp.runtime.handle import Handle
from longtail_mcp.runtime.registry import Registry, RetryPolicy, StepSpec
from longtail_mcp.runtime.service import cron_iter
from longtail_mcp.runtime.worker import Worker

F = TypeVar("F", bound=Callable[..., Any])


class LongTail(Client):
    """Registry of workflows and steps, bound to one database.

    `async with LongTail() as app:` opens the pool (starting the embedded Postgres when no
    DATABASE_URL is set) and applies migrations; `app.run_worker()` executes runs.
    `serve_mcp=False` marks a worker-only process: it runs workflows but publishes no MCP servers.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        serve_mcp: bool = True,
        **overrides: Any,
    ) -> None:
        super().__init__(database_url, settings=settings, **overrides)
        self.serve_mcp = serve_mcp
        self.registry = Registry()
        # Every app runs pipelines (docs/pipelines.md): a pipeline run is a workflow of this type.
        self.registry.add_workflow(runner.workflow(lambda: self.db), runner.WORKFLOW)
        # ... and agents (docs/agents.md): every model turn and tool call of one is a step.
        self.registry.add_workflow(loop.workflow(lambda: self), loop.WORKFLOW)
        self.registry.add_workflow(router.workflow(lambda: self), router.WORKFLOW)
        self.registry.add_workflow(triage.workflow(lambda: self), triage.WORKFLOW)
        self.registry.add_workflow(designer.workflow(lambda: self), designer.WORKFLOW)

    def workflow(self, name: str | F | None = None, *, cron: str | None = None, **options: Any) -> Any:
        """Register `async def fn(ctx, input)` as a workflow type (by default named after the function).

        Usable bare (`@app.workflow`) or called (`@app.workflow("name", cron=...)`).
        `cron="*/5 * * * *"` also starts it on that schedule (6 fields: seconds first), once per tick.
        """
        if callable(name):
            fn, name = name, None
            return self.workflow(cron=cron, **options)(fn)
        if cron is not None:
            cron_iter(cron, datetime.now(UTC))  # fail at definition time on a bad expression

        def register(fn: F) -> F:
            self.registry.add_workflow(fn, str(name or fn.__name__), cron=cron, **options)
            return fn

        return register

    def step(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        retries: int = 3,
        backoff: float = 10.0,
        max_interval: float = 120.0,
        non_retryable: tuple[type[BaseException], ...] = (),
    ) -> Any:
        """Give a function a retry policy for `ctx.run(fn, ...)`; the function stays callable as before."""

        def mark(f: F) -> F:
            policy = RetryPolicy(retries=retries, backoff=backoff, max_interval=max_interval,
                                 non_retryable=non_retryable)
            f.__longtail_step__ = StepSpec(fn=f, name=name or f.__qualname__, retry=policy)  # type: ignore[attr-defined]
            return f

        return mark(fn) if fn is not None else mark

    def worker(self, **options: Any) -> Worker:
        """A worker for this app's workflows (options: concurrency, lease_seconds, poll_seconds, listen, ...)."""
        options.setdefault("concurrency", self.settings.concurrency)
        options.setdefault("lease_seconds", self.settings.lease_seconds)
        options.setdefault("poll_seconds", self.settings.poll_seconds)
        options.setdefault("extensions", self.extensions)
        return Worker(self.db, self.registry, **options)

    async def run_worker(self, **options: Any) -> None:
        """Run a worker until cancelled."""
        await self.worker(**options).run()

    def served_workflows(self) -> list[str]:
        """Workflow types this app's workers run."""
        return self.registry.names()

    async def start(self, name: str, input: Any = None, *, workflow_id: str | None = None,
                    principal: Principal | None = None) -> Handle:
        """Start a run. The workflow id is the idempotency key: starting it again returns the first run.

        Raises:
            NotFound: no workflow type of that name is registered in this app.
            InvalidInput: the input is not JSON, or the id is empty or too long.
        """
        self.registry.get(name)
        return await super().start(name, input, workflow_id=workflow_id, principal=principal)

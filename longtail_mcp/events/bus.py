"""Publishing (inside the changing transaction) and subscribing (through the database's one feed) to events."""

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio

from longtail_mcp.db.pool import Conn, Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import InvalidInput
from longtail_mcp.events.feed import Subscription, feed_of
from longtail_mcp.events.types import EVENT_TYPES, Event, matches

logger = logging.getLogger(__name__)
N = load("notify")
Handler = Callable[[Event], Awaitable[None] | None]


async def emit(conn: Conn, db: Database, events: list[Event]) -> None:
    """Queue events on `conn`'s open transaction: listeners get them at commit, in this order."""
    if not events:
        return
    now = time.time()
    payloads = [(e if e.at is not None else _stamp(e, now)).to_json() for e in events]
    await conn.execute(N["notify_events"], {"channel": db.events_channel, "payloads": payloads})


def _stamp(event: Event, now: float) -> Event:
    return replace(event, at=now)


def check_patterns(patterns: list[str] | None) -> list[str] | None:
    """Validate type filters (`run.completed`, `run.*`, `*`).

    Raises:
        InvalidInput: a pattern names no known event type.
    """
    for p in patterns or []:
        if not any(matches(t, [p]) for t in EVENT_TYPES):
            raise InvalidInput(f"unknown event type {p!r}; known: {', '.join(EVENT_TYPES)} (or a prefix like run.*)")
    return patterns


class EventBus:
    """Subscribe to a database's events; also dispatches `on(...)` handlers while `run()` runs."""

    def __init__(self, db_getter: Callable[[], Database]) -> None:
        self._db = db_getter
        self._handlers: list[tuple[list[str], Handler]] = []
        self.spawn: Callable[[], object] | None = None  # set by an open Client: starts `run()` in its task group
        self.dispatching = False

    @property
    def has_handlers(self) -> bool:
        return bool(self._handlers)

    def on(self, pattern: str, handler: Handler | None = None) -> Any:
        """Call `handler(event)` for each matching event (usable as a decorator)."""
        check_patterns([pattern])

        def register(h: Handler) -> Handler:
            self._handlers.append(([pattern], h))
            if self.spawn is not None and not self.dispatching:
                self.spawn()
            return h

        return register(handler) if handler is not None else register

    @asynccontextmanager
    async def subscribe(
        self, types: list[str] | None = None, workflow_id: str | None = None
    ) -> AsyncIterator[Subscription]:
        """A stream of matching events from the moment this returns.

        It costs no connection: every subscriber of a Database shares its one feed (see events/feed.py),
        and waits through a reconnection instead of failing. A subscriber that falls 10,000 events
        behind loses its oldest ones.

        Raises:
            InvalidInput: an unknown event type.  Unavailable: the feed is not listening and cannot connect now.
        """
        check_patterns(types)
        async with feed_of(self._db()).subscription(types, workflow_id) as events:
            yield events

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Dispatch events to the `on(...)` handlers until cancelled."""
        if self.dispatching:
            task_status.started()
            return
        self.dispatching = True
        try:
            async with self.subscribe() as events:
                task_status.started()
                async for event in events:
                    await self._dispatch(event)
        finally:
            self.dispatching = False

    async def _dispatch(self, event: Event) -> None:
        for patterns, handler in list(self._handlers):
            if not matches(event.type, patterns):
                continue
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("event handler %r failed on %s", handler, event.type)

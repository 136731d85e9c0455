"""The event feed: one LISTEN connection per Database, fanned out in memory to every subscriber.

It listens on the events channel (fanned out to subscriptions) and on the workers' wake channel
(handed to the workers' claim loops), so a process holds one LISTEN connection whatever runs in it.

The listener is a daemon thread with a plain (sync) psycopg connection, not a task. A task needs
a task group to live in, and a task group belongs to the task that entered it; no subscriber can
host a listener that must outlive it, and `Database` has no lifespan of its own to host one. The
thread owns the connection, reconnects after a restart with a short backoff, and stops by itself
once nobody is subscribed and the database is closed (or after `IDLE_SECONDS` without
subscribers), so closing the database never waits for it. It hands what it hears to the event
loop with `call_soon_threadsafe` (psycopg's async API ties us to asyncio anyway); everything
about subscribers happens on the loop, in `_drain`.
"""

import asyncio
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import chain

import anyio
import psycopg
from psycopg import sql

from longtail_mcp.db.pool import Database
from longtail_mcp.errors import Unavailable
from longtail_mcp.events.types import Event, matches

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000  # events one subscriber may have waiting before its oldest are dropped
IDLE_SECONDS = 30.0  # keep listening this long after the last subscriber left: the next one is free
POLL_SECONDS = 0.05  # how often the listener looks up from the socket (to stop, or to (UN)LISTEN events)
EVENTS_LINGER = 5.0  # keep listening to events this long after the last event subscriber left
BACKOFF = (0.05, 2.0)  # first and longest pause between reconnection attempts


class Subscription:
    """One subscriber's bounded queue of matching events; `async for event in sub` receives them.

    Waiting is cancellation-safe: a wait cut short by a timeout loses nothing.
    """

    def __init__(self, types: list[str] | None, workflow_id: str | None, limit: int = QUEUE_LIMIT) -> None:
        self.types = types
        self.workflow_id = workflow_id
        self._items: deque[Event] = deque()
        self._limit = limit
        self._ready: anyio.Event | None = None
        self._gap = False
        self._warned = False
        self._closed = False

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Event:
        while True:
            event = await self.next_or_gap()
            if event is not None:
                return event

    async def next_or_gap(self) -> Event | None:
        """The next event, or None when some may have been missed (the feed reconnected after losing its
        connection, or this queue overflowed): then read the tables, which are the record.

        Raises:
            StopAsyncIteration: the subscription has ended (its `subscribe()` block was left).
        """
        while not self._items and not self._gap:
            if self._closed:
                raise StopAsyncIteration
            self._ready = anyio.Event()
            await self._ready.wait()
        if self._gap:
            self._gap = False
            return None
        return self._items.popleft()

    def _offer(self, event: Event) -> None:
        if not matches(event.type, self.types):
            return
        if len(self._items) >= self._limit:
            self._items.popleft()  # events are notifications: a slow reader loses the oldest, not memory
            self._gap = True
            if not self._warned:
                self._warned = True
                logger.warning("an event subscriber fell behind by %d events; dropping its oldest", self._limit)
        self._items.append(event)
        self._wake()

    def _mark_gap(self) -> None:
        self._gap = True
        self._wake()

    def _close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._ready is not None:
            self._ready.set()


@dataclass(frozen=True)
class _Status:
    """The listener connected (`error` None) or lost / failed to get its connection; `events` says whether
    it now listens to the events channel as well as the wake channel."""

    generation: int
    error: str | None
    events: bool = False


class Feed:
    """The events of one Database, heard on one connection and shared by all its subscribers."""

    def __init__(self, db: Database) -> None:
        self._dsn = db.dsn
        self._channel = db.events_channel
        self._wake_channel = db.wake_channel
        self._db = weakref.ref(db)  # the feed must not keep a dropped Database (or its pool) alive
        # Shared with the listener thread, under _lock.
        self._lock = threading.Lock()
        self._inbox: deque[Event] = deque()
        self._woken = False
        self._statuses: list[_Status] = []
        self._overflowed = False
        self._scheduled = False
        self._count = 0
        self._event_subs = 0  # subscriptions that want events (a worker's wake-ups do not)
        self._events_idle_since = time.monotonic()
        # What the listener thread is doing now (the truth a subscriber checks before counting on it).
        self._connected = False
        self._events_listening = False
        self._idle_since = time.monotonic()
        self._running = False
        self._generation = 0
        # The event loop's side: touched only from the loop's thread.
        self._everyone: set[Subscription] = set()
        self._by_run: dict[str, set[Subscription]] = {}
        self._wakers: set[Callable[[], None]] = set()
        self._live = False
        self._interrupted = False
        self._error: str | None = None
        self._changed: anyio.Event | None = None

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open on this Database (bus subscribers, result() waiters, SSE clients)."""
        with self._lock:
            return self._count

    @asynccontextmanager
    async def subscription(self, types: list[str] | None, workflow_id: str | None) -> AsyncIterator[Subscription]:
        """A Subscription receiving every matching event heard after this returns.

        Raises:
            Unavailable: the feed is not listening and its next attempt to connect failed.
        """
        sub = Subscription(types, workflow_id)
        await self._attach(sub)
        try:
            yield sub
        finally:
            self._detach(sub)

    @asynccontextmanager
    async def wakes(self, wake: Callable[[], None]) -> AsyncIterator[None]:
        """Call `wake()` (on the loop) whenever the workers' channel is notified, and after every reconnect
        (anything may have become due meanwhile): a worker's claim loop needs no connection of its own.

        Raises:
            Unavailable: the feed is not listening and its next attempt to connect failed.
        """
        sub = Subscription(None, None)  # keeps the listener, receives no events (so none are parsed for it)
        self._wakers.add(wake)
        try:
            await self._attach(sub, events=False)
            try:
                wake()  # whatever became due before we listened
                yield
            finally:
                self._detach(sub, events=False)
        finally:
            self._wakers.discard(wake)

    async def _attach(self, sub: Subscription, *, events: bool = True) -> None:
        with self._lock:
            self._count += 1
            self._event_subs += events
            if not self._running:
                self._running = True
                self._generation += 1
                self._inbox.clear()  # whatever an earlier listener left belongs to nobody now
                self._statuses.clear()
                self._scheduled = False
                self._live = self._interrupted = False
                self._connected = self._events_listening = False
                self._error = None
                thread = threading.Thread(target=self._listen, args=(self._generation, asyncio.get_running_loop()),
                                          name=f"longtail-events-{self._channel}", daemon=True)
                thread.start()
        if events:
            (self._by_run.setdefault(sub.workflow_id, set()) if sub.workflow_id else self._everyone).add(sub)
        try:
            # Events count from the moment LISTEN is in place (for an event subscriber: on the events channel).
            while True:
                with self._lock:
                    ready = self._connected and (not events or self._events_listening)
                if ready:
                    break
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
                with self._lock:
                    down = not self._connected
                if down and self._error is not None:
                    raise Unavailable(f"event feed unavailable: {self._error}")
        except BaseException:
            self._detach(sub, events=events)
            raise

    def _detach(self, sub: Subscription, *, events: bool = True) -> None:
        if not events:
            pass
        elif sub.workflow_id:
            subs = self._by_run.get(sub.workflow_id, set())
            subs.discard(sub)
            if not subs:
                self._by_run.pop(sub.workflow_id, None)
        else:
            self._everyone.discard(sub)
        sub._close()
        with self._lock:
            self._count -= 1
            self._event_subs -= events
            if events and not self._event_subs:
                self._events_idle_since = time.monotonic()
            if not self._count:
                self._idle_since = time.monotonic()

    # -- the loop's side -------------------------------------------------------------------------

    def _drain(self) -> None:
        """Deliver what the listener handed over (on the loop; only ever called by `call_soon_threadsafe`)."""
        with self._lock:
            events, self._inbox = self._inbox, deque()
            woken, self._woken = self._woken, False
            statuses, self._statuses = self._statuses, []
            overflowed, self._overflowed = self._overflowed, False
            self._scheduled = False
            generation = self._generation
        for status in statuses:
            if status.generation == generation:  # not from a listener that has since retired
                self._status(status)
        if overflowed:
            self._gap_all()
        if woken:
            self._wake_all()
        for event in events:
            more = self._by_run.get(event.workflow_id, ()) if event.workflow_id else ()
            for sub in chain(self._everyone, more):
                sub._offer(event)

    def _status(self, status: _Status) -> None:
        if status.error is None:
            if self._interrupted:  # notifications sent while we were away are lost: waiters re-read
                self._gap_all()
            self._live, self._interrupted, self._error = True, False, None
        else:
            self._live, self._interrupted, self._error = False, True, status.error
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _gap_all(self) -> None:
        for sub in chain(self._everyone, *self._by_run.values()):
            sub._mark_gap()
        self._wake_all()

    def _wake_all(self) -> None:
        for wake in list(self._wakers):
            wake()

    # -- the listener thread -----------------------------------------------------------------------

    def _listen(self, generation: int, loop: asyncio.AbstractEventLoop) -> None:
        """LISTEN and hand notifications to the loop, reconnecting with a backoff, until `_retire` says stop."""
        pause = BACKOFF[0]
        try:
            while not self._retire(generation):
                try:
                    # Keepalives: a peer gone without a word (a cut network) is noticed in about a minute.
                    with psycopg.connect(self._dsn, autocommit=True, connect_timeout=10,
                                         application_name="longtail-events", keepalives=1, keepalives_idle=30,
                                         keepalives_interval=10, keepalives_count=3) as conn:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._wake_channel)))
                        listening = False  # to the events channel: only while someone wants events
                        self._set(generation, connected=True)
                        self._post(loop, status=_Status(generation, None))
                        if pause > BACKOFF[0]:
                            logger.info("event feed listening again")
                        pause = BACKOFF[0]
                        while not self._retire(generation):
                            listening = self._follow_subscribers(conn, listening, generation, loop)
                            # stop_after=1: one packet at a time, so each hand-over is a batch
                            notes = list(conn.notifies(timeout=POLL_SECONDS, stop_after=1))
                            batch = list(_parse(n.payload for n in notes if n.channel == self._channel))
                            woken = any(n.channel == self._wake_channel for n in notes)
                            if batch or woken:
                                self._post(loop, batch, woken=woken)
                except _LoopClosed:
                    raise
                except Exception as exc:  # a restart, a network cut: subscribers wait, we reconnect
                    if self._retire(generation):  # the database was closed (or dropped) under us: nothing to say
                        break
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    log = logger.warning if pause == BACKOFF[0] else logger.debug  # once per outage
                    log("event feed lost its connection (%s); reconnecting", reason)
                    self._set(generation, connected=False, events=False)
                    self._post(loop, status=_Status(generation, reason))
                    time.sleep(pause)
                    pause = min(pause * 2, BACKOFF[1])
        except _LoopClosed:  # nobody is left to deliver to
            pass
        finally:
            with self._lock:
                if self._generation == generation:
                    self._running = False
                    self._connected = self._events_listening = False

    def _set(self, generation: int, *, connected: bool | None = None, events: bool | None = None) -> None:
        """Record what this listener is doing now, unless a newer listener has taken over."""
        with self._lock:
            if self._generation != generation:
                return
            if connected is not None:
                self._connected = connected
            if events is not None:
                self._events_listening = events

    def _follow_subscribers(self, conn: psycopg.Connection[tuple[object, ...]], listening: bool, generation: int,
                            loop: asyncio.AbstractEventLoop) -> bool:
        """LISTEN to the events channel while someone wants events, UNLISTEN a while after the last leaves:
        a worker alone on the feed (wake-ups only) then receives, and pays for, no event at all."""
        with self._lock:
            want = self._event_subs > 0 or (
                listening and time.monotonic() - self._events_idle_since < EVENTS_LINGER)
            if listening and not want and self._generation == generation:
                self._events_listening = False  # decided under the lock: a newcomer waits for a new LISTEN
        if want and not listening:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._set(generation, events=True)
            self._post(loop, status=_Status(generation, None, events=True))
            return True
        if listening and not want:
            conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(self._channel)))
            self._post(loop, status=_Status(generation, None, events=False))
            return False
        return listening

    def _retire(self, generation: int) -> bool:
        """Whether this listener should stop: nobody subscribed, and the database closed or idle long enough.
        Decided under the lock, so a subscriber arriving now starts a new listener instead of counting on this one."""
        with self._lock:
            if self._generation != generation:
                return True
            if self._count:
                return False
            db = self._db()
            if db is not None and not db.pool.closed and time.monotonic() - self._idle_since < IDLE_SECONDS:
                return False
            self._running = False
            return True

    def _post(self, loop: asyncio.AbstractEventLoop, events: Iterable[Event] = (),
              status: _Status | None = None, woken: bool = False) -> None:
        with self._lock:
            self._inbox.extend(events)
            self._woken = self._woken or woken
            if status is not None:
                self._statuses.append(status)
            while len(self._inbox) > QUEUE_LIMIT:  # the loop is stalled: keep memory bounded here too
                self._inbox.popleft()
                self._overflowed = True
            if self._scheduled:
                return
            self._scheduled = True
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError as exc:  # the loop is closed
            raise _LoopClosed from exc


class _LoopClosed(Exception):
    """The event loop the subscribers lived on is closed."""


def _parse(payloads: Iterable[str]) -> Iterable[Event]:
    for payload in payloads:
        try:
            yield Event.from_json(payload)
        except (ValueError, TypeError):  # not ours: anyone may NOTIFY on the channel
            continue


_feeds: "weakref.WeakKeyDictionary[Database, Feed]" = weakref.WeakKeyDictionary()


def feed_of(db: Database) -> Feed:
    """The one feed of `db`, shared by every EventBus and Handle on it (created on first use)."""
    feed = _feeds.get(db)
    if feed is None:
        feed = _feeds[db] = Feed(db)
    return feed

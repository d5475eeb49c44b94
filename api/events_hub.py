"""The relay's engine: one reader of the event log per API process, fanning out in memory.

``EventHub`` reads the log after a concrete id (the newest held at start-up, never ``$``),
encodes each event once into a ``Frame`` and offers every batch to each attached
``Subscription``: a client's bounded queue, filled without ever waiting, so neither the reader
nor any other client waits on a slow one. A subscription that would overflow is closed as a
slow consumer (4408). Reading, advancing the hub's position and offering to every subscriber
happen in one synchronous step, so a client that attaches when its own position has reached
the hub's gets exactly the events after it: no gap, no duplicate.

When the log fails for longer than a grace period, every client is closed with 1013 and new
ones are refused until it answers again; the reader retries with back-off (doubling up to a
cap) and resumes after the last id it fanned out. A heartbeat ticker marks clients that have
been sent nothing for a while, and their writers send them a heartbeat frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

from api.events_protocol import CloseCode, Frame, StreamFilter
from shared.events import Event
from shared.store.base import LOG_START, EventLog, StoreUnavailable, event_seq

log = logging.getLogger(__name__)

READ_COUNT = 500  # events one read of the hub may return
READ_BLOCK = 5.0  # seconds one read of the hub may wait for new events
OUTAGE_REASON = "the event log is unavailable; reconnect later with last_event_id"
LOST_PLACE_REASON = "the relay missed trimmed events; reconnect with last_event_id"
STOPPED_REASON = "the relay stopped; reconnect with last_event_id"


class Subscription:
    """One client's place in the stream: its filter, its bounded queue, its position.

    ``position`` is the id (as an int) of the newest event this client has been handed or has
    filtered out; the hub only offers it newer ones. ``closing`` says why the server ends the
    stream (set once); ``interrupt`` stops the client's writer, which may be stuck sending.
    """

    __slots__ = (
        "closing",
        "filter",
        "frames",
        "heartbeat_due",
        "interrupt",
        "last_sent",
        "limit",
        "position",
        "ready",
    )

    def __init__(self, stream_filter: StreamFilter, *, limit: int, position: int = 0) -> None:
        self.filter = stream_filter
        self.limit = limit
        self.position = position
        self.frames: deque[Frame] = deque()
        self.ready = asyncio.Event()
        self.closing: tuple[CloseCode, str] | None = None
        self.heartbeat_due = False
        self.last_sent = time.monotonic()
        self.interrupt: Callable[[], object] | None = None

    @property
    def closed(self) -> bool:
        return self.closing is not None

    def offer(self, frames: Sequence[Frame]) -> None:
        """Queue what this client wants of a batch, in order; never waits."""
        last = frames[-1].seq
        if self.closing is not None or last <= self.position:
            return
        if self.filter.everything and frames[0].seq > self.position:
            wanted: Sequence[Frame] = frames
        else:
            position, wants = self.position, self.filter.wants
            wanted = [frame for frame in frames if frame.seq > position and wants(frame)]
        self.position = last
        if not wanted:
            return
        if len(self.frames) + len(wanted) > self.limit:
            self.close(
                CloseCode.SLOW_CONSUMER,
                f"slow consumer: more than {self.limit} events waiting; resume with last_event_id",
            )
            return
        self.frames.extend(wanted)
        self.ready.set()

    def close(self, code: CloseCode, reason: str) -> None:
        """End the stream (the first reason wins): drop what waits, stop the writer."""
        if self.closing is not None:
            return
        self.closing = (code, reason)
        self.frames.clear()
        self.ready.set()
        if self.interrupt is not None:
            self.interrupt()


class EventHub:
    """The process's single event-log reader and its in-memory fan-out."""

    def __init__(
        self,
        events: EventLog,
        *,
        heartbeat_interval: float,
        outage_grace: float,
        retry_initial: float,
        retry_max: float,
        read_count: int = READ_COUNT,
        read_block: float = READ_BLOCK,
        on_tick: Callable[[], object] | None = None,
    ) -> None:
        self.events = events
        self._heartbeat_interval = heartbeat_interval
        self._outage_grace = outage_grace
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._read_count = read_count
        self._read_block = read_block
        self._on_tick = on_tick  # called by the heartbeat ticker (at least once a second)
        self.position: int | None = None  # id of the newest event fanned out (None: not yet known)
        self.available = False  # the log answered lately: new clients are taken
        self._attached: set[Subscription] = set()
        self._members: set[Subscription] = set()  # attached or catching up
        self._tasks: list[asyncio.Task[None]] = []
        self._failing_since: float | None = None

    @property
    def clients(self) -> int:
        """Clients served: attached, or catching up from the log."""
        return len(self._members)

    @property
    def attached(self) -> int:
        return len(self._attached)

    async def start(self) -> None:
        """Find the newest id (if the log answers now) and start the reader and the ticker."""
        try:
            await self._locate()
        except StoreUnavailable as error:
            log.warning("event relay: the event log is unavailable, will retry: %s", error)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="event-hub-reader"),
            asyncio.create_task(self._tick_loop(), name="event-hub-heartbeats"),
        ]

    async def stop(self) -> None:
        """Stop reading and close the clients still here (1001; uvicorn's own shutdown has
        normally closed them with 1012 already)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.available = False
        self._close_all(CloseCode.GOING_AWAY, STOPPED_REASON)

    def join(self, subscription: Subscription) -> None:
        """Count a client in (it will be closed with the others on an outage or a stop);
        one joining while the log is unavailable is closed at once."""
        self._members.add(subscription)
        if not self.available:
            subscription.close(CloseCode.TRY_AGAIN_LATER, OUTAGE_REASON)

    def leave(self, subscription: Subscription) -> None:
        self._members.discard(subscription)
        self._attached.discard(subscription)

    def attach_live(self, subscription: Subscription) -> None:
        """Attach a client at the hub's position: it gets every event read from now on."""
        assert self.position is not None, "attach only while the hub is available"
        subscription.position = self.position
        self._attached.add(subscription)

    def attach_if_caught_up(self, subscription: Subscription) -> bool:
        """Attach a client catching up from the log once its position has reached the hub's
        (then the hub hands it exactly what follows); False while it is still behind."""
        if self.position is None or subscription.position < self.position:
            return False
        self._attached.add(subscription)
        return True

    def publish(self, events: Sequence[Event]) -> None:
        """Fan a batch out to every attached client (one encoding per event) and advance."""
        frames = [Frame.of(event) for event in events]
        for subscription in list(self._attached):
            subscription.offer(frames)
            if subscription.closing is not None:  # cut off as a slow consumer
                self._attached.discard(subscription)
        self.position = frames[-1].seq

    async def _locate(self) -> None:
        bounds = await self.events.bounds()
        self.position = event_seq(bounds.newest or LOG_START)
        self.available = True
        log.info("event relay reading after event id %d", self.position)

    async def _read_loop(self) -> None:
        delay = self._retry_initial
        while True:
            try:
                if self.position is None:
                    await self._locate()
                    self._recovered()
                    continue
                events = await self.events.read(
                    str(self.position), count=self._read_count, block=self._read_block
                )
                if events and event_seq(events[0].id) != self.position + 1:
                    await self._check_gap(event_seq(events[0].id))
                self._recovered()
                if events:
                    self.publish(events)
                delay = self._retry_initial
                continue
            except StoreUnavailable as error:
                self._failed(error)
            except Exception:
                log.exception("event relay: reading the event log failed; retrying")
                self._failed(None)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)

    async def _check_gap(self, first: int) -> None:
        """Ids may have gaps; but when the log no longer covers our position, events we never
        read were trimmed: the attached clients that needed them are told to reconnect (and
        will learn what they missed). Clients still catching up check their own reads."""
        assert self.position is not None
        if not (await self.events.bounds()).covers(str(self.position)):
            log.warning("event relay: events after %d were trimmed unread", self.position)
            for subscription in list(self._attached):
                if subscription.position < first - 1:
                    subscription.close(CloseCode.TRY_AGAIN_LATER, LOST_PLACE_REASON)

    def _failed(self, error: StoreUnavailable | None) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            log.warning("event relay: the event log is unavailable: %s", error)
        if self.available and now - self._failing_since >= self._outage_grace:
            log.warning("event relay: closing %d clients until the log is back", self.clients)
            self.available = False
            self._close_all(CloseCode.TRY_AGAIN_LATER, OUTAGE_REASON)

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.info("event relay: the event log answers again (after event id %s)", self.position)
            self._failing_since = None
        self.available = True

    def _close_all(self, code: CloseCode, reason: str) -> None:
        for subscription in list(self._members):
            subscription.close(code, reason)

    async def _tick_loop(self) -> None:
        interval = self._heartbeat_interval
        while True:
            await asyncio.sleep(min(interval / 4, 1.0))
            if self._on_tick is not None:
                self._on_tick()
            silent_since = time.monotonic() - interval
            for subscription in self._attached:
                if (
                    subscription.last_sent <= silent_since
                    and not subscription.heartbeat_due
                    and not subscription.frames
                ):
                    subscription.heartbeat_due = True
                    subscription.ready.set()

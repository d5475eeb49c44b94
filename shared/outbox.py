"""The transactional outbox: events commit with the state they describe, then reach the log.

The brain writes an event with ``add_event`` inside the same SQL transaction as the trade (or
whatever) it reports, so an event exists exactly when its change does: a rolled-back
transaction leaves no event, a committed one always gets relayed, however the process dies.
``OutboxRelay`` moves committed rows, oldest first, to the event log and then deletes them.

Outbox row ids are the event ids. They commit in id order (the brain is the single writer;
SQLite serialises writers and PostgreSQL takes a transaction lock below), and the log refuses
an id not newer than its newest, so a crash between publishing and deleting only causes a
harmless re-publish. Trading never waits on the relay: ``add_event`` only writes SQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.tables import outbox
from shared.events import Event, EventName, validate_data
from shared.settings import OutboxSettings
from shared.store.base import EventLog, StoreUnavailable
from shared.timeutil import to_utc, utc_now

log = logging.getLogger(__name__)

# An arbitrary constant naming the PostgreSQL advisory lock that serialises outbox writers.
_PG_OUTBOX_LOCK = 0x7462_6F75_7462  # "tboutb"
# Rows deleted per statement (SQLite caps the parameters of one statement).
_DELETE_CHUNK = 500

# Failures of a backend that retrying later may cure: the relay backs off and retries.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StoreUnavailable,
    OSError,  # includes ConnectionError
    TimeoutError,
    OperationalError,  # the SQL database went away or stayed locked
    InterfaceError,
)

NewEvent = tuple[EventName, Mapping[str, Any]]


async def add_event(
    conn: AsyncConnection,
    name: EventName,
    data: Mapping[str, Any],
    timestamp: datetime | None = None,
) -> str:
    """Add one event to the outbox in the caller's transaction; returns its event id."""
    (event_id,) = await add_events(conn, [(name, data)], timestamp)
    return event_id


async def add_events(
    conn: AsyncConnection, events: Sequence[NewEvent], timestamp: datetime | None = None
) -> list[str]:
    """Add events (in this order) to the outbox in the caller's transaction; returns their ids.

    Nothing is committed here: the events become visible to the relay when, and only if, the
    caller's transaction commits. Raises ``EventDataError`` when data does not fit the catalog.
    """
    moment = to_utc(timestamp) if timestamp is not None else utc_now()
    return await add_timed_events(conn, [(moment, name, data) for name, data in events])


async def add_timed_events(
    conn: AsyncConnection, events: Sequence[tuple[datetime, EventName, Mapping[str, Any]]]
) -> list[str]:
    """Like ``add_events``, each event with its own timestamp (several steps in one go)."""
    if not events:
        return []
    rows = []
    for moment, given, data in events:
        name = EventName(given)
        validate_data(name, data)
        rows.append({"event": name.value, "data": dict(data), "timestamp": to_utc(moment)})
    if conn.dialect.name == "postgresql":
        # Held to the end of the transaction: two writers can then never commit ids out of
        # order (the relay would publish 6 before 5 committed, and the log would refuse 5).
        await conn.execute(select(func.pg_advisory_xact_lock(_PG_OUTBOX_LOCK)))
    result = await conn.execute(
        insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True), rows
    )
    return [str(event_id) for event_id in result.scalars()]


class OutboxRelay:
    """Moves committed outbox rows to the event log, in order, each exactly once in the log."""

    def __init__(
        self,
        engine: AsyncEngine,
        log: EventLog,
        settings: OutboxSettings,
        *,
        final_drain_timeout: float = 5.0,
    ) -> None:
        self._engine = engine
        self._log = log
        self._settings = settings
        self._final_drain_timeout = final_drain_timeout
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Relay now: call after committing a transaction that added events (same event loop)."""
        self._wake.set()

    async def fetch(self) -> list[Event]:
        """The oldest committed events not yet relayed, up to the batch size."""
        query = select(outbox).order_by(outbox.c.id).limit(self._settings.batch_size)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Event(str(row.id), EventName(row.event), dict(row.data), row.timestamp) for row in rows
        ]

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        appended = await self._log.append(events)
        if len(appended) < len(events):
            # Expected once after a crash between publish and mark_relayed. If it keeps
            # happening, the SQL sequence is behind the log's newest id (a reset database?)
            # and those events are being dropped.
            log.warning(
                "event log already had %d of %d events (ids %s..%s); not appended again",
                len(events) - len(appended),
                len(events),
                events[0].id,
                events[-1].id,
            )

    async def mark_relayed(self, events: Sequence[Event]) -> None:
        """Delete the rows of events the log now holds, in one short transaction."""
        ids = [int(event.id) for event in events]
        if not ids:
            return
        async with self._engine.begin() as conn:
            for start in range(0, len(ids), _DELETE_CHUNK):
                chunk = ids[start : start + _DELETE_CHUNK]
                await conn.execute(delete(outbox).where(outbox.c.id.in_(chunk)))

    async def relay_once(self) -> int:
        """Relay one batch; returns how many events it moved."""
        events = await self.fetch()
        if events:
            await self.publish(events)
            await self.mark_relayed(events)
            log.debug("relayed events %s..%s", events[0].id, events[-1].id)
        return len(events)

    async def drain(self) -> int:
        """Relay until the outbox is empty; returns how many events moved."""
        total = 0
        while True:
            moved = await self.relay_once()
            total += moved
            if moved < self._settings.batch_size:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; survive any outage by backing off and retrying."""
        delay = self._settings.retry_initial
        while not stop.is_set():
            # Cleared before draining: a wake() during the drain makes the next wait return.
            self._wake.clear()
            try:
                await self.drain()
            except TRANSIENT_ERRORS as exc:
                log.warning("outbox relay failed (%s); retrying in %.2fs", _describe(exc), delay)
            except Exception:
                # A bug, not an outage. Keep going: a dead relay would silently stop every
                # event, a looping one at least shouts in the log.
                log.exception("outbox relay failed unexpectedly; retrying in %.2fs", delay)
            else:
                delay = self._settings.retry_initial
                await self._pause(stop, self._settings.poll_interval, wakeable=True)
                continue
            await self._pause(stop, delay, wakeable=False)
            delay = min(delay * 2, self._settings.retry_max)
        await self._final_drain()

    async def _final_drain(self) -> None:
        """Best effort on the way out; what stays in the outbox goes at the next start."""
        try:
            async with asyncio.timeout(self._final_drain_timeout):
                await self.drain()
        except Exception as exc:
            log.warning("events left in the outbox at shutdown (%s)", _describe(exc))

    async def _pause(self, stop: asyncio.Event, seconds: float, *, wakeable: bool) -> None:
        """Wait for ``stop`` (or ``wake()`` when wakeable) at most ``seconds``."""
        waiters = [asyncio.ensure_future(stop.wait())]
        if wakeable:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

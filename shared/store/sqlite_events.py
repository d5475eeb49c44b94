"""The event log in SQLite: an ``events`` table keyed by the brain's event id, and consumer
groups (``consumer_groups`` + ``pending``) for side consumers that need at-least-once delivery.

Appends refuse any id not above a high-water mark kept in ``meta`` (not the table's newest row,
which trimming could remove), so a retried append never duplicates or resurrects an event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import aiosqlite

from shared import jsonutil
from shared.events import Event, EventName
from shared.store._sqlite import (
    EVENTS_COUNT,
    EVENTS_HIGH_WATER,
    Database,
    meta_values,
    poll,
    set_meta,
)
from shared.store.base import LOG_START, ConsumerGroup, LogBounds, StoreError, event_seq
from shared.timeutil import parse_iso, to_iso

_SELECT_NEW = "SELECT id, name, data, timestamp FROM events WHERE id > ? ORDER BY id LIMIT ?"
# Pending entries joined with their events (an entry whose event was trimmed has none).
_SELECT_PENDING = (
    "SELECT events.id, events.name, events.data, events.timestamp"
    " FROM pending JOIN events ON events.id = pending.event_id WHERE pending.grp = ?"
)


def _decode(rows: Iterable[aiosqlite.Row]) -> list[Event]:
    return [
        Event(str(row[0]), EventName(row[1]), jsonutil.loads(row[2]), parse_iso(row[3]))
        for row in rows
    ]


class SQLiteEventLog:
    def __init__(self, db: Database, *, max_events: int, poll_interval: float) -> None:
        self._db = db
        self._max_events = max_events
        # Trim only once the table is 10% over, so the cost of a trim is spread over many appends.
        self._trim_at = max_events + max(1, max_events // 10)
        self._poll_interval = poll_interval

    async def append(self, events: Sequence[Event]) -> list[str]:
        if not events:
            return []
        positions = [event_seq(event.id) for event in events]  # reject bad ids before writing
        appended: list[str] = []
        async with self._db.writing("appending events") as conn:
            high_water, held = await meta_values(conn, EVENTS_HIGH_WATER, EVENTS_COUNT)
            rows = []
            for event, position in zip(events, positions, strict=True):
                if position <= high_water:
                    continue  # appended before (a retry), or older than what was: refused
                high_water = position
                data = jsonutil.dumps_str(event.data)
                rows.append((position, event.name.value, data, to_iso(event.timestamp)))
                appended.append(event.id)
            if rows:
                await conn.executemany(
                    "INSERT INTO events (id, name, data, timestamp) VALUES (?, ?, ?, ?)", rows
                )
                held = await self._trim(conn, held + len(rows))
                await set_meta(conn, {EVENTS_HIGH_WATER: high_water, EVENTS_COUNT: held})
        return appended

    async def _trim(self, conn: aiosqlite.Connection, held: int) -> int:
        """Trim when over the allowance; returns how many events the table now holds."""
        if held <= self._trim_at:
            return held
        # Everything older than the max_events-th newest goes; the newest always stays.
        await conn.execute(
            "DELETE FROM events WHERE id < "
            "(SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (self._max_events - 1,),
        )
        rows = list(await conn.execute_fetchall("SELECT count(*) FROM events"))
        return int(rows[0][0])  # recounted, so the held count can never drift for long

    async def read(self, after: str, *, count: int = 100, block: float = 0.0) -> list[Event]:
        position = event_seq(after)

        async def attempt() -> list[Event] | None:
            async with self._db.reading("reading events") as conn:
                if conn is None:
                    return None
                rows = await conn.execute_fetchall(
                    _SELECT_NEW,
                    (position, count),
                )
            return _decode(rows) or None

        return await poll(attempt, block=block, interval=self._poll_interval) or []

    async def bounds(self) -> LogBounds:
        async with self._db.reading("reading log bounds") as conn:
            if conn is None:
                return LogBounds(None, None)
            # Two subqueries: SQLite answers a lone MIN or MAX from the index, not both at once.
            rows = list(
                await conn.execute_fetchall(
                    "SELECT (SELECT min(id) FROM events), (SELECT max(id) FROM events)"
                )
            )
        oldest, newest = rows[0]
        if oldest is None:
            return LogBounds(None, None)
        return LogBounds(str(oldest), str(newest))

    def group(self, name: str, consumer: str, *, min_idle: float = 30.0) -> ConsumerGroup:
        return SQLiteConsumerGroup(
            self._db, name, consumer, min_idle=min_idle, poll_interval=self._poll_interval
        )


async def clear_events(conn: aiosqlite.Connection) -> None:
    """Delete every event and consumer group (with its pending entries), inside the caller's
    write transaction. The high-water mark stays, so old ids are still refused."""
    await conn.execute("DELETE FROM pending")
    await conn.execute("DELETE FROM consumer_groups")
    await conn.execute("DELETE FROM events")
    await set_meta(conn, {EVENTS_COUNT: 0})


class SQLiteConsumerGroup:
    """A new handle first replays this consumer's own pending entries (what it was given before
    a restart and never acknowledged), then claims entries left unacknowledged past
    ``min_idle`` (by any consumer, as Redis XAUTOCLAIM does), then delivers new events.

    Every delivery is recorded in ``pending`` in the same transaction that hands it out, so two
    consumers never both get a new event and nothing is lost to a crash in between.
    """

    def __init__(
        self,
        db: Database,
        name: str,
        consumer: str,
        *,
        min_idle: float,
        poll_interval: float,
        clock: Callable[[], float] = time.time,  # wall clock: shared by processes
    ) -> None:
        self._db = db
        self._name = name
        self._consumer = consumer
        self._min_idle = min_idle
        self._poll_interval = poll_interval
        self._clock = clock
        self._replay_after: int | None = 0  # None once own pending entries are replayed

    async def create(self, start_after: str = LOG_START) -> None:
        position = event_seq(start_after)
        async with self._db.writing("creating a consumer group") as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO consumer_groups (name, last_delivered) VALUES (?, ?)",
                (self._name, position),
            )

    async def read(self, *, count: int = 100, block: float = 0.0) -> list[Event]:
        if self._replay_after is not None:
            events = await self._replay_own(count)
            if events:
                return events
            self._replay_after = None

        async def attempt() -> list[Event] | None:
            return await self._deliver(count) or None

        return await poll(attempt, block=block, interval=self._poll_interval) or []

    async def ack(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        positions = [(self._name, event_seq(i)) for i in ids]
        async with self._db.writing("acknowledging events") as conn:
            await conn.executemany("DELETE FROM pending WHERE grp = ? AND event_id = ?", positions)

    async def _replay_own(self, count: int) -> list[Event]:
        assert self._replay_after is not None
        async with self._db.writing("reading a consumer group") as conn:
            await self._last_delivered(conn)
            rows = await conn.execute_fetchall(
                _SELECT_PENDING + " AND pending.consumer = ? AND pending.event_id > ?"
                " ORDER BY pending.event_id LIMIT ?",
                (self._name, self._consumer, self._replay_after, count),
            )
            events = _decode(rows)
            await self._redeliver(conn, events)
        if events:
            self._replay_after = event_seq(events[-1].id)
        return events

    async def _deliver(self, count: int) -> list[Event]:
        if not await self._anything_to_deliver():
            return []  # checked without the write lock, so idle polling never holds up the brain
        async with self._db.writing("reading a consumer group") as conn:
            last_delivered = await self._last_delivered(conn)
            claimed = _decode(
                await conn.execute_fetchall(
                    _SELECT_PENDING + " AND pending.delivered_at <= ?"
                    " ORDER BY pending.event_id LIMIT ?",
                    (self._name, self._clock() - self._min_idle, count),
                )
            )
            if claimed:
                await self._redeliver(conn, claimed)
                return claimed
            new = _decode(
                await conn.execute_fetchall(
                    _SELECT_NEW,
                    (last_delivered, count),
                )
            )
            if new:
                now = self._clock()
                await conn.executemany(
                    "INSERT INTO pending (grp, event_id, consumer, delivered_at, deliveries)"
                    " VALUES (?, ?, ?, ?, 1)",
                    [(self._name, event_seq(e.id), self._consumer, now) for e in new],
                )
                await conn.execute(
                    "UPDATE consumer_groups SET last_delivered = ? WHERE name = ?",
                    (event_seq(new[-1].id), self._name),
                )
            return new

    async def _anything_to_deliver(self) -> bool:
        async with self._db.reading("reading a consumer group") as conn:
            if conn is None:
                raise StoreError(f"no consumer group {self._name!r}: create() it first")
            rows = list(
                await conn.execute_fetchall(
                    "SELECT (SELECT last_delivered FROM consumer_groups WHERE name = ?),"
                    " EXISTS (SELECT 1 FROM pending WHERE grp = ? AND delivered_at <= ?),"
                    " EXISTS (SELECT 1 FROM events WHERE id >"
                    " (SELECT last_delivered FROM consumer_groups WHERE name = ?))",
                    (self._name, self._name, self._clock() - self._min_idle, self._name),
                )
            )
        last_delivered, claimable, new = rows[0]
        if last_delivered is None:
            raise StoreError(f"no consumer group {self._name!r}: create() it first")
        return bool(claimable or new)

    async def _last_delivered(self, conn: aiosqlite.Connection) -> int:
        """The group's position; also drops pending entries whose events were trimmed away."""
        rows = list(
            await conn.execute_fetchall(
                "SELECT last_delivered FROM consumer_groups WHERE name = ?", (self._name,)
            )
        )
        if not rows:
            raise StoreError(f"no consumer group {self._name!r}: create() it first")
        # Trimming only ever removes the oldest events, so one range delete finds them all.
        await conn.execute(
            "DELETE FROM pending WHERE grp = ? AND event_id < (SELECT min(id) FROM events)",
            (self._name,),
        )
        return int(rows[0][0])

    async def _redeliver(self, conn: aiosqlite.Connection, events: Sequence[Event]) -> None:
        """Hand already pending entries (again) to this consumer, restarting their idle time."""
        await conn.executemany(
            "UPDATE pending SET consumer = ?, delivered_at = ?, deliveries = deliveries + 1"
            " WHERE grp = ? AND event_id = ?",
            [(self._consumer, self._clock(), self._name, event_seq(e.id)) for e in events],
        )

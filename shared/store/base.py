"""The state store and event log contract, which every backend (Redis, SQLite) fulfils.

Snapshots are named JSON documents the brain rewrites as its state changes; every write bumps
one store-wide revision and is announced to readers, so an API process can keep them in
memory. The event log is an ordered, bounded, resumable log of catalog events whose ids the
brain assigns (its outbox sequence), so a retried append can never duplicate an event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from shared import jsonutil
from shared.events import Event

# Reading "after LOG_START" reads the log from its oldest held event.
LOG_START = "0"


class StoreError(Exception):
    """Base class of the store's errors."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached (or is busy past its timeout). Retrying later may work."""


def event_seq(event_id: str) -> int:
    """The position an event id stands for. Ids are opaque on the wire; inside they count up.

    Raises ValueError for text that is not an event id.
    """
    if not event_id.isascii() or not event_id.isdigit():
        raise ValueError(f"not an event id: {event_id!r}")
    return int(event_id)


@dataclass(frozen=True, slots=True)
class LogBounds:
    """The oldest and newest event ids the log still holds (None when it holds none)."""

    oldest: str | None
    newest: str | None

    def covers(self, after: str) -> bool:
        """Whether reading after this id loses nothing: no event after it was trimmed, and it is
        not an id the log has never reached (newer than its newest, or from a reset log).

        Ids may have gaps (a rolled-back sequence value), so this can only err on the side of
        saying "incomplete"; it never says complete when an event was trimmed away.
        """
        position = event_seq(after)
        if self.newest is None:
            return position == 0
        if position > event_seq(self.newest):
            return False
        assert self.oldest is not None
        return position >= event_seq(self.oldest) - 1


class EventLog(Protocol):
    async def append(self, events: Sequence[Event]) -> list[str]:
        """Append events in id order; returns the ids appended.

        An event whose id is not newer than the newest ever appended is refused (skipped, not
        an error), so a retry after a lost acknowledgement never duplicates an event.
        """
        ...

    async def read(self, after: str, *, count: int = 100, block: float = 0.0) -> list[Event]:
        """Up to ``count`` events with ids after ``after``, oldest first. When there are none
        yet, wait up to ``block`` seconds for some (0: do not wait)."""
        ...

    async def bounds(self) -> LogBounds: ...

    def group(self, name: str, consumer: str, *, min_idle: float = 30.0) -> ConsumerGroup:
        """A handle on consumer group ``name`` as ``consumer`` (a name stable across restarts).
        Events another consumer left unacknowledged for ``min_idle`` seconds are claimed."""
        ...


class ConsumerGroup(Protocol):
    """At-least-once delivery to a side consumer (the Telegram relay, ...) across restarts.

    A consumer that restarts first gets back what it had been given and not acknowledged; events
    another consumer of the group left unacknowledged for longer than ``min_idle`` are claimed.
    """

    async def create(self, start_after: str = LOG_START) -> None:
        """Create the group if it does not exist (idempotent); it starts after ``start_after``."""
        ...

    async def read(self, *, count: int = 100, block: float = 0.0) -> list[Event]: ...

    async def ack(self, ids: Sequence[str]) -> None: ...


class SnapshotName(StrEnum):
    SYSTEM = "system"
    PORTFOLIO = "portfolio"
    POSITIONS = "positions"
    RISK = "risk"
    MARKET = "market"
    STRATEGY = "strategy"
    AI_USAGE = "ai_usage"
    BENCHMARKS = "benchmarks"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True, slots=True)
class Snapshot:
    name: SnapshotName
    revision: int  # the store revision of the write that set it
    data: Any


@dataclass(frozen=True, slots=True)
class SnapshotSet:
    """Documents and the store revision they bring a reader up to.

    ``complete`` is True when ``docs`` holds every document the store has (a reader should
    replace its cache, not merge into it): a first read, or a reader that fell too far behind
    or outlived a store reset.
    """

    revision: int
    docs: Mapping[SnapshotName, Snapshot]
    complete: bool


class SnapshotStore(Protocol):
    async def write(self, docs: Mapping[SnapshotName, Any]) -> int:
        """Write several documents atomically under one new revision, announce it, return it."""
        ...

    async def read(self) -> SnapshotSet:
        """Every document, complete."""
        ...

    async def changes(self, after: int, *, block: float = 0.0) -> SnapshotSet:
        """The documents written after revision ``after`` (newest version of each), waiting up
        to ``block`` seconds for one. Empty docs and ``revision == after`` when nothing came."""
        ...


class Store(Protocol):
    """One backend's snapshots and event log, opened together and closed together."""

    @property
    def events(self) -> EventLog: ...

    @property
    def snapshots(self) -> SnapshotStore: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""
        ...

    async def clear(self) -> None:
        """Delete every event, snapshot document and consumer group (for a reset). Counters stay:
        the event log's high-water mark and the snapshot revision keep counting up, so a reader
        that resumes from an old id or revision is told plainly that it must start over rather
        than being handed mismatched data.

        The clear itself uses up a snapshot revision, so a follower of ``changes`` from before
        it is handed a complete set (replacing, not merging into, its stale documents) at the
        latest once documents are written again.
        """
        ...

    async def close(self) -> None: ...


def encode_docs(docs: Mapping[SnapshotName, Any]) -> dict[str, bytes]:
    """Validate snapshot names and encode each document once, for any backend."""
    return {SnapshotName(name).value: jsonutil.dumps(data) for name, data in docs.items()}

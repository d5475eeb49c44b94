"""Publishing the brain's state to the store without ever making trading wait for it.

The engine hands over its newest snapshot documents after each step; a background task writes
the newest ones at most every ``interval`` seconds (wall time), so a full-speed replay does not
write thousands of states nobody can see, and a store outage only delays them. The heartbeat
is its own task, on wall time, so a stalled feed still shows a living brain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.heartbeat import heartbeat_document
from shared.store.base import SnapshotName, SnapshotStore, StoreUnavailable
from shared.timeutil import utc_now

log = logging.getLogger(__name__)

Docs = Mapping[SnapshotName, Any]


class SnapshotPublisher:
    def __init__(self, snapshots: SnapshotStore, *, interval: float, retry_max: float) -> None:
        self._snapshots = snapshots
        self._interval = interval
        self._retry_max = retry_max
        self._latest: dict[SnapshotName, Any] = {}
        self._changed = asyncio.Event()
        self._written = 0

    @property
    def written(self) -> int:
        """How many writes reached the store (for tests and benchmarks)."""
        return self._written

    def update(self, docs: Docs) -> None:
        """Hand over the newest documents; never blocks, never fails."""
        self._latest.update(docs)
        self._changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Write what changed until ``stop``; then one last write of the final state."""
        while not stop.is_set():
            await _first_of(stop.wait(), self._changed.wait())
            if stop.is_set():
                break
            await self._write_pending()
            await _first_of(stop.wait(), asyncio.sleep(self._interval))
        await self.flush()

    async def flush(self) -> None:
        """Write whatever is pending now (retrying a failed write a few times)."""
        for attempt in range(3):
            if await self._write_pending():
                return
            await asyncio.sleep(min(0.2 * 2**attempt, self._retry_max))
        log.warning("final snapshots not written: the store is unavailable")

    async def _write_pending(self) -> bool:
        if not self._changed.is_set():
            return True
        self._changed.clear()
        docs, self._latest = self._latest, {}
        try:
            await self._snapshots.write(docs)
        except StoreUnavailable as exc:
            # Keep them (unless newer ones arrived meanwhile) and try again later.
            self._latest = {**docs, **self._latest}
            self._changed.set()
            log.warning("snapshots not written (%s); retrying", exc)
            await asyncio.sleep(self._retry_max / 10)
            return False
        self._written += 1
        return True


class Heartbeat:
    """Writes the ``heartbeat`` document every ``interval`` wall seconds."""

    def __init__(
        self,
        snapshots: SnapshotStore,
        interval: float,
        market_time: Callable[[], datetime | None],
    ) -> None:
        self._snapshots = snapshots
        self._interval = interval
        self._market_time = market_time

    def document(self) -> dict[str, Any]:
        return heartbeat_document(utc_now(), self._market_time())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._snapshots.write({SnapshotName.HEARTBEAT: self.document()})
            except StoreUnavailable as exc:
                log.warning("heartbeat not written: %s", exc)
            await _first_of(stop.wait(), asyncio.sleep(self._interval))


async def _first_of(*awaitables: Any) -> None:
    """Wait until the first of these finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()

"""The snapshots of one API process, in memory, and the one task that keeps them current.

``SnapshotFollower`` reads every document once, then follows the store's change announcements
with one blocking ``changes()`` call at a time; a request for a snapshot reads ``SnapshotCache``
and does no I/O. When the store fails, the follower backs off (doubling up to a cap) and, once
the store answers again, reads every document afresh, so an outage of any length, or a store
reset under it, never leaves the cache merged from a stale revision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from shared import jsonutil
from shared.store.base import SnapshotName, SnapshotSet, SnapshotStore, StoreUnavailable

log = logging.getLogger(__name__)

DEFAULT_MODE = "paper"


@dataclass(frozen=True, slots=True)
class CachedSnapshot:
    """A document as served: its data, the store revision that set it, and its JSON, once."""

    name: SnapshotName
    revision: int
    data: Any
    encoded: bytes


class SnapshotCache:
    """The current snapshot documents of this process, as the follower last saw them."""

    def __init__(self) -> None:
        self._docs: dict[SnapshotName, CachedSnapshot] = {}
        self.revision = 0  # the store revision the cache is up to
        self.loaded = False  # a complete read has been applied at least once
        self.connected = False  # the follower's last store call succeeded
        self.mode = DEFAULT_MODE
        self.applied_at: float | None = None  # time.monotonic() of the last change applied

    def get(self, name: SnapshotName) -> CachedSnapshot | None:
        return self._docs.get(name)

    def names(self) -> list[SnapshotName]:
        return sorted(self._docs)

    def apply(self, snapshots: SnapshotSet) -> bool:
        """Bring the cache up to ``snapshots``; returns whether anything changed."""
        if snapshots.complete:
            self._docs = {}
            self.loaded = True
        elif snapshots.revision <= self.revision or not snapshots.docs:
            return False
        for name, snapshot in snapshots.docs.items():
            encoded = jsonutil.dumps(snapshot.data)
            self._docs[name] = CachedSnapshot(name, snapshot.revision, snapshot.data, encoded)
        self.revision = snapshots.revision
        self.mode = self._mode()
        self.applied_at = time.monotonic()
        return True

    def _mode(self) -> str:
        system = self._docs.get(SnapshotName.SYSTEM)
        if system is not None and isinstance(system.data, dict):
            mode = system.data.get("mode")
            if isinstance(mode, str) and mode:
                return mode
        return DEFAULT_MODE


class SnapshotFollower:
    """The process's single snapshot reader: a full read, then one blocking follow loop."""

    def __init__(
        self,
        snapshots: SnapshotStore,
        cache: SnapshotCache,
        *,
        block: float,
        retry_initial: float,
        retry_max: float,
    ) -> None:
        self._snapshots = snapshots
        self._cache = cache
        self._block = block
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._warned = False

    async def load(self) -> bool:
        """One complete read (at start-up, so the first requests find a warm cache)."""
        try:
            self._cache.apply(await self._snapshots.read())
        except StoreUnavailable as error:
            self._lost(error)
            return False
        self._cache.connected = True
        return True

    async def run(self) -> None:
        """Follow changes until cancelled; never returns on a store failure."""
        full_read = not self._cache.loaded
        delay = self._retry_initial
        while True:
            try:
                if full_read:
                    result = await self._snapshots.read()
                else:
                    result = await self._snapshots.changes(self._cache.revision, block=self._block)
            except StoreUnavailable as error:
                self._lost(error)
            except Exception:
                log.exception("snapshot follower failed; reading every snapshot again")
                self._cache.connected = False
            else:
                if self._warned:
                    log.info("snapshot store answering again (revision %d)", result.revision)
                    self._warned = False
                self._cache.connected = True
                self._cache.apply(result)
                full_read = False
                delay = self._retry_initial
                continue
            full_read = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)

    def _lost(self, error: StoreUnavailable) -> None:
        if not self._warned:  # once an outage, not once a retry
            log.warning("snapshot store unavailable, serving the last snapshots: %s", error)
            self._warned = True
        self._cache.connected = False

"""What the Data API knows, as plain data: the facade every route handler calls.

Snapshot endpoints answer from the in-memory cache (already encoded, ``RawJson``); history
endpoints query SQL; ``/v1/system`` adds liveness to the system snapshot. Anything a client
should hear about is an ``ApiError``; nothing here knows about HTTP requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.errors import ApiError, ErrorCode, brain_unavailable
from api.history import HistoryReader
from api.history_cache import EncodedList
from api.liveness import system_view
from api.params import HistoryQuery, PerformanceQuery
from api.responses import RawJson
from api.snapshots import CachedSnapshot, SnapshotCache
from shared.heartbeat import heartbeat_age
from shared.store.base import SnapshotName, Store, StoreError
from shared.timeutil import utc_now

log = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Health:
    store: str
    database: str

    @property
    def healthy(self) -> bool:
        return self.store == OK and self.database == OK

    def as_data(self) -> dict[str, str]:
        status = OK if self.healthy else UNAVAILABLE
        return {"status": status, "store": self.store, "database": self.database}


class DataFacade:
    def __init__(
        self,
        cache: SnapshotCache,
        history: HistoryReader,
        store: Store,
        *,
        stale_after: float,
        health_timeout: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._cache = cache
        self._history = history
        self._store = store
        self._stale_after = stale_after
        self._health_timeout = health_timeout
        self._clock = clock

    # Snapshots -------------------------------------------------------------------------------

    def snapshot(self, name: SnapshotName) -> RawJson:
        return RawJson(self._require(name).encoded)

    def system(self) -> dict[str, Any]:
        system = self._document(self._require(SnapshotName.SYSTEM))
        beat = self._cache.get(SnapshotName.HEARTBEAT)
        heartbeat = self._document(beat) if beat is not None else None
        return system_view(system, heartbeat, self._clock(), self._stale_after)

    def heartbeat_age(self) -> float | None:
        """Seconds since the brain's newest heartbeat, for /metrics."""
        beat = self._cache.get(SnapshotName.HEARTBEAT)
        if beat is None or not isinstance(beat.data, dict):
            return None
        return heartbeat_age(beat.data, self._clock())

    def _require(self, name: SnapshotName) -> CachedSnapshot:
        found = self._cache.get(name)
        if found is None:
            raise brain_unavailable(f"the brain has not published its {name.value} snapshot yet")
        return found

    @staticmethod
    def _document(snapshot: CachedSnapshot) -> dict[str, Any]:
        if not isinstance(snapshot.data, dict):
            log.error("the %s snapshot is not a JSON object", snapshot.name.value)
            raise ApiError(ErrorCode.INTERNAL_ERROR, "internal server error")
        return snapshot.data

    # History ---------------------------------------------------------------------------------

    async def trades(self, query: HistoryQuery) -> EncodedList:
        return await self._history.trades(query)

    async def signals(self, query: HistoryQuery) -> EncodedList:
        return await self._history.signals(query)

    async def performance(self, query: PerformanceQuery) -> EncodedList:
        return await self._history.performance(query)

    # Health ----------------------------------------------------------------------------------

    async def health(self) -> Health:
        store, database = await asyncio.gather(self._ping_store(), self._ping_database())
        return Health(store, database)

    async def _ping_store(self) -> str:
        try:
            async with asyncio.timeout(self._health_timeout):
                await self._store.ping()
        except (StoreError, TimeoutError, OSError) as error:
            log.warning("health check: store unavailable: %s", error)
            return UNAVAILABLE
        return OK

    async def _ping_database(self) -> str:
        try:
            async with asyncio.timeout(self._health_timeout):
                await self._history.ping()
        except (ApiError, TimeoutError):
            return UNAVAILABLE
        return OK

    async def revision_lag(self) -> int | None:
        """How many store revisions the cache is behind (None when the store does not answer)."""
        try:
            async with asyncio.timeout(self._health_timeout):
                newer = await self._store.snapshots.changes(self._cache.revision)
        except (StoreError, TimeoutError, OSError):
            return None
        return max(0, newer.revision - self._cache.revision)

"""What one API process holds while it serves: its clients, its cache and its follower.

``ApiRuntime.lifespan`` opens the store read-only and the read-only SQL engine, reads every
snapshot once, starts the process's single snapshot follower, and closes it all in reverse
order at shutdown. Route handlers reach it through ``request.app.state.runtime``. (The
WebSocket relay of /v1/events, the process's single event-log reader, starts and stops here
too, beside the follower.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.auth import KeyChecker
from api.events_ws import EventsEndpoint
from api.facade import DataFacade
from api.history import HistoryReader
from api.metrics import ApiMetrics
from api.responses import Envelope
from api.snapshots import SnapshotCache, SnapshotFollower
from shared.db.engine import create_engine, database_url
from shared.settings import Settings
from shared.store.base import Store
from shared.store.factory import open_store

log = logging.getLogger(__name__)


class ApiRuntime:
    def __init__(
        self,
        settings: Settings,
        *,
        cache: SnapshotCache,
        envelope: Envelope,
        metrics: ApiMetrics,
        checker: KeyChecker,
        openapi_document: bytes,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.envelope = envelope
        self.metrics = metrics
        self.checker = checker
        self.openapi_document = openapi_document
        self.events = EventsEndpoint.from_settings(
            settings.api, checker, envelope.error_parts, metrics
        )
        self._facade: DataFacade | None = None
        self._store: Store | None = None

    @property
    def facade(self) -> DataFacade:
        if self._facade is None:
            raise RuntimeError("the API runtime is not started (no lifespan has run)")
        return self._facade

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the API runtime is not started (no lifespan has run)")
        return self._store

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        api = self.settings.api
        url = database_url(self.settings)
        store = await open_store(self.settings, read_only=True)
        engine: AsyncEngine | None = None
        follower_task: asyncio.Task[None] | None = None
        history: HistoryReader | None = None
        try:
            engine = create_engine(url, read_only=True)
            history = HistoryReader(
                engine,
                timeout=api.query_timeout,
                cache_entries=api.history_cache_entries,
            )
            follower = SnapshotFollower(
                store.snapshots,
                self.cache,
                block=api.follow_block,
                retry_initial=api.retry_initial,
                retry_max=api.retry_max,
            )
            await follower.load()
            follower_task = asyncio.create_task(follower.run(), name="snapshot-follower")
            await self.events.start(store.events)
            self._store = store
            self._facade = DataFacade(
                self.cache,
                history,
                store,
                stale_after=api.stale_after,
                health_timeout=api.health_timeout,
            )
            log.info(
                "data api serving the %s store and the %s history, snapshot revision %d",
                self.settings.store.backend,
                engine.dialect.name,
                self.cache.revision,
            )
            yield
        finally:
            await self.events.stop()
            if follower_task is not None:
                follower_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower_task
            if history is not None:
                await history.close()
            if engine is not None:
                await engine.dispose()
            await store.close()
            self.metrics.close()
            self._facade = None
            self._store = None

"""The Redis backend: keys and Streams, for containers and API replicas."""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.settings import StoreSettings
from shared.store.base import EventLog, SnapshotStore
from shared.store.keys import RedisKeys
from shared.store.redis_connect import RedisClients, connect, translate_errors
from shared.store.redis_events import RedisEventLog
from shared.store.redis_snapshots import RedisSnapshotStore


class RedisStore:
    def __init__(
        self, commands: aioredis.Redis, blocking: aioredis.Redis, settings: StoreSettings
    ) -> None:
        """Wrap two clients (short commands, blocking reads); tests may pass fakeredis ones."""
        self._clients = RedisClients(commands, blocking)
        keys = RedisKeys(settings.key_prefix)
        self._events = RedisEventLog(self._clients, keys.events, settings.max_events)
        self._snapshots = RedisSnapshotStore(self._clients, keys, settings.max_snapshot_changes)

    @classmethod
    async def connect(cls, url: str, settings: StoreSettings) -> RedisStore:
        """Connect to ``url``, retrying as ``[store]`` says, and give up with StoreUnavailable."""
        clients = await connect(
            url, attempts=settings.connect_attempts, retry_delay=settings.connect_retry_delay
        )
        return cls(clients.commands, clients.blocking, settings)

    @property
    def events(self) -> EventLog:
        return self._events

    @property
    def snapshots(self) -> SnapshotStore:
        return self._snapshots

    async def ping(self) -> None:
        async with translate_errors("pinging"):
            await self._clients.commands.ping()

    async def close(self) -> None:
        await self._clients.aclose()

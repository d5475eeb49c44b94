"""The Redis backend: keys and Streams, for containers and API replicas."""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.settings import StoreSettings
from shared.store.base import EventLog, SnapshotStore
from shared.store.keys import RedisKeys
from shared.store.redis_connect import RedisClients, connect, translate_errors
from shared.store.redis_events import RedisEventLog
from shared.store.redis_snapshots import RedisSnapshotStore

# One atomic clear. The events stream is emptied with XTRIM, not deleted: Redis keeps its
# last-generated id, so an old id is still refused (a deleted stream would accept it again).
# Its consumer groups, with their pending entries, are destroyed. The snapshot revision counter
# is bumped, not deleted: the clear is a revision with no announcement, so a follower from before
# it sees a gap at the next announced write and is sent a complete set.
_CLEAR_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    for i = 1, #group, 2 do
      if group[i] == 'name' then
        redis.call('XGROUP', 'DESTROY', KEYS[1], group[i + 1])
      end
    end
  end
  redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
return redis.call('INCR', KEYS[5])
"""


class RedisStore:
    def __init__(
        self, commands: aioredis.Redis, blocking: aioredis.Redis, settings: StoreSettings
    ) -> None:
        """Wrap two clients (short commands, blocking reads); tests may pass fakeredis ones."""
        self._clients = RedisClients(commands, blocking)
        keys = RedisKeys(settings.key_prefix)
        self._keys = keys
        self._clear_script = commands.register_script(_CLEAR_SCRIPT)
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

    async def clear(self) -> None:
        keys = self._keys
        async with translate_errors("clearing the store"):
            await self._clear_script(
                keys=[
                    keys.events,
                    keys.snapshots,
                    keys.snapshot_revisions,
                    keys.snapshot_changes,
                    keys.snapshot_revision,
                ]
            )

    async def close(self) -> None:
        await self._clients.aclose()

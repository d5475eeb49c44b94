"""Snapshots in Redis: a hash of documents, a revision counter, and an internal stream that
announces every write (entry id = revision, fields = the documents written) so an API process
can follow changes with one blocking read instead of polling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared import jsonutil
from shared.store.base import Snapshot, SnapshotName, SnapshotSet, encode_docs
from shared.store.keys import RedisKeys
from shared.store.redis_connect import RedisClients, block_ms, stream_entries, translate_errors

# One atomic write: bump the revision, set every document with it, announce it.
_WRITE_SCRIPT = """
local revision = redis.call('INCR', KEYS[1])
local announced = {}
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], revision)
  announced[#announced + 1] = ARGV[i]
  announced[#announced + 1] = ARGV[i + 1]
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], revision .. '-0', unpack(announced))
return revision
"""

# Announcements read per call by a follower; more simply arrive on its next call.
_CHANGES_BATCH = 1000


def _revision_of(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[0])


class RedisSnapshotStore:
    def __init__(self, clients: RedisClients, keys: RedisKeys, max_changes: int) -> None:
        self._clients = clients
        self._keys = keys
        self._max_changes = max_changes
        self._write_script = clients.commands.register_script(_WRITE_SCRIPT)

    async def write(self, docs: Mapping[SnapshotName, Any]) -> int:
        encoded = encode_docs(docs)
        if not encoded:
            raise ValueError("write needs at least one document")
        args: list[Any] = [self._max_changes]
        for name, data in encoded.items():
            args += [name, data]
        keys = self._keys
        async with translate_errors("writing snapshots"):
            revision = await self._write_script(
                keys=[
                    keys.snapshot_revision,
                    keys.snapshots,
                    keys.snapshot_revisions,
                    keys.snapshot_changes,
                ],
                args=args,
            )
        return int(revision)

    async def read(self) -> SnapshotSet:
        keys = self._keys
        async with translate_errors("reading snapshots"):
            pipe = self._clients.commands.pipeline(transaction=True)
            pipe.get(keys.snapshot_revision)
            pipe.hgetall(keys.snapshots)
            pipe.hgetall(keys.snapshot_revisions)
            revision, raw_docs, revisions = await pipe.execute()
        docs = {
            SnapshotName(name.decode()): Snapshot(
                SnapshotName(name.decode()), int(revisions.get(name, 0)), jsonutil.loads(raw)
            )
            for name, raw in raw_docs.items()
        }
        return SnapshotSet(int(revision or 0), docs, complete=True)

    async def changes(self, after: int, *, block: float = 0.0) -> SnapshotSet:
        wait = block_ms(block)
        client = self._clients.blocking if wait else self._clients.commands
        async with translate_errors("following snapshots"):
            reply = await client.xread(
                {self._keys.snapshot_changes: f"{after}-0"}, count=_CHANGES_BATCH, block=wait
            )
            entries = stream_entries(reply)
            if not entries:
                current = int(await self._clients.commands.get(self._keys.snapshot_revision) or 0)
                # Behind a reset (lower) or a clear (higher, with nothing announced): start over.
                if current != after:
                    return await self.read()
                return SnapshotSet(after, {}, complete=False)
        if _revision_of(entries[0][0]) > after + 1:  # announcements we missed were trimmed
            return await self.read()
        docs: dict[SnapshotName, Snapshot] = {}
        for entry_id, fields in entries:
            revision = _revision_of(entry_id)
            for name, raw in (fields or {}).items():
                key = SnapshotName(name.decode())
                docs[key] = Snapshot(key, revision, jsonutil.loads(raw))
        return SnapshotSet(_revision_of(entries[-1][0]), docs, complete=False)

"""Every Redis key and stream name, in one place. All sit under a configurable prefix
(``[store] key_prefix``) so two brains, or two test runs, can share one Redis."""

from __future__ import annotations

from dataclasses import dataclass

# The public event stream: what WebSocket clients and side consumers read.
EVENTS_STREAM = "events"
# Snapshot documents (hash name -> JSON) and the revision that last set each (hash name -> int).
SNAPSHOTS_HASH = "snapshots"
SNAPSHOT_REVISIONS_HASH = "snapshots:revisions"
# The store-wide snapshot revision counter.
SNAPSHOT_REVISION = "snapshots:revision"
# Internal stream announcing each snapshot write (entry id = revision), for API caches.
SNAPSHOT_CHANGES_STREAM = "snapshots:changes"


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    @property
    def events(self) -> str:
        return self._key(EVENTS_STREAM)

    @property
    def snapshots(self) -> str:
        return self._key(SNAPSHOTS_HASH)

    @property
    def snapshot_revisions(self) -> str:
        return self._key(SNAPSHOT_REVISIONS_HASH)

    @property
    def snapshot_revision(self) -> str:
        return self._key(SNAPSHOT_REVISION)

    @property
    def snapshot_changes(self) -> str:
        return self._key(SNAPSHOT_CHANGES_STREAM)

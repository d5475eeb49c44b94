"""The SQLite backend: one file, no server (the embedded default).

The brain opens it writable; the API opens it with ``read_only=True`` (it never writes brain
data) and may do so before the brain has created the file: it then reads an empty store, and
``ping`` raises StoreUnavailable, until the file and its schema appear. Side consumers open it
writable but write only their own consumer-group bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

from shared.settings import StoreSettings
from shared.store._sqlite import Database, ReadOnlyStoreError
from shared.store.base import EventLog, SnapshotStore
from shared.store.sqlite_events import SQLiteEventLog, clear_events
from shared.store.sqlite_snapshots import SQLiteSnapshotStore, clear_snapshots

__all__ = ["ReadOnlyStoreError", "SQLiteStore"]


class SQLiteStore:
    def __init__(self, db: Database, settings: StoreSettings) -> None:
        """Wrap an opened Database; use ``SQLiteStore.open`` to make one."""
        self._db = db
        self._events = SQLiteEventLog(
            db, max_events=settings.max_events, poll_interval=settings.poll_interval
        )
        self._snapshots = SQLiteSnapshotStore(db, poll_interval=settings.poll_interval)

    @classmethod
    async def open(cls, settings: StoreSettings, *, read_only: bool = False) -> SQLiteStore:
        """Open ``settings.sqlite_path``; a writer creates its directory and schema.

        Raises StoreUnavailable when the file cannot be opened (or is locked past the busy
        timeout while the schema is created).
        """
        db = Database(Path(settings.sqlite_path), read_only=read_only)
        await db.open()
        return cls(db, settings)

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def read_only(self) -> bool:
        return self._db.read_only

    @property
    def events(self) -> EventLog:
        return self._events

    @property
    def snapshots(self) -> SnapshotStore:
        return self._snapshots

    async def ping(self) -> None:
        await self._db.ping()

    async def clear(self) -> None:
        """Raises ReadOnlyStoreError on a store opened read-only."""
        async with self._db.writing("clearing the store") as conn:
            await clear_events(conn)
            await clear_snapshots(conn)

    async def close(self) -> None:
        await self._db.close()

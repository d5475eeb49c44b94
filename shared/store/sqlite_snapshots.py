"""Snapshots in SQLite: one row per document, stamped with the store revision of the write that
set it, and the store-wide revision in ``meta``. A follower asks for rows with a revision above
the one it has (an indexed range), so it gets the newest version of each changed document."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import aiosqlite

from shared import jsonutil
from shared.store._sqlite import (
    SNAPSHOT_REVISION,
    SNAPSHOTS_CLEARED,
    Database,
    meta_value,
    meta_values,
    poll,
    set_meta,
)
from shared.store.base import Snapshot, SnapshotName, SnapshotSet, encode_docs


def _docs(rows: Iterable[aiosqlite.Row]) -> dict[SnapshotName, Snapshot]:
    docs = {}
    for name, data, revision in rows:
        key = SnapshotName(name)
        docs[key] = Snapshot(key, int(revision), jsonutil.loads(data))
    return docs


class SQLiteSnapshotStore:
    def __init__(self, db: Database, *, poll_interval: float) -> None:
        self._db = db
        self._poll_interval = poll_interval

    async def write(self, docs: Mapping[SnapshotName, Any]) -> int:
        encoded = encode_docs(docs)
        if not encoded:
            raise ValueError("write needs at least one document")
        async with self._db.writing("writing snapshots") as conn:
            revision = await meta_value(conn, SNAPSHOT_REVISION) + 1
            await conn.executemany(
                "INSERT INTO snapshots (name, data, revision) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE"
                " SET data = excluded.data, revision = excluded.revision",
                [(name, data, revision) for name, data in encoded.items()],
            )
            await set_meta(conn, {SNAPSHOT_REVISION: revision})
        return revision

    async def read(self) -> SnapshotSet:
        async with self._db.reading("reading snapshots", consistent=True) as conn:
            if conn is None:
                return SnapshotSet(0, {}, complete=True)
            return await self._read_all(conn)

    async def changes(self, after: int, *, block: float = 0.0) -> SnapshotSet:
        async def attempt() -> SnapshotSet | None:
            return await self._changes_once(after)

        found = await poll(attempt, block=block, interval=self._poll_interval)
        return found or SnapshotSet(after, {}, complete=False)

    async def _changes_once(self, after: int) -> SnapshotSet | None:
        async with self._db.reading("following snapshots") as conn:
            # One cheap lookup per poll; the documents are read only once something changed.
            current = 0 if conn is None else await meta_value(conn, SNAPSHOT_REVISION)
        if current == after:
            return None
        async with self._db.reading("following snapshots", consistent=True) as conn:
            if conn is None:  # a reader that is ahead of a store not created yet
                return SnapshotSet(0, {}, complete=True)
            revision, cleared = await meta_values(conn, SNAPSHOT_REVISION, SNAPSHOTS_CLEARED)
            # The file was reset or recreated, or the store cleared since ``after``: start over.
            if revision < after or after < cleared:
                return await self._read_all(conn)
            if revision == after:
                return None
            rows = await conn.execute_fetchall(
                "SELECT name, data, revision FROM snapshots WHERE revision > ?", (after,)
            )
        return SnapshotSet(revision, _docs(rows), complete=False)

    async def _read_all(self, conn: aiosqlite.Connection) -> SnapshotSet:
        revision = await meta_value(conn, SNAPSHOT_REVISION)
        rows = await conn.execute_fetchall("SELECT name, data, revision FROM snapshots")
        return SnapshotSet(revision, _docs(rows), complete=True)


async def clear_snapshots(conn: aiosqlite.Connection) -> None:
    """Delete every document, inside the caller's write transaction. The clear uses up a
    revision of its own and records it, so a follower from before it is sent a complete set."""
    revision = await meta_value(conn, SNAPSHOT_REVISION) + 1
    await conn.execute("DELETE FROM snapshots")
    await set_meta(conn, {SNAPSHOT_REVISION: revision, SNAPSHOTS_CLEARED: revision})

"""The SQLite store's file: opening it, its schema, transactions, error translation, polling.

Several processes share one file: the brain writes events and snapshots, side consumers write
only their consumer-group bookkeeping, API readers only read (``mode=ro``). WAL lets readers
run beside the single writer; every write is one short ``BEGIN IMMEDIATE`` transaction, so a
read-modify-write never races another process, and waits for the write lock are bounded by
``busy_timeout``. A read-only handle opens the file lazily: until the writer has created it
(file and schema), reads see an empty store and ``ping`` reports it unavailable. It also
reopens the file when it was deleted or replaced (a reset), rather than read a dead inode.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TypeVar

import aiosqlite

from shared.store.base import StoreError, StoreUnavailable

T = TypeVar("T")

# The longest one read may wait for data (the Redis backend allows the same).
MAX_BLOCK_SECONDS = 60.0
BUSY_TIMEOUT_SECONDS = 5.0
SCHEMA_VERSION = 1

# meta keys: the newest event id ever appended (never goes back, even when rows are trimmed or
# deleted), how many events the table holds (so appends need no COUNT(*)), the snapshot revision,
# and the revision a clear used up (0 until one; followers from before it must start over).
EVENTS_HIGH_WATER = "events_high_water"
EVENTS_COUNT = "events_count"
SNAPSHOT_REVISION = "snapshot_revision"
SNAPSHOTS_CLEARED = "snapshots_cleared"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " data TEXT NOT NULL, timestamp TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS consumer_groups (name TEXT PRIMARY KEY,"
    " last_delivered INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS pending (grp TEXT NOT NULL, event_id INTEGER NOT NULL,"
    " consumer TEXT NOT NULL, delivered_at REAL NOT NULL, deliveries INTEGER NOT NULL,"
    " PRIMARY KEY (grp, event_id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS pending_by_consumer ON pending (grp, consumer, event_id)",
    "CREATE TABLE IF NOT EXISTS snapshots (name TEXT PRIMARY KEY, data BLOB NOT NULL,"
    " revision INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS snapshots_by_revision ON snapshots (revision)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


class ReadOnlyStoreError(StoreError):
    """A write was attempted through a store opened read-only. Retrying will not help."""


def _unavailable(exc: BaseException) -> bool:
    # OperationalError: locked past the busy timeout, cannot open, disk I/O. A bare
    # DatabaseError: "file is not a database" and the like. Integrity errors are bugs.
    return isinstance(exc, sqlite3.OperationalError | OSError) or type(exc) is sqlite3.DatabaseError


class Database:
    """One aiosqlite connection to the store file. A lock serialises its use within the process,
    so one coroutine's transaction never takes in another coroutine's statements."""

    def __init__(
        self, path: Path, *, read_only: bool, busy_timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self._path = path
        self._read_only = read_only
        self._busy_timeout = busy_timeout
        self._conn: aiosqlite.Connection | None = None
        self._schema_seen = not read_only  # a writer creates the schema when it opens
        self._file_id: tuple[int, int] | None = None  # (device, inode) a reader has open
        self._closed = False
        self._lock = asyncio.Lock()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def read_only(self) -> bool:
        return self._read_only

    async def open(self) -> None:
        """A writer connects now and creates the schema; a reader connects if the file exists."""
        async with self._lock, self._translate("opening"):
            if self._read_only:
                try:
                    await self._reader_connection()
                except BaseException:
                    await self._drop_connection()  # nobody would be left to close it
                    raise
                return
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = await self._connect(str(self._path), uri=False)
            try:
                await self._enable_wal(conn)
                await conn.execute("PRAGMA synchronous = NORMAL")
                await conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    await conn.execute(statement)
                await conn.executemany(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0)",
                    [(EVENTS_HIGH_WATER,), (EVENTS_COUNT,), (SNAPSHOT_REVISION,)],
                )
                await conn.execute("COMMIT")
            except BaseException:
                await conn.close()
                raise
            self._conn = conn

    @asynccontextmanager
    async def reading(
        self, action: str, *, consistent: bool = False
    ) -> AsyncIterator[aiosqlite.Connection | None]:
        """The connection for reads, or None while a read-only store's file or schema does not
        exist yet. ``consistent`` wraps the reads in one transaction (one WAL snapshot)."""
        async with self._lock, self._translate(action):
            conn = await self._reader_connection() if self._read_only else self._writer()
            if conn is None or not consistent:
                yield conn
                return
            await conn.execute("BEGIN")
            try:
                yield conn
            finally:
                await _end(conn, "COMMIT")

    @asynccontextmanager
    async def writing(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction, holding the file's write lock from its start."""
        if self._read_only:
            raise ReadOnlyStoreError(f"{action}: the store at {self._path} was opened read-only")
        async with self._lock, self._translate(action):
            conn = self._writer()
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                await conn.execute("COMMIT")
            except BaseException:
                await _end(conn, "ROLLBACK")
                raise

    async def ping(self) -> None:
        async with self.reading("pinging") as conn:
            if conn is None:
                raise StoreUnavailable(f"the store at {self._path} has not been created yet")
            # Reads page 1, so a file that is not a database fails here, not on a later read.
            await conn.execute_fetchall("SELECT count(*) FROM sqlite_master")

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            await self._drop_connection()

    def _writer(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError(f"the store at {self._path} is closed")
        return self._conn

    async def _reader_connection(self) -> aiosqlite.Connection | None:
        if self._closed:
            raise StoreError(f"the store at {self._path} is closed")
        # Stat before connecting: a file replaced in between is then noticed on the next call.
        file_id = _file_id(self._path)
        if self._conn is not None and file_id != self._file_id:
            # Deleted or replaced (a reset): an open connection would keep reading the old inode.
            await self._drop_connection()
        if self._conn is None:
            if file_id is None:
                return None
            self._conn = await self._connect(f"{self._path.resolve().as_uri()}?mode=ro", uri=True)
            self._file_id = file_id
        if not self._schema_seen:
            # The writer creates every table in one transaction, so "meta" stands for them all.
            rows = await self._conn.execute_fetchall(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            )
            self._schema_seen = bool(list(rows))
        return self._conn if self._schema_seen else None

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._schema_seen = not self._read_only
        if conn is not None:
            await conn.close()

    async def _enable_wal(self, conn: aiosqlite.Connection) -> None:
        """Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is
        locked" at once, without its busy handler, when another process opens the same new file
        at that moment: retry within the busy timeout."""
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                await conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.01)

    async def _connect(self, database: str, *, uri: bool) -> aiosqlite.Connection:
        # isolation_level=None: no implicit transactions; this module issues BEGIN itself.
        conn = await aiosqlite.connect(
            database, uri=uri, isolation_level=None, timeout=self._busy_timeout
        )
        try:
            await conn.execute(f"PRAGMA busy_timeout = {round(self._busy_timeout * 1000)}")
        except BaseException:
            await conn.close()  # its worker thread would otherwise keep the process alive
            raise
        return conn

    @asynccontextmanager
    async def _translate(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            if _unavailable(exc):
                message = f"sqlite store {self._path} unusable while {action}: {exc}"
                raise StoreUnavailable(message) from exc
            raise


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


async def _end(conn: aiosqlite.Connection, statement: str) -> None:
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            await conn.execute(statement)


async def meta_value(conn: aiosqlite.Connection, key: str) -> int:
    rows = list(await conn.execute_fetchall("SELECT value FROM meta WHERE key = ?", (key,)))
    return int(rows[0][0]) if rows else 0


async def meta_values(conn: aiosqlite.Connection, *keys: str) -> list[int]:
    """Several meta values in one statement (each statement is a trip to the worker thread)."""
    rows = await conn.execute_fetchall("SELECT key, value FROM meta")  # a handful of rows
    found = {key: int(value) for key, value in rows}
    return [found.get(key, 0) for key in keys]


async def set_meta(conn: aiosqlite.Connection, values: Mapping[str, int]) -> None:
    await conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        values.items(),
    )


def check_block(block: float) -> None:
    if not 0 <= block <= MAX_BLOCK_SECONDS:
        raise ValueError(f"block must be between 0 and {MAX_BLOCK_SECONDS} seconds, got {block}")


async def poll(
    attempt: Callable[[], Awaitable[T | None]], *, block: float, interval: float
) -> T | None:
    """Call ``attempt`` until it returns something, for up to ``block`` seconds (at least once).

    SQLite has no cross-process notification, so waiting readers look every ``interval``.
    """
    check_block(block)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + block
    while True:
        result = await attempt()
        remaining = deadline - loop.time()
        if result is not None or remaining <= 0:
            return result
        await asyncio.sleep(min(interval, remaining))

"""What only the SQLite backend has: a file shared by processes, read-only handles, a
high-water mark and pending entries that live in the file, busy and broken files."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from shared.settings import StoreSettings
from shared.store._sqlite import Database
from shared.store.base import LOG_START, LogBounds, SnapshotName, StoreError, StoreUnavailable
from shared.store.sqlite_backend import ReadOnlyStoreError, SQLiteStore
from tests.test_store_contract import ids, make_events, read_all

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(store_settings: StoreSettings) -> StoreSettings:
    return dataclasses.replace(store_settings, backend="sqlite", max_events=100)


@pytest.fixture
async def writer(settings: StoreSettings) -> AsyncIterator[SQLiteStore]:
    store = await SQLiteStore.open(settings)
    yield store
    await store.close()


@pytest.fixture
async def reader(settings: StoreSettings) -> AsyncIterator[SQLiteStore]:
    store = await SQLiteStore.open(settings, read_only=True)
    yield store
    await store.close()


def file_rows(path: str, query: str) -> list[tuple[object, ...]]:
    """Look into the file behind the store's back."""
    with closing(sqlite3.connect(path)) as conn, conn:
        return list(conn.execute(query))


def exists(path: str) -> bool:
    return Path(path).exists()


def remove_store_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


def write_garbage(path: str) -> None:
    Path(path).write_bytes(b"this is not a database file, not at all" * 100)


# --- read-only handles -----------------------------------------------------------------------


async def test_a_read_only_store_reads_what_the_writer_wrote(
    writer: SQLiteStore, reader: SQLiteStore
) -> None:
    await writer.events.append(make_events(1, 5))
    revision = await writer.snapshots.write({SnapshotName.RISK: {"halted": False}})
    assert ids(await read_all(reader)) == ["1", "2", "3", "4", "5"]
    assert await reader.events.bounds() == LogBounds("1", "5")
    snapshots = await reader.snapshots.read()
    assert snapshots.revision == revision
    assert snapshots.docs[SnapshotName.RISK].data == {"halted": False}
    await reader.ping()


async def test_a_read_only_store_cannot_write_and_changes_nothing(
    writer: SQLiteStore, reader: SQLiteStore
) -> None:
    await writer.events.append(make_events(1, 3))
    revision = await writer.snapshots.write({SnapshotName.SYSTEM: {"status": "running"}})
    with pytest.raises(ReadOnlyStoreError):
        await reader.events.append(make_events(4, 4))
    with pytest.raises(ReadOnlyStoreError):
        await reader.snapshots.write({SnapshotName.SYSTEM: {"status": "hacked"}})
    group = reader.events.group("g", "c")
    with pytest.raises(ReadOnlyStoreError):
        await group.create()
    with pytest.raises(ReadOnlyStoreError):
        await group.read()
    assert await writer.events.bounds() == LogBounds("1", "3")
    snapshots = await writer.snapshots.read()
    assert snapshots.revision == revision
    assert snapshots.docs[SnapshotName.SYSTEM].data == {"status": "running"}
    assert file_rows(writer.path.as_posix(), "SELECT count(*) FROM consumer_groups") == [(0,)]


async def test_a_reader_opened_before_the_writer_sees_an_empty_store_until_it_exists(
    settings: StoreSettings,
) -> None:
    reader = await SQLiteStore.open(settings, read_only=True)
    try:
        assert not exists(settings.sqlite_path)  # a reader never creates the file
        assert await reader.events.read(LOG_START) == []
        assert await reader.events.bounds() == LogBounds(None, None)
        empty = await reader.snapshots.read()
        assert (empty.revision, dict(empty.docs), empty.complete) == (0, {}, True)
        assert (await reader.snapshots.changes(0)).revision == 0
        with pytest.raises(StoreUnavailable, match="not been created yet"):
            await reader.ping()
        waiting = asyncio.create_task(reader.events.read(LOG_START, block=10))
        writer = await SQLiteStore.open(settings)
        try:
            await writer.events.append(make_events(1, 2))
            assert ids(await asyncio.wait_for(waiting, 5)) == ["1", "2"]
            await reader.ping()
        finally:
            await writer.close()
    finally:
        await reader.close()


async def test_a_reader_follows_a_reset_file(settings: StoreSettings, reader: SQLiteStore) -> None:
    writer = await SQLiteStore.open(settings)
    for n in range(3):
        await writer.snapshots.write({SnapshotName.HEARTBEAT: {"n": n}})
    assert (await reader.snapshots.read()).revision == 3
    await writer.close()
    remove_store_files(settings.sqlite_path)
    writer = await SQLiteStore.open(settings)
    try:
        await writer.snapshots.write({SnapshotName.SYSTEM: {"status": "fresh"}})
        changes = await reader.snapshots.changes(3)
        assert changes.complete
        assert changes.revision == 1
        assert {name: snap.data for name, snap in changes.docs.items()} == {
            SnapshotName.SYSTEM: {"status": "fresh"}
        }
    finally:
        await writer.close()


# --- several writers, several processes ------------------------------------------------------


async def test_two_writers_in_one_process_never_duplicate_an_event(
    settings: StoreSettings,
) -> None:
    settings = dataclasses.replace(settings, max_events=1000)
    first, second = [await SQLiteStore.open(settings) for _ in range(2)]
    try:
        # Both try every id, in overlapping batches: each id is taken exactly once.
        batches = [make_events(start, start + 9) for start in range(1, 200, 5)]
        results = await asyncio.gather(
            *(store.events.append(batch) for batch in batches for store in (first, second))
        )
        accepted = [event_id for result in results for event_id in result]
        held = ids(await read_all(second))
        assert held == sorted(accepted, key=int)
        assert held == sorted(set(held), key=int)
        assert held[-1] == "205"
    finally:
        await first.close()
        await second.close()


async def _worker(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.sqlite_worker",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )


async def _result(process: asyncio.subprocess.Process) -> list[str]:
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    return [str(i) for i in json.loads(stdout.decode().splitlines()[-1])]


async def test_writer_processes_and_a_reader_process_share_the_file(
    settings: StoreSettings,
) -> None:
    settings = dataclasses.replace(settings, max_events=100_000)
    as_json = json.dumps(dataclasses.asdict(settings))
    # Ids beyond any the writers' clocks will reach: it tells the reader everything is in.
    sentinel = str((time.time_ns() // 1000 + 3_600_000_000) * 2)
    # The reader starts before the file exists, so it also opens it lazily.
    reader = await _worker("read", as_json, sentinel)
    assert reader.stdout is not None
    assert await asyncio.wait_for(reader.stdout.readline(), 30) == b"ready\n"
    writers = [await _worker("append", as_json, str(parity), "150") for parity in (0, 1)]
    accepted = [await _result(process) for process in writers]
    assert all(accepted), "both writers got events in"
    store = await SQLiteStore.open(settings)
    try:
        last = dataclasses.replace(make_events(1, 1)[0], id=sentinel)
        assert await store.events.append([last]) == [sentinel]
    finally:
        await store.close()
    assert await _result(reader) == [*sorted(accepted[0] + accepted[1], key=int), sentinel]


# --- retention and the high-water mark -------------------------------------------------------


async def test_trimming_keeps_the_newest_max_events(writer: SQLiteStore) -> None:
    await writer.events.append(make_events(1, 100))
    await writer.events.append(make_events(101, 110))
    # Up to 10% over max_events is let be, so a trim is paid for once per many appends.
    assert await writer.events.bounds() == LogBounds("1", "110")
    await writer.events.append(make_events(111, 111))
    assert await writer.events.bounds() == LogBounds("12", "111")
    assert ids(await read_all(writer)) == [str(n) for n in range(12, 112)]
    await writer.events.append(make_events(112, 1111))
    assert await writer.events.bounds() == LogBounds("1012", "1111")
    assert len(await read_all(writer)) == 100


async def test_the_high_water_mark_outlives_trimming_deleting_and_reopening(
    settings: StoreSettings, writer: SQLiteStore
) -> None:
    await writer.events.append(make_events(1, 300))
    assert (await writer.events.bounds()).oldest == "201"
    assert await writer.events.append(make_events(150, 150)) == []  # its row was trimmed
    await writer.close()
    # Even with every row gone, an old id never gets back in.
    with closing(sqlite3.connect(settings.sqlite_path)) as conn, conn:
        conn.execute("DELETE FROM events")
    reopened = await SQLiteStore.open(settings)
    try:
        assert await reopened.events.append(make_events(299, 300)) == []
        assert await reopened.events.append(make_events(300, 301)) == ["301"]
        assert await reopened.events.bounds() == LogBounds("301", "301")
    finally:
        await reopened.close()


# --- consumer groups -------------------------------------------------------------------------


async def test_a_consumer_group_survives_reopening(settings: StoreSettings) -> None:
    store = await SQLiteStore.open(settings)
    await store.events.append(make_events(1, 5))
    group = store.events.group("telegram", "relay")
    await group.create()
    assert ids(await group.read(count=3)) == ["1", "2", "3"]
    await group.ack(["1"])
    await store.close()

    store = await SQLiteStore.open(settings)
    try:
        group = store.events.group("telegram", "relay")
        await group.create()  # as a restarted relay does: changes nothing
        assert ids(await group.read()) == ["2", "3"]  # given before, never acknowledged
        assert ids(await group.read()) == ["4", "5"]
        await group.ack(["2", "3", "4", "5"])
        assert await store.events.group("telegram", "relay").read() == []
    finally:
        await store.close()


async def test_pending_entries_of_trimmed_events_are_dropped(writer: SQLiteStore) -> None:
    group = writer.events.group("g", "c")
    await group.create()
    await writer.events.append(make_events(1, 5))
    assert len(await group.read()) == 5
    await writer.events.append(make_events(6, 200))  # trims 1..100
    restarted = writer.events.group("g", "c")
    delivered = await restarted.read(count=500)
    assert ids(delivered) == [str(n) for n in range(101, 201)]
    pending = file_rows(writer.path.as_posix(), "SELECT min(event_id), count(*) FROM pending")
    assert pending == [(101, 100)]


async def test_an_entry_left_unacknowledged_comes_back_after_min_idle(writer: SQLiteStore) -> None:
    await writer.events.append(make_events(1, 2))
    group = writer.events.group("g", "c", min_idle=0.2)
    await group.create()
    assert len(await group.read()) == 2
    await group.ack(["1"])
    started = time.monotonic()
    # Like Redis XAUTOCLAIM, the consumer's own idle entries are claimed too: a retry.
    assert ids(await group.read(block=5)) == ["2"]
    assert time.monotonic() - started >= 0.15
    deliveries = file_rows(writer.path.as_posix(), "SELECT deliveries FROM pending")
    assert deliveries == [(2,)]


async def test_two_connections_never_both_get_a_new_event(
    settings: StoreSettings, writer: SQLiteStore
) -> None:
    settings = dataclasses.replace(settings, max_events=1000)
    other = await SQLiteStore.open(settings)
    try:
        await writer.events.group("g", "a").create()

        async def drain(store: SQLiteStore, consumer: str) -> list[str]:
            group = store.events.group("g", consumer)
            got: list[str] = []
            while batch := await group.read(count=3):
                got += ids(batch)
            return got

        await writer.events.append(make_events(1, 90))
        got_a, got_b = await asyncio.gather(drain(writer, "a"), drain(other, "b"))
        assert not set(got_a) & set(got_b)
        assert sorted(got_a + got_b, key=int) == [str(n) for n in range(1, 91)]
    finally:
        await other.close()


async def test_reading_a_group_never_created_is_an_error(writer: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="create"):
        await writer.events.group("nope", "c").read()


# --- opening, busy and broken files ----------------------------------------------------------


async def test_a_writer_creates_the_directory_and_uses_wal(settings: StoreSettings) -> None:
    path = Path(settings.sqlite_path).parent / "deep" / "er" / "state.db"
    store = await SQLiteStore.open(dataclasses.replace(settings, sqlite_path=str(path)))
    try:
        await store.ping()
        assert file_rows(str(path), "PRAGMA journal_mode") == [("wal",)]
    finally:
        await store.close()


async def test_a_file_locked_past_the_busy_timeout_is_unavailable(
    settings: StoreSettings,
) -> None:
    db = Database(Path(settings.sqlite_path), read_only=False, busy_timeout=0.1)
    await db.open()
    store = SQLiteStore(db, settings)
    blocker = sqlite3.connect(settings.sqlite_path, isolation_level=None, timeout=0.1)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.events.append(make_events(1, 1))
        blocker.execute("ROLLBACK")
        assert await store.events.append(make_events(1, 1)) == ["1"]
    finally:
        blocker.close()
        await store.close()


async def test_a_file_that_is_not_a_database_is_unavailable(settings: StoreSettings) -> None:
    write_garbage(settings.sqlite_path)
    with pytest.raises(StoreUnavailable):
        await SQLiteStore.open(settings)
    with pytest.raises(StoreUnavailable):
        await SQLiteStore.open(settings, read_only=True)


async def test_a_closed_store_refuses_work(writer: SQLiteStore, reader: SQLiteStore) -> None:
    await writer.close()
    await reader.close()
    with pytest.raises(StoreError, match="closed"):
        await writer.events.append(make_events(1, 1))
    with pytest.raises(StoreError, match="closed"):
        await reader.events.read(LOG_START)

"""The store contract, run against every backend (the `store` fixture is parametrised)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.events import Event, EventName
from shared.settings import StoreSettings
from shared.store.base import LOG_START, LogBounds, SnapshotName, Store
from tests.conftest import open_test_store

T0 = datetime(2024, 8, 5, 0, 0, tzinfo=UTC)


def make_events(first: int, last: int) -> list[Event]:
    """Events with ids first..last, each carrying its number so order can be checked."""
    return [
        Event(
            id=str(seq),
            name=EventName.SCAN_COMPLETE,
            data={"symbol_count": 6, "signal_count": seq},
            timestamp=T0 + timedelta(minutes=5 * seq),
        )
        for seq in range(first, last + 1)
    ]


def ids(events: list[Event]) -> list[str]:
    return [event.id for event in events]


async def read_all(store: Store, after: str = LOG_START) -> list[Event]:
    collected: list[Event] = []
    while batch := await store.events.read(after, count=500):
        collected += batch
        after = batch[-1].id
    return collected


# --- event log -------------------------------------------------------------------------------


async def test_appended_events_read_back_equal_and_in_order(store: Store) -> None:
    events = make_events(1, 50)
    assert await store.events.append(events) == ids(events)
    assert await read_all(store) == events


async def test_event_round_trip_keeps_every_field(store: Store) -> None:
    trade = Event(
        id="7",
        name=EventName.TRADE_EXECUTED,
        data={
            "trade_id": 42,
            "symbol": "ETH/USDT",
            "action": "SELL",
            "qty": 0.05,
            "price": 3200.0,
            "fee": 0.64,
            "pnl": 12.5,
            "pnl_pct": 3.2,
            "strategy_version": "v20240805_010000",
        },
        timestamp=datetime(2024, 8, 5, 15, 30, 0, 123000, tzinfo=UTC),
    )
    await store.events.append([trade])
    [read] = await store.events.read(LOG_START)
    assert read == trade
    assert read.to_wire()["timestamp"] == "2024-08-05T15:30:00.123000Z"


async def test_read_after_an_id_returns_only_later_events_up_to_count(store: Store) -> None:
    await store.events.append(make_events(1, 30))
    assert ids(await store.events.read("10", count=5)) == ["11", "12", "13", "14", "15"]
    assert await store.events.read("30") == []


async def test_a_retried_append_is_refused_not_duplicated(store: Store) -> None:
    await store.events.append(make_events(1, 10))
    assert await store.events.append(make_events(8, 12)) == ["11", "12"]
    assert await store.events.append(make_events(1, 12)) == []
    assert ids(await read_all(store)) == [str(n) for n in range(1, 13)]


async def test_ids_may_have_gaps(store: Store) -> None:
    events = make_events(1, 3) + make_events(10, 11)
    await store.events.append(events)
    assert ids(await read_all(store)) == ["1", "2", "3", "10", "11"]
    assert ids(await store.events.read("3")) == ["10", "11"]


async def test_read_without_block_returns_at_once(store: Store) -> None:
    started = time.monotonic()
    assert await store.events.read(LOG_START, block=0) == []
    assert time.monotonic() - started < 1.0


async def test_blocking_read_times_out_empty(store: Store) -> None:
    started = time.monotonic()
    assert await store.events.read(LOG_START, block=0.3) == []
    assert time.monotonic() - started >= 0.25


async def test_blocking_read_wakes_for_an_append(store: Store) -> None:
    await store.events.append(make_events(1, 1))
    reader = asyncio.create_task(store.events.read("1", block=10))
    await asyncio.sleep(0.2)  # let the reader start waiting: the point of this test
    assert not reader.done()
    started = time.monotonic()
    await store.events.append(make_events(2, 2))
    assert ids(await asyncio.wait_for(reader, 5)) == ["2"]
    assert time.monotonic() - started < 2.0


async def test_bounds_of_an_empty_and_a_filled_log(store: Store) -> None:
    assert await store.events.bounds() == LogBounds(None, None)
    await store.events.append(make_events(3, 9))
    assert await store.events.bounds() == LogBounds("3", "9")


async def test_retention_trims_the_oldest_and_bounds_say_so(
    backend: str, store_settings: StoreSettings, redis_url: str | None
) -> None:
    settings = dataclasses.replace(store_settings, max_events=100)
    store = await open_test_store(backend, settings, redis_url)
    try:
        for first in range(1, 1000, 100):
            await store.events.append(make_events(first, first + 99))
        bounds = await store.events.bounds()
        held = await read_all(store)
        assert bounds.newest == "1000"
        assert held[-1].id == "1000"
        assert bounds.oldest == held[0].id
        # Redis trims approximately (whole nodes), so allow it some slack over max_events.
        assert 100 <= len(held) <= 300
        assert ids(held) == [str(n) for n in range(int(held[0].id), 1001)]
        assert not bounds.covers("0")
        assert bounds.covers(str(int(held[0].id) - 1))
        assert bounds.covers("1000")
        # An id older than what is held stays refused after trimming.
        assert await store.events.append(make_events(5, 5)) == []
    finally:
        await store.close()


def test_bounds_cover_only_what_is_held() -> None:
    bounds = LogBounds("50", "90")
    assert bounds.covers("49")
    assert bounds.covers("70")
    assert bounds.covers("90")
    assert not bounds.covers("48")
    assert not bounds.covers("91")  # never reached: a reset log, or another log's id
    assert LogBounds(None, None).covers("0")
    assert not LogBounds(None, None).covers("5")
    with pytest.raises(ValueError, match="not an event id"):
        bounds.covers("1-0")


# --- consumer groups -------------------------------------------------------------------------


async def test_group_creation_is_idempotent_and_starts_where_asked(store: Store) -> None:
    await store.events.append(make_events(1, 5))
    group = store.events.group("telegram", "relay-1")
    await group.create(start_after="3")
    await group.create(start_after="0")
    assert ids(await group.read()) == ["4", "5"]


async def test_consumers_of_one_group_share_the_events(store: Store) -> None:
    await store.events.append(make_events(1, 10))
    first = store.events.group("g", "a")
    second = store.events.group("g", "b")
    await first.create()
    got_first = await first.read(count=4)
    got_second = await second.read(count=100)
    assert ids(got_first) == ["1", "2", "3", "4"]
    assert ids(got_second) == ["5", "6", "7", "8", "9", "10"]


async def test_unacknowledged_events_come_back_after_a_restart(store: Store) -> None:
    await store.events.append(make_events(1, 6))
    before = store.events.group("g", "relay")
    await before.create()
    delivered = await before.read(count=4)
    await before.ack([delivered[0].id, delivered[1].id])
    # A new handle with the same consumer name is the relay after a restart.
    after = store.events.group("g", "relay")
    assert ids(await after.read(count=10)) == ["3", "4"]
    assert ids(await after.read(count=10)) == ["5", "6"]
    await after.ack(["3", "4", "5", "6"])
    assert await store.events.group("g", "relay").read() == []


async def test_events_left_idle_by_a_dead_consumer_are_claimed(store: Store) -> None:
    await store.events.append(make_events(1, 3))
    dead = store.events.group("g", "dead", min_idle=0.2)
    await dead.create()
    assert len(await dead.read()) == 3
    await dead.ack(["1"])
    survivor = store.events.group("g", "survivor", min_idle=0.2)
    assert await survivor.read() == []  # not idle long enough yet
    await asyncio.sleep(0.3)  # the idle time is what is being tested
    assert ids(await survivor.read()) == ["2", "3"]


async def test_group_read_blocks_until_an_event_arrives(store: Store) -> None:
    group = store.events.group("g", "c")
    await group.create()
    reader = asyncio.create_task(group.read(block=10))
    await asyncio.sleep(0.2)
    assert not reader.done()
    await store.events.append(make_events(1, 1))
    assert ids(await asyncio.wait_for(reader, 5)) == ["1"]


# --- snapshots -------------------------------------------------------------------------------


async def test_snapshot_writes_bump_one_revision_for_all_documents(store: Store) -> None:
    first = await store.snapshots.write({SnapshotName.PORTFOLIO: {"cash": 200.0}})
    second = await store.snapshots.write(
        {SnapshotName.PORTFOLIO: {"cash": 180.0}, SnapshotName.POSITIONS: [{"symbol": "BTC"}]}
    )
    assert second == first + 1
    snapshots = await store.snapshots.read()
    assert snapshots.complete
    assert snapshots.revision == second
    assert snapshots.docs[SnapshotName.PORTFOLIO].data == {"cash": 180.0}
    assert snapshots.docs[SnapshotName.PORTFOLIO].revision == second
    assert snapshots.docs[SnapshotName.POSITIONS].data == [{"symbol": "BTC"}]


async def test_an_empty_store_reads_revision_zero(store: Store) -> None:
    snapshots = await store.snapshots.read()
    assert (snapshots.revision, dict(snapshots.docs), snapshots.complete) == (0, {}, True)


async def test_unknown_snapshot_names_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="nonsense"):
        await store.snapshots.write({"nonsense": {}})  # type: ignore[dict-item]


async def test_changes_give_the_newest_version_of_what_changed(store: Store) -> None:
    base = await store.snapshots.write(
        {SnapshotName.SYSTEM: {"status": "running"}, SnapshotName.RISK: {"halted": False}}
    )
    await store.snapshots.write({SnapshotName.RISK: {"halted": True}})
    last = await store.snapshots.write({SnapshotName.RISK: {"halted": False, "n": 3}})
    changes = await store.snapshots.changes(base)
    assert changes.revision == last
    assert set(changes.docs) == {SnapshotName.RISK}
    assert changes.docs[SnapshotName.RISK].data == {"halted": False, "n": 3}
    nothing = await store.snapshots.changes(last)
    assert (nothing.revision, dict(nothing.docs)) == (last, {})


async def test_following_changes_from_zero_rebuilds_the_full_state(store: Store) -> None:
    for n in range(50):
        await store.snapshots.write({SnapshotName.HEARTBEAT: {"n": n}})
        if n % 7 == 0:
            await store.snapshots.write({SnapshotName.MARKET: [{"n": n}]})
    cache: dict[SnapshotName, object] = {}
    revision = 0
    while True:
        changes = await store.snapshots.changes(revision)
        if changes.revision == revision:
            break
        if changes.complete:
            cache.clear()
        cache.update({name: snap.data for name, snap in changes.docs.items()})
        revision = changes.revision
    full = await store.snapshots.read()
    assert revision == full.revision
    assert cache == {name: snap.data for name, snap in full.docs.items()}


async def test_changes_block_until_a_write(store: Store) -> None:
    base = await store.snapshots.write({SnapshotName.SYSTEM: {"status": "running"}})
    follower = asyncio.create_task(store.snapshots.changes(base, block=10))
    await asyncio.sleep(0.2)
    assert not follower.done()
    await store.snapshots.write({SnapshotName.SYSTEM: {"status": "stopped"}})
    changes = await asyncio.wait_for(follower, 5)
    assert changes.docs[SnapshotName.SYSTEM].data == {"status": "stopped"}


async def test_changes_time_out_empty(store: Store) -> None:
    base = await store.snapshots.write({SnapshotName.SYSTEM: {}})
    started = time.monotonic()
    changes = await store.snapshots.changes(base, block=0.3)
    assert (changes.revision, dict(changes.docs)) == (base, {})
    assert time.monotonic() - started >= 0.25


async def test_ping_answers(store: Store) -> None:
    await store.ping()


# --- clear (a reset) -------------------------------------------------------------------------


async def filled_store(store: Store) -> int:
    """Events 1..10, two snapshot writes, and a group with entries pending; the last revision."""
    await store.events.append(make_events(1, 10))
    await store.snapshots.write({SnapshotName.PORTFOLIO: {"cash": 200.0}})
    revision = await store.snapshots.write({SnapshotName.POSITIONS: [{"symbol": "BTC"}]})
    group = store.events.group("telegram", "relay")
    await group.create()
    assert len(await group.read(count=4)) == 4  # delivered, never acknowledged: pending
    return revision


async def test_clear_deletes_events_snapshots_and_groups(store: Store) -> None:
    await filled_store(store)
    await store.clear()
    assert await store.events.read(LOG_START) == []
    assert await store.events.bounds() == LogBounds(None, None)
    snapshots = await store.snapshots.read()
    assert (dict(snapshots.docs), snapshots.complete) == ({}, True)
    # A reader resuming from an id of the old log is told it cannot: the log never reached it.
    assert not (await store.events.bounds()).covers("7")
    assert (await store.events.bounds()).covers(LOG_START)


async def test_clear_keeps_the_event_high_water_mark(store: Store) -> None:
    await filled_store(store)
    await store.clear()
    # Redis included: the stream is emptied, not deleted, so it still knows its last id.
    assert await store.events.append(make_events(5, 5)) == []
    assert await store.events.append(make_events(10, 10)) == []
    assert await store.events.append(make_events(9, 12)) == ["11", "12"]
    assert ids(await read_all(store)) == ["11", "12"]
    assert await store.events.bounds() == LogBounds("11", "12")


async def test_clear_keeps_the_snapshot_revision_counting_up(store: Store) -> None:
    before = await filled_store(store)
    await store.clear()
    assert (await store.snapshots.read()).revision >= before
    after = await store.snapshots.write({SnapshotName.SYSTEM: {"status": "running"}})
    assert after > before
    snapshots = await store.snapshots.read()
    assert snapshots.revision == after
    assert {name: snap.data for name, snap in snapshots.docs.items()} == {
        SnapshotName.SYSTEM: {"status": "running"}
    }


async def test_a_follower_from_before_a_clear_is_sent_a_complete_set(store: Store) -> None:
    before = await filled_store(store)
    await store.clear()
    # Right after the clear a backend may say so at once (complete, empty) or not yet.
    early = await store.snapshots.changes(before)
    assert dict(early.docs) == {}
    assert early.complete or early.revision == before
    written = await store.snapshots.write({SnapshotName.SYSTEM: {"status": "running"}})
    changes = await store.snapshots.changes(before)
    assert changes.complete  # the cached portfolio and positions must be dropped, not kept
    assert changes.revision == written
    assert {name: snap.data for name, snap in changes.docs.items()} == {
        SnapshotName.SYSTEM: {"status": "running"}
    }


async def test_after_a_clear_a_new_group_reads_only_new_events(store: Store) -> None:
    await filled_store(store)
    await store.clear()
    await store.events.append(make_events(11, 13))
    fresh = store.events.group("other", "relay")
    await fresh.create()
    assert ids(await fresh.read()) == ["11", "12", "13"]
    await fresh.ack(["11", "12", "13"])
    assert await store.events.group("other", "relay").read() == []
    # The old group is gone, so creating one of its name starts where asked, not where it was.
    renewed = store.events.group("telegram", "relay")
    await renewed.create(start_after="11")
    assert ids(await renewed.read()) == ["12", "13"]


async def test_clearing_an_empty_store_works(store: Store) -> None:
    await store.clear()
    assert await store.events.bounds() == LogBounds(None, None)
    assert dict((await store.snapshots.read()).docs) == {}
    assert await store.events.append(make_events(1, 2)) == ["1", "2"]


async def test_a_read_only_sqlite_store_refuses_to_clear(store_settings: StoreSettings) -> None:
    from shared.store.sqlite_backend import ReadOnlyStoreError, SQLiteStore

    settings = dataclasses.replace(store_settings, backend="sqlite")
    writer = await SQLiteStore.open(settings)
    reader = await SQLiteStore.open(settings, read_only=True)
    try:
        await writer.events.append(make_events(1, 3))
        with pytest.raises(ReadOnlyStoreError):
            await reader.clear()
        assert ids(await read_all(writer)) == ["1", "2", "3"]
    finally:
        await reader.close()
        await writer.close()

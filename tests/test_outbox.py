"""The transactional outbox and its relay: events exist exactly when their transaction
committed, and reach the event log in order, each once, through outages and crashes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import create_engine
from shared.db.migrate import upgrade
from shared.db.tables import outbox
from shared.events import Event, EventDataError, EventName
from shared.outbox import OutboxRelay, add_event, add_events
from shared.settings import OutboxSettings, Settings, StoreSettings
from shared.store.base import LOG_START, EventLog, Store
from tests.conftest import open_test_store
from tests.support.services import RedisServer, async_wait_until

REPO = Path(__file__).resolve().parents[1]
SCAN = EventName.SCAN_COMPLETE


def scan(n: int) -> dict[str, int]:
    return {"symbol_count": 6, "signal_count": n}


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    created = create_engine(database_url)
    await upgrade(created)
    yield created
    await created.dispose()


@pytest.fixture
def outbox_settings(base_settings: Settings) -> OutboxSettings:
    # A small batch, so draining takes several batches; a long poll, so only wake() is prompt.
    return dataclasses.replace(
        base_settings.outbox, batch_size=3, poll_interval=30.0, retry_initial=0.02, retry_max=0.16
    )


async def commit(engine: AsyncEngine, numbers: Sequence[int]) -> list[str]:
    async with engine.begin() as conn:
        return await add_events(conn, [(SCAN, scan(n)) for n in numbers])


async def read_all(log: EventLog) -> list[Event]:
    collected: list[Event] = []
    after = LOG_START
    while batch := await log.read(after, count=500):
        collected += batch
        after = batch[-1].id
    return collected


async def outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbox))).scalar_one())


def assert_once_in_order(events: list[Event], numbers: Sequence[int]) -> None:
    """The log holds exactly these events (by their data), in order, ids increasing."""
    assert [event.data["signal_count"] for event in events] == list(numbers)
    ids = [int(event.id) for event in events]
    assert ids == sorted(set(ids))
    assert all(event.name is SCAN for event in events)


# --- adding events ------------------------------------------------------------------------


async def test_add_event_returns_increasing_ids(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await add_event(conn, SCAN, scan(1))
        more = await add_events(conn, [(SCAN, scan(2)), (EventName.RISK_RESUMED, {})])
        assert await add_events(conn, []) == []
    assert int(first) < int(more[0]) < int(more[1])
    assert await outbox_rows(engine) == 3


async def test_add_event_refuses_data_the_catalog_does_not_know(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        with pytest.raises(EventDataError):
            await add_event(conn, SCAN, {"symbol_count": 6})
        with pytest.raises(EventDataError):
            await add_events(conn, [(SCAN, scan(1)), (SCAN, {**scan(2), "extra": 1})])
    assert await outbox_rows(engine) == 0


async def test_rolled_back_events_are_never_relayed(
    engine: AsyncEngine, store: Store, outbox_settings: OutboxSettings
) -> None:
    async def failing_trade() -> None:
        async with engine.begin() as conn:
            await add_events(conn, [(SCAN, scan(2)), (SCAN, scan(3))])
            raise RuntimeError("trade failed")

    await commit(engine, [1])
    with pytest.raises(RuntimeError, match="trade failed"):
        await failing_trade()
    async with engine.connect() as conn:  # an explicit rollback too
        await add_event(conn, SCAN, scan(3))
        await conn.rollback()
    await commit(engine, [4])
    relay = OutboxRelay(engine, store.events, outbox_settings)
    assert await relay.drain() == 2
    assert_once_in_order(await read_all(store.events), [1, 4])


async def test_committed_events_are_relayed_in_order_exactly_once(
    engine: AsyncEngine, store: Store, outbox_settings: OutboxSettings
) -> None:
    for first in range(0, 10, 4):
        await commit(engine, range(first, min(first + 4, 10)))
    relay = OutboxRelay(engine, store.events, outbox_settings)
    fetched = await relay.fetch()
    assert [event.data["signal_count"] for event in fetched] == [0, 1, 2]  # one batch, oldest
    assert await relay.relay_once() == 3
    assert await relay.drain() == 7
    relayed = await read_all(store.events)
    assert_once_in_order(relayed, range(10))
    assert await outbox_rows(engine) == 0
    assert await relay.relay_once() == 0
    await relay.publish(fetched)  # a re-publish (as after a crash) is refused by the log
    assert await read_all(store.events) == relayed


async def test_relayed_events_keep_their_fields(
    engine: AsyncEngine, store: Store, outbox_settings: OutboxSettings
) -> None:
    trade = {
        "trade_id": 42,
        "symbol": "ETH/USDT",
        "action": "SELL",
        "qty": 1.25,
        "price": 3141.5,
        "fee": 3.93,
        "pnl": -12.5,
        "pnl_pct": -0.4,
        "strategy_version": "v20260208_010000",
    }
    async with engine.begin() as conn:
        event_id = await add_event(conn, EventName.TRADE_EXECUTED, trade)
    relay = OutboxRelay(engine, store.events, outbox_settings)
    (fetched,) = await relay.fetch()
    await relay.relay_once()
    (logged,) = await read_all(store.events)
    assert logged == fetched
    assert (logged.id, logged.name, logged.data) == (event_id, EventName.TRADE_EXECUTED, trade)
    assert logged.timestamp.tzinfo is not None


async def test_ids_are_never_reused_after_relayed_rows_are_deleted(
    database_url: str, store: Store, outbox_settings: OutboxSettings
) -> None:
    engine = create_engine(database_url)
    await upgrade(engine)
    relay = OutboxRelay(engine, store.events, outbox_settings)
    (first,) = await commit(engine, [1])
    await relay.drain()  # deletes row `first`: the table is empty again
    await engine.dispose()  # and a restart must not reuse it either
    engine = create_engine(database_url)
    relay = OutboxRelay(engine, store.events, outbox_settings)
    try:
        (second,) = await commit(engine, [2])
        assert int(second) > int(first)
        await relay.drain()
        assert_once_in_order(await read_all(store.events), [1, 2])
    finally:
        await engine.dispose()


async def test_concurrent_writers_never_lose_an_event(
    engine: AsyncEngine, store: Store, outbox_settings: OutboxSettings
) -> None:
    """Ids must commit in id order even if several transactions add events at once (PostgreSQL
    takes a lock for it), or the relay could publish 6 before 5 commits and the log refuse 5."""
    relay = OutboxRelay(
        engine, store.events, dataclasses.replace(outbox_settings, poll_interval=0.01)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))

    async def writer(first: int) -> None:
        for n in range(first, first + 10):
            async with engine.begin() as conn:
                await add_event(conn, SCAN, scan(n))
                # Commit late, now and then: later ids commit first unless something stops it.
                await asyncio.sleep(0.002 * (n % 3))
            relay.wake()

    try:
        await asyncio.gather(*(writer(first) for first in range(0, 40, 10)))

        async def all_relayed() -> bool:
            return await outbox_rows(engine) == 0

        await async_wait_until(all_relayed, 20, "every event relayed")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    relayed = await read_all(store.events)
    assert sorted(event.data["signal_count"] for event in relayed) == list(range(40))
    ids = [int(event.id) for event in relayed]
    assert ids == sorted(set(ids))


# --- run() --------------------------------------------------------------------------------


async def test_run_relays_promptly_on_wake_and_stops(
    engine: AsyncEngine, store: Store, outbox_settings: OutboxSettings
) -> None:
    relay = OutboxRelay(engine, store.events, outbox_settings)  # poll_interval is 30 s
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        for round_ in range(3):
            await commit(engine, [round_])
            relay.wake()

            async def arrived(count: int = round_ + 1) -> bool:
                return len(await read_all(store.events)) == count

            await async_wait_until(arrived, 5, f"event {round_} relayed after wake()")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert_once_in_order(await read_all(store.events), [0, 1, 2])


async def test_run_polls_when_nobody_wakes_it(
    engine: AsyncEngine, store: Store, outbox_settings: OutboxSettings
) -> None:
    relay = OutboxRelay(
        engine, store.events, dataclasses.replace(outbox_settings, poll_interval=0.05)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await commit(engine, range(7))

        async def arrived() -> bool:
            return len(await read_all(store.events)) == 7

        await async_wait_until(arrived, 5, "events relayed by polling")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert_once_in_order(await read_all(store.events), range(7))


async def test_stop_drains_what_is_left(
    engine: AsyncEngine, store: Store, outbox_settings: OutboxSettings
) -> None:
    await commit(engine, range(5))
    stop = asyncio.Event()
    stop.set()  # stopping before it ever looked: the final drain still relays everything
    await asyncio.wait_for(OutboxRelay(engine, store.events, outbox_settings).run(stop), 5)
    assert_once_in_order(await read_all(store.events), range(5))
    assert await outbox_rows(engine) == 0


# --- outages ------------------------------------------------------------------------------


def backoff_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    pattern = re.compile(r"retrying in ([0-9.]+)s")
    return [
        float(match.group(1))
        for record in caplog.records
        if record.name == "shared.outbox" and (match := pattern.search(record.getMessage()))
    ]


async def ride_out_outage(
    engine: AsyncEngine,
    log: EventLog,
    settings: OutboxSettings,
    caplog: pytest.LogCaptureFixture,
    *,
    go_down: Callable[[], object],
    come_back: Callable[[], object],
) -> None:
    """Relay some events, take the backend away, keep committing, bring it back: every event
    arrives once, in order, and the relay backed off meanwhile."""
    caplog.set_level(logging.WARNING, logger="shared.outbox")
    relay = OutboxRelay(engine, log, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await commit(engine, range(4))
        relay.wake()

        async def relayed(count: int) -> bool:
            return await outbox_rows(engine) == 0 and len(await read_all(log)) == count

        await async_wait_until(lambda: relayed(4), 10, "events relayed before the outage")
        go_down()
        for n in range(4, 10):  # trading goes on: add_event only writes SQL
            await commit(engine, [n])
            relay.wake()
        assert await outbox_rows(engine) == 6

        async def backed_off() -> bool:
            return len(backoff_delays(caplog)) >= 5

        await async_wait_until(backed_off, 20, "the relay to retry with back-off")
        assert not task.done()
        come_back()
        await async_wait_until(lambda: relayed(10), 20, "events relayed after the outage")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert_once_in_order(await read_all(log), range(10))
    delays = backoff_delays(caplog)
    assert delays[:5] == [0.02, 0.04, 0.08, 0.16, 0.16]  # doubling up to retry_max


@pytest.mark.real_redis
async def test_relay_rides_out_a_redis_outage(
    engine: AsyncEngine,
    store_settings: StoreSettings,
    outbox_settings: OutboxSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shared.store.redis_backend import RedisStore

    if not RedisServer.available():
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis", appendonly=True)  # the log survives the restart
    server.start()
    store = await RedisStore.connect(server.url, store_settings)
    try:
        await ride_out_outage(
            engine,
            store.events,
            outbox_settings,
            caplog,
            go_down=server.stop,
            come_back=server.start,
        )
    finally:
        await store.close()
        server.stop()


async def test_relay_rides_out_a_locked_sqlite_store(
    engine: AsyncEngine,
    store_settings: StoreSettings,
    outbox_settings: OutboxSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shared.store._sqlite import Database
    from shared.store.sqlite_backend import SQLiteStore

    path = Path(store_settings.sqlite_path)
    # A short busy timeout, so each attempt fails fast while another process holds the lock.
    database = Database(path, read_only=False, busy_timeout=0.05)
    await database.open()
    store = SQLiteStore(database, store_settings)
    locker = sqlite3.connect(path, isolation_level=None)

    try:
        await ride_out_outage(
            engine,
            store.events,
            outbox_settings,
            caplog,
            go_down=lambda: locker.execute("BEGIN IMMEDIATE"),
            come_back=lambda: locker.execute("ROLLBACK"),
        )
    finally:
        locker.close()
        await store.close()


# --- crashes, with real processes ---------------------------------------------------------

LOG_BACKENDS = ["sqlite", pytest.param("redis", marks=pytest.mark.real_redis)]


@pytest.fixture
def log_redis_url(request: pytest.FixtureRequest, log_backend: str) -> str | None:
    """A real Redis for the redis case: the log must outlive the processes that wrote it."""
    return str(request.getfixturevalue("real_redis_url")) if log_backend == "redis" else None


def worker_env(
    database_url: str, log_backend: str, store_settings: StoreSettings, redis_url: str | None
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TB_") and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env |= {
        "DATABASE_URL": database_url,
        "TB_STORE__BACKEND": log_backend,
        "TB_STORE__SQLITE_PATH": store_settings.sqlite_path,
        "TB_STORE__KEY_PREFIX": store_settings.key_prefix,
        "TB_OUTBOX__BATCH_SIZE": "3",
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


async def run_worker(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.outbox_worker",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    if process.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"worker {args} exited {process.returncode}: {err.decode()}")
    return process.returncode, out.decode()


@pytest.mark.parametrize("log_backend", LOG_BACKENDS)
async def test_events_committed_before_a_crash_are_relayed_once(
    engine: AsyncEngine,
    database_url: str,
    log_backend: str,
    store_settings: StoreSettings,
    log_redis_url: str | None,
) -> None:
    env = worker_env(database_url, log_backend, store_settings, log_redis_url)
    code, out = await run_worker(env, "commit-and-die", "8")
    assert (code, out.strip()) == (-signal.SIGKILL, "committed")
    assert await outbox_rows(engine) == 8  # committed, never relayed

    code, out = await run_worker(env, "relay")
    assert (code, out.strip()) == (0, "relayed 8")
    store = await open_test_store(log_backend, store_settings, log_redis_url)
    try:
        assert_once_in_order(await read_all(store.events), range(8))
    finally:
        await store.close()
    assert await outbox_rows(engine) == 0


@pytest.mark.parametrize("log_backend", LOG_BACKENDS)
async def test_a_crash_between_publish_and_delete_republishes_harmlessly(
    engine: AsyncEngine,
    database_url: str,
    log_backend: str,
    store_settings: StoreSettings,
    log_redis_url: str | None,
) -> None:
    env = worker_env(database_url, log_backend, store_settings, log_redis_url)
    await commit(engine, range(5))
    code, out = await run_worker(env, "publish-and-die")
    assert (code, out.strip()) == (-signal.SIGKILL, "published 3")  # one batch of 3
    assert await outbox_rows(engine) == 5  # published, but the rows were never deleted

    await commit(engine, [5])
    code, out = await run_worker(env, "relay")  # publishes 0..2 again, then the rest
    assert (code, out.strip()) == (0, "relayed 6")
    store = await open_test_store(log_backend, store_settings, log_redis_url)
    try:
        assert_once_in_order(await read_all(store.events), range(6))
    finally:
        await store.close()
    assert await outbox_rows(engine) == 0

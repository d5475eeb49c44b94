"""Redis goes down while the brain publishes: trading goes on, and nothing is lost or doubled.

The brain side is the real one: events committed to the SQL outbox and relayed to a Redis the
test runs itself, with AOF persistence as in production. The reader is a separate connection,
as an API process would be, resuming from the last id it saw.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from shared.db.engine import create_engine
from shared.db.migrate import upgrade
from shared.events import Event, EventName
from shared.outbox import OutboxRelay, add_event
from shared.settings import Settings, StoreSettings
from shared.store.base import LOG_START, StoreUnavailable
from shared.store.redis_backend import RedisStore
from tests.support.services import RedisServer, async_wait_until

pytestmark = [pytest.mark.real_redis, pytest.mark.slow]

EVENTS = 900


class Reader:
    """Follows the log like an API process: resume from the last id, retry while it is down."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.events: list[Event] = []
        self.outages = 0

    async def run(self, until: int) -> None:
        after = LOG_START
        while len(self.events) < until:
            try:
                batch = await self.store.events.read(after, count=100, block=0.5)
            except StoreUnavailable:
                self.outages += 1
                await asyncio.sleep(0.05)
                continue
            self.events += batch
            if batch:
                after = batch[-1].id


async def test_events_published_across_a_redis_restart_arrive_exactly_once_in_order(
    tmp_path: Path,
    redis_server: RedisServer,
    base_settings: Settings,
    store_settings: StoreSettings,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'history.db'}")
    await upgrade(engine)
    settings = dataclasses.replace(store_settings, connect_attempts=1)
    brain_store = await RedisStore.connect(redis_server.url, settings)
    api_store = await RedisStore.connect(redis_server.url, settings)
    outbox_settings = dataclasses.replace(base_settings.outbox, retry_initial=0.05, retry_max=0.5)
    relay = OutboxRelay(engine, brain_store.events, outbox_settings)
    stop_relay = asyncio.Event()
    published = 0

    async def publish() -> None:
        nonlocal published
        for n in range(1, EVENTS + 1):
            async with engine.begin() as conn:
                await add_event(
                    conn, EventName.SCAN_COMPLETE, {"symbol_count": 6, "signal_count": n}
                )
            published = n
            relay.wake()
            await asyncio.sleep(0.003)

    reader = Reader(api_store)
    relay_task = asyncio.create_task(relay.run(stop_relay))
    reader_task = asyncio.create_task(reader.run(EVENTS))
    publisher = asyncio.create_task(publish())
    try:
        await async_wait_until(lambda: len(reader.events) >= 200, 30, "200 events read")
        redis_server.kill()  # abrupt: only what AOF (appendfsync always) holds survives
        down_at = published
        # Trading goes on while Redis is down: the publisher keeps committing events.
        await async_wait_until(lambda: published >= down_at + 150, 30, "publishing")
        redis_server.start()
        await asyncio.wait_for(publisher, 60)
        await asyncio.wait_for(reader_task, 60)
    finally:
        stop_relay.set()
        await asyncio.wait_for(relay_task, 30)
        for task in (publisher, reader_task):
            task.cancel()
        await brain_store.close()
        await api_store.close()
        await engine.dispose()

    assert reader.outages > 0, "the reader never saw Redis go away"
    assert [event.id for event in reader.events] == [str(n) for n in range(1, EVENTS + 1)]
    assert [event.data["signal_count"] for event in reader.events] == list(range(1, EVENTS + 1))

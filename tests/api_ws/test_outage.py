"""Redis restarts during a stream: every client is closed (1013), reconnects once the relay
reads again, resumes with last_event_id, and sees every event the brain published exactly once."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.events_protocol import CloseCode
from shared.settings import Settings, StoreSettings
from shared.store.base import StoreUnavailable
from shared.store.redis_backend import RedisStore
from tests.api.conftest import api_settings_for, with_api
from tests.api.server import run_server
from tests.api_ws.client import ResumingClient, events, running
from tests.api_ws.conftest import TEST_OPTIONS, Relay, wait_attached
from tests.support.services import RedisServer, async_wait_until

pytestmark = [pytest.mark.real_redis, pytest.mark.slow]

EVENTS = 600


async def test_a_redis_restart_closes_streams_and_they_resume_losing_nothing(
    redis_server: RedisServer,
    base_settings: Settings,
    store_settings: StoreSettings,
    history_url: str,
    history: AsyncEngine,
) -> None:
    store_settings = dataclasses.replace(store_settings, connect_attempts=1)
    settings = api_settings_for(
        base_settings, store_settings, "redis", redis_url=redis_server.url, history_url=history_url
    )
    brain = await RedisStore.connect(redis_server.url, settings.store)
    published = 0

    async def publish() -> None:  # as the outbox relay does: retry a batch until it is in
        nonlocal published
        for first in range(1, EVENTS + 1, 5):
            while True:
                try:
                    await brain.events.append(events(first, 5))
                    break
                except StoreUnavailable:
                    await asyncio.sleep(0.05)
            published = first + 4
            await asyncio.sleep(0.01)

    app = create_app(with_api(settings, **TEST_OPTIONS))
    try:
        async with run_server(app) as url:
            relay = Relay(url, app)
            clients = [ResumingClient([url]) for _ in range(10)]
            async with running(clients):
                await wait_attached(relay, len(clients))
                producer = asyncio.create_task(publish())
                await async_wait_until(lambda: published >= 100, 10, "events before the stop")
                redis_server.stop()
                await async_wait_until(
                    lambda: all(CloseCode.TRY_AGAIN_LATER in c.closes for c in clients),
                    10,
                    "every client closed for the outage",
                )
                assert not producer.done()
                redis_server.start()
                await asyncio.wait_for(producer, 30)
                for client in clients:
                    await client.wait_for_id(EVENTS)
    finally:
        await brain.close()
    for client in clients:
        assert client.ids == list(range(1, EVENTS + 1))  # every event, once, in order
        assert client.connections >= 2
        assert client.controls == []  # nothing was lost, so no replay_incomplete

"""The brain on the live exchange feed (ccxt's real binance client against a local Binance
look-alike): it trades on the candles, and an outage past ``feed_lost_after`` becomes
``websocket_feed_lost`` then ``websocket_feed_recovered`` in the event log, while it goes on."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from brain.engine import TradingEngine
from brain.feeds import ExchangeFeed
from brain.models import CandleBatch
from brain.process import run_brain
from shared.config import load_settings
from shared.events import EventName
from shared.store.base import LOG_START
from shared.store.factory import open_store
from tests.support.ohlcv_server import FakeBinance
from tests.support.replay import brain_env
from tests.support.services import async_wait_until
from tests.test_exchange_feed import binance_at

SYMBOLS = ("BTC/USDT", "ETH/USDT")
STEP = timedelta(minutes=5)
FIRST_OPEN = datetime(2024, 8, 1, tzinfo=UTC)


@pytest.fixture
async def exchange() -> AsyncIterator[FakeBinance]:
    fake = FakeBinance(SYMBOLS, FIRST_OPEN, now=FIRST_OPEN + 400 * STEP + timedelta(minutes=2))
    await fake.start()
    yield fake
    await fake.stop()


async def test_an_exchange_outage_is_reported_and_trading_goes_on(
    exchange: FakeBinance, tmp_path: Path
) -> None:
    env = brain_env(tmp_path, "sqlite", None, f"tbtest:{uuid.uuid4().hex[:8]}")
    settings = load_settings(env=env, dotenv_path=None)
    settings = dataclasses.replace(
        settings, market=dataclasses.replace(settings.market, feed="exchange", symbols=SYMBOLS)
    )
    engines: list[TradingEngine] = []
    steps: list[CandleBatch] = []

    async def lost() -> None:
        await engines[0].feed_lost()

    async def recovered() -> None:
        await engines[0].feed_recovered()

    feed = ExchangeFeed(
        "binance",
        SYMBOLS,
        "5m",
        poll_interval=0.05,
        retry_max=0.2,
        lost_after=0.3,
        on_lost=lost,
        on_recovered=recovered,
        exchange_factory=binance_at(exchange),
        history=300,
        clock=exchange.clock,
    )

    def observe(engine: TradingEngine, batch: CandleBatch, _elapsed: float) -> None:
        if not engines:
            engines.append(engine)
        steps.append(batch)

    stop = asyncio.Event()
    brain = asyncio.create_task(run_brain(settings, stop, on_step=observe, feed=feed))
    try:
        await async_wait_until(lambda: len(steps) >= 300, 30, "the warm-up history")
        exchange.failure = "500"
        exchange.now += STEP  # a candle closes while the exchange is down
        store = await open_store(settings, read_only=True)
        try:

            def published(name: EventName) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    events = await store.events.read(LOG_START, count=100_000)
                    return any(event.name is name for event in events)

                return check

            lost_event = published(EventName.WEBSOCKET_FEED_LOST)
            await async_wait_until(lost_event, 10, "websocket_feed_lost")
            exchange.failure = None
            await async_wait_until(lambda: len(steps) >= 301, 10, "the candle after the outage")
            recovered_event = published(EventName.WEBSOCKET_FEED_RECOVERED)
            await async_wait_until(recovered_event, 10, "websocket_feed_recovered")
        finally:
            await store.close()
    finally:
        stop.set()
        await asyncio.wait_for(brain, 30)
    assert steps[300].close_time == FIRST_OPEN + 401 * STEP  # nothing lost across the outage
    assert [b.close_time for b in steps] == sorted({b.close_time for b in steps})

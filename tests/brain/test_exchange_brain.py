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
from brain.models import CandleBatch
from brain.process import run_brain
from shared.config import load_settings
from shared.events import EventName
from shared.settings import Settings
from shared.store.base import LOG_START
from shared.store.factory import open_store
from tests.support.messages_api import HANG, MessagesApiServer
from tests.support.ohlcv_server import FakeBinance
from tests.support.replay import brain_env
from tests.support.services import async_wait_until
from tests.test_exchange_feed import SYMBOLS, local_feed

STEP = timedelta(minutes=5)
FIRST_OPEN = datetime(2024, 8, 1, tzinfo=UTC)


@pytest.fixture
async def exchange() -> AsyncIterator[FakeBinance]:
    fake = FakeBinance(SYMBOLS, FIRST_OPEN, now=FIRST_OPEN + 400 * STEP + timedelta(minutes=2))
    await fake.start()
    yield fake
    await fake.stop()


def exchange_settings(tmp_path: Path, **env: str) -> Settings:
    """A test brain's settings on the exchange feed, with ``env`` laid over them."""
    base = brain_env(tmp_path, "sqlite", None, f"tbtest:{uuid.uuid4().hex[:8]}")
    settings = load_settings(env={**base, **env}, dotenv_path=None)
    market = dataclasses.replace(settings.market, feed="exchange", symbols=SYMBOLS)
    return dataclasses.replace(settings, market=market)


async def test_an_exchange_outage_is_reported_and_trading_goes_on(
    exchange: FakeBinance, tmp_path: Path
) -> None:
    settings = exchange_settings(tmp_path)
    engines: list[TradingEngine] = []
    steps: list[CandleBatch] = []

    async def lost() -> None:
        await engines[0].feed_lost()

    async def recovered() -> None:
        await engines[0].feed_recovered()

    feed = local_feed(exchange, lost_after=0.3, on_lost=lost, on_recovered=recovered)

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


async def test_on_a_live_feed_the_nightly_cycle_runs_beside_trading(
    exchange: FakeBinance, tmp_path: Path
) -> None:
    """The AI strategist's request hangs until its time limit: meanwhile the brain goes on
    trading (steps commit between the cycle's start and its end), then the cycle completes."""
    async with MessagesApiServer(api_key="sk-ant-test") as ai:
        ai.push(HANG)
        settings = exchange_settings(
            tmp_path,
            ANTHROPIC_API_KEY="sk-ant-test",
            TB_AI__BASE_URL=ai.base_url,
            TB_AI__TIMEOUT="2",
            TB_AI__MAX_RETRIES="0",
        )
        # its 300 warm-up candles (2024-08-01 08:25 to 2024-08-02 09:20) hold the 01:00 cycle
        feed = local_feed(exchange, lost_after=30.0, on_lost=_unobserved, on_recovered=_unobserved)
        stop = asyncio.Event()
        brain = asyncio.create_task(run_brain(settings, stop, feed=feed))
        store = await open_store(settings, read_only=True)
        try:

            async def cycle_completed() -> bool:
                events = await store.events.read(LOG_START, count=100_000)
                return any(e.name is EventName.ORCHESTRATOR_CYCLE_COMPLETED for e in events)

            await async_wait_until(cycle_completed, 30, "the nightly cycle")
            events = await store.events.read(LOG_START, count=100_000)
        finally:
            await store.close()
            stop.set()
            await asyncio.wait_for(brain, 30)
    names = [event.name for event in events]
    started = names.index(EventName.ORCHESTRATOR_CYCLE_STARTED)
    completed = names.index(EventName.ORCHESTRATOR_CYCLE_COMPLETED)
    assert EventName.SCAN_COMPLETE in names[started:completed], "trading waited for the cycle"
    summary = events[completed].data["summary"]
    assert "AI strategist" in summary  # it timed out, and the optimiser was asked instead
    assert "optimiser" in summary
    assert len(ai.bodies) == 1


async def _unobserved() -> None:
    """No outage here: the feed's lost/recovered callbacks are not the subject."""

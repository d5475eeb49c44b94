"""The exchange feed against a local Binance look-alike, through ccxt's real binance client
(request building, HTTP, error mapping, OHLCV parsing): warm-up, live closed candles, outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from brain.feeds import ExchangeFeed, FeedError
from brain.feeds.base import FeedCallback
from brain.models import CandleBatch
from tests.support.ohlcv_server import FakeBinance, candle_values, to_ms
from tests.support.services import async_wait_until

SYMBOLS = ("BTC/USDT", "ETH/USDT")
STEP = timedelta(minutes=5)
FIRST_OPEN = datetime(2024, 8, 1, tzinfo=UTC)
POLL = 0.05
LOST_AFTER = 0.3
RETRY_MAX = 0.2


@pytest.fixture
async def server() -> AsyncIterator[FakeBinance]:
    # The market clock stands mid-candle: 400 candles have closed and the 401st is open.
    fake = FakeBinance(SYMBOLS, FIRST_OPEN, now=FIRST_OPEN + 400 * STEP + timedelta(minutes=2))
    await fake.start()
    yield fake
    await fake.stop()


def binance_at(server: FakeBinance) -> Callable[[str], Any]:
    """ccxt's own binance client, every API base pointed at the local server (so nothing can
    reach the real exchange), spot markets only, short timeouts, no client-side throttling."""

    def build(exchange_id: str) -> Any:
        import ccxt.async_support as ccxt_async

        exchange = getattr(ccxt_async, exchange_id)(
            {
                "enableRateLimit": False,
                "timeout": 2000,
                "options": {"fetchMarkets": {"types": ["spot"]}},
            }
        )
        for key in exchange.urls["api"]:
            exchange.urls["api"][key] = server.url
        return exchange

    return build


class Consumer:
    """Runs a feed's stream in a task, recording each batch with the market time it came at."""

    def __init__(self, feed: ExchangeFeed, clock: Callable[[], datetime]) -> None:
        self.feed = feed
        self.clock = clock
        self.received: list[tuple[CandleBatch, datetime]] = []
        self.lost: list[float] = []
        self.recovered: list[float] = []
        self.error: BaseException | None = None

    @property
    def close_times(self) -> list[datetime]:
        return [batch.close_time for batch, _ in self.received]

    async def on_lost(self) -> None:
        self.lost.append(time.monotonic())

    async def on_recovered(self) -> None:
        self.recovered.append(time.monotonic())

    async def run(self) -> None:
        try:
            async for batch in self.feed.batches():
                self.received.append((batch, self.clock()))
        except Exception as exc:
            self.error = exc

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        def arrived() -> bool:
            if self.error is not None:
                raise self.error
            return len(self.received) >= count

        await async_wait_until(arrived, timeout, f"{count} batches (have {len(self.received)})")


async def _never() -> None:
    raise AssertionError("not expected here")


def local_feed(
    server: FakeBinance,
    *,
    symbols: tuple[str, ...] = SYMBOLS,
    timeframe: str = "5m",
    lost_after: float = LOST_AFTER,
    on_lost: FeedCallback = _never,
    on_recovered: FeedCallback = _never,
    history: int = 300,
) -> ExchangeFeed:
    """ccxt's binance client on the local exchange (``binance_at``), polling fast, on its clock."""
    return ExchangeFeed(
        "binance",
        symbols,
        timeframe,
        poll_interval=POLL,
        retry_max=RETRY_MAX,
        lost_after=lost_after,
        on_lost=on_lost,
        on_recovered=on_recovered,
        exchange_factory=binance_at(server),
        history=history,
        clock=server.clock,
    )


@contextlib.asynccontextmanager
async def consuming(server: FakeBinance, history: int = 300) -> AsyncIterator[Consumer]:
    consumer: Consumer | None = None

    async def on_lost() -> None:
        assert consumer is not None
        await consumer.on_lost()

    async def on_recovered() -> None:
        assert consumer is not None
        await consumer.on_recovered()

    feed = local_feed(server, on_lost=on_lost, on_recovered=on_recovered, history=history)
    consumer = Consumer(feed, server.clock)
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await feed.aclose()


def assert_clean_stream(consumer: Consumer, first_close: datetime, last_close: datetime) -> None:
    """Every close time from first to last exactly once, in order; each candle closed when it
    came and equal to the exchange's final values (never the still-open candle's)."""
    expected = []
    moment = first_close
    while moment <= last_close:
        expected.append(moment)
        moment += STEP
    assert consumer.close_times == expected
    for batch, now in consumer.received:
        assert batch.close_time <= now
        for symbol, candle in batch.candles.items():
            assert candle.symbol == symbol
            assert candle.close_time == batch.close_time == candle.open_time + STEP
            values = (candle.open, candle.high, candle.low, candle.close, candle.volume)
            assert values == candle_values(symbol, to_ms(candle.open_time))


async def polls_after(server: FakeBinance, count: int) -> None:
    """Wait until the feed has asked for klines ``count`` more times."""
    target = len(server.klines_requests()) + count
    await async_wait_until(lambda: len(server.klines_requests()) >= target, 10, "more polls")


async def test_warm_up_then_each_new_closed_candle_once(server: FakeBinance) -> None:
    last_closed = FIRST_OPEN + 400 * STEP  # the close of the newest closed candle
    async with consuming(server) as consumer:
        await consumer.wait_for(300)
        assert consumer.close_times[0] == last_closed - 299 * STEP
        assert consumer.close_times[-1] == last_closed
        assert all(len(batch.candles) == 2 for batch, _ in consumer.received)
        warm_up = server.klines_requests()[:2]
        assert [r.params.get("limit") for r in warm_up] == ["301", "301"]
        assert all("startTime" not in r.params for r in warm_up)

        await polls_after(server, 4)  # nothing new closes while the market clock stands still
        assert len(consumer.received) == 300

        server.now += STEP
        await consumer.wait_for(301)
        server.now += 3 * STEP + timedelta(minutes=2)
        await consumer.wait_for(304)
        await polls_after(server, 6)
        assert len(consumer.received) == 304

    assert_clean_stream(consumer, last_closed - 299 * STEP, last_closed + 4 * STEP)
    assert all(len(batch.candles) == 2 for batch, _ in consumer.received)
    live = server.klines_requests()[2:]
    assert live
    assert all("startTime" in r.params for r in live)  # polling resumes after the last candle


async def test_outage_retries_with_backoff_and_reports_lost_and_recovered_once(
    server: FakeBinance,
) -> None:
    last_closed = FIRST_OPEN + 400 * STEP
    async with consuming(server) as consumer:
        await consumer.wait_for(300)
        server.failure = "500"
        outage_start = time.monotonic()
        server.now += STEP  # a candle closes during the outage
        await async_wait_until(lambda: len(consumer.lost) == 1, 5, "on_lost")
        assert consumer.lost[0] - outage_start >= LOST_AFTER * 0.9

        server.failure = "close"  # now the connection drops without an answer
        server.now += 2 * STEP
        failed_before = len(server.klines_requests(failed=True))
        await async_wait_until(
            lambda: len(server.klines_requests(failed=True)) >= failed_before + 6, 5, "retries"
        )
        assert len(consumer.lost) == 1
        assert consumer.recovered == []
        assert len(consumer.received) == 300

        failed = server.klines_requests(failed=True)
        server.failure = None
        await async_wait_until(lambda: len(consumer.recovered) == 1, 5, "on_recovered")
        await consumer.wait_for(303)
        await polls_after(server, 6)

    assert len(consumer.lost) == 1
    assert len(consumer.recovered) == 1
    assert consumer.error is None
    assert_clean_stream(consumer, last_closed - 299 * STEP, last_closed + 3 * STEP)
    assert all(len(batch.candles) == 2 for batch, _ in consumer.received)

    # Backoff: attempts (aiohttp may resend at once on a dropped keep-alive connection, so
    # near-simultaneous requests count as one) grow apart from POLL up to RETRY_MAX.
    attempts = [failed[0].at]
    for record in failed[1:]:
        if record.at - attempts[-1] > 0.02:
            attempts.append(record.at)
    gaps = [later - earlier for earlier, later in pairwise(attempts)]
    assert len(gaps) >= 4
    assert all(gap >= POLL * 0.8 for gap in gaps)
    assert gaps[0] < RETRY_MAX * 0.9  # the first retry comes quickly...
    assert min(gaps[3:]) >= RETRY_MAX * 0.8  # ...later ones wait the cap...
    assert max(gaps) <= RETRY_MAX + 0.5  # ...and never much longer (a noisy machine)


async def test_down_from_the_start_then_warm_up_once_it_answers(server: FakeBinance) -> None:
    server.failure = "500"
    async with consuming(server) as consumer:
        await async_wait_until(lambda: len(consumer.lost) == 1, 5, "on_lost")
        assert consumer.received == []
        server.failure = None
        await consumer.wait_for(300)
        await async_wait_until(lambda: len(consumer.recovered) == 1, 5, "on_recovered")
    last_closed = FIRST_OPEN + 400 * STEP
    assert_clean_stream(consumer, last_closed - 299 * STEP, last_closed)


async def test_a_long_outage_is_caught_up_page_by_page(server: FakeBinance) -> None:
    history = 10
    last_closed = FIRST_OPEN + 400 * STEP
    async with consuming(server, history=history) as consumer:
        await consumer.wait_for(history)
        server.failure = "500"
        server.now += 35 * STEP  # more than three pages of `history` candles
        await async_wait_until(lambda: len(consumer.lost) == 1, 5, "on_lost")
        server.failure = None
        await consumer.wait_for(history + 35)
        await polls_after(server, 4)
    assert_clean_stream(consumer, last_closed - (history - 1) * STEP, last_closed + 35 * STEP)
    caught_up = [r for r in server.klines_requests(failed=False) if "startTime" in r.params]
    assert any(r.params["limit"] == str(history) for r in caught_up)


async def test_a_late_symbol_holds_its_batch_one_poll_then_it_goes_without(
    server: FakeBinance, caplog: pytest.LogCaptureFixture
) -> None:
    last_closed = FIRST_OPEN + 400 * STEP
    server.hidden_after["ETH/USDT"] = last_closed - STEP  # ETH's next candle will be late
    async with consuming(server) as consumer:
        await consumer.wait_for(300)
        server.now += STEP
        await consumer.wait_for(301)
        late = consumer.received[-1][0]
        assert late.close_time == last_closed + STEP
        assert set(late.candles) == {"BTC/USDT"}

        with caplog.at_level(logging.WARNING, logger="brain.feeds.exchange"):
            del server.hidden_after["ETH/USDT"]  # the late candle shows up, after its batch
            server.now += STEP
            await consumer.wait_for(302)
            await polls_after(server, 4)
    assert "came after its batch" in caplog.text
    assert_clean_stream(consumer, last_closed - 299 * STEP, last_closed + 2 * STEP)
    assert set(consumer.received[-1][0].candles) == set(SYMBOLS)


async def test_an_unknown_symbol_is_a_feed_error(server: FakeBinance) -> None:
    feed = local_feed(server, symbols=("BTC/USDT", "NOPE/USDT"))
    try:
        with pytest.raises(FeedError, match=r"market\.symbols.*NOPE/USDT"):
            async for _ in feed.batches():
                pass
    finally:
        await feed.aclose()


async def test_an_unknown_timeframe_or_exchange_is_a_feed_error(server: FakeBinance) -> None:
    with pytest.raises(FeedError, match=r"timeframe '7m'"):
        local_feed(server, timeframe="7m")
    with pytest.raises(FeedError, match=r"market\.exchange.*nosuchexchange"):
        ExchangeFeed(
            "nosuchexchange",
            SYMBOLS,
            "5m",
            poll_interval=POLL,
            retry_max=RETRY_MAX,
            lost_after=LOST_AFTER,
            on_lost=_never,
            on_recovered=_never,
        )

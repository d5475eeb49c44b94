"""Live public candles from an exchange through ccxt's async API (no keys: paper trading on real
prices). A warm-up of recent history, then polling for newly closed candles, with retries and
feed-lost / feed-recovered callbacks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import ccxt

from brain.feeds.base import FeedCallback, FeedError, timeframe_delta
from brain.models import Candle, CandleBatch
from shared.timeutil import utc_now

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The warm-up comes in one fetch_ohlcv page; exchanges cap a page (Binance: 1,000 candles).
MAX_HISTORY = 1000
# What a flaky network or a struggling exchange throws; anything else is a bug or a bad setting.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ccxt.NetworkError,
    ccxt.ExchangeError,
    OSError,
    TimeoutError,
)

ExchangeFactory = Callable[[str], Any]  # exchange id -> a ccxt.async_support exchange


def default_exchange(exchange_id: str) -> Any:
    """A keyless ccxt async exchange that respects the exchange's rate limits."""
    import ccxt.async_support as ccxt_async

    if exchange_id not in ccxt_async.exchanges:
        raise FeedError(f"market.exchange: {exchange_id!r} is not a ccxt exchange id")
    config: dict[str, Any] = {"enableRateLimit": True}
    if exchange_id == "binance":
        # Spot markets only: loading the futures markets too would cost two more requests and
        # fail the whole feed where those endpoints are blocked.
        config["options"] = {"fetchMarkets": {"types": ["spot"]}}
    return getattr(ccxt_async, exchange_id)(config)


class _Assembler:
    """Gathers fetched candles into batches and decides when a close time may go out.

    A close time goes out, in order and once, when every symbol has it, or has already moved
    past it (a gap), or when it has waited one whole extra poll round for a late symbol.
    """

    def __init__(self, symbols: Sequence[str], step: timedelta) -> None:
        self._symbols = tuple(symbols)
        self._step_ms = int(step / timedelta(milliseconds=1))
        self._pending: dict[int, dict[str, Candle]] = {}  # close ms -> symbol -> candle
        self._first_round: dict[int, int] = {}  # close ms -> the round that first saw it
        self._latest_open: dict[str, int] = {}  # newest open ms seen per symbol
        self._emitted: int | None = None  # the last close ms that went out
        self._rounds = 0  # poll rounds completed for every symbol

    def next_open_ms(self, symbol: str) -> int | None:
        latest = self._latest_open.get(symbol)
        return None if latest is None else latest + self._step_ms

    def add(self, symbol: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            open_ms = int(row[0])
            close_ms = open_ms + self._step_ms
            if open_ms <= self._latest_open.get(symbol, -1):
                continue  # seen already
            self._latest_open[symbol] = open_ms
            if self._emitted is not None and close_ms <= self._emitted:
                logger.warning("%s candle closing at %s came after its batch", symbol, close_ms)
                continue
            open_time = _EPOCH + timedelta(milliseconds=open_ms)
            o, h, low, c, v = (float(value) for value in row[1:6])
            self._pending.setdefault(close_ms, {})[symbol] = Candle(
                symbol,
                open_time,
                open_time + timedelta(milliseconds=self._step_ms),
                o,
                h,
                low,
                c,
                v,
            )
            self._first_round.setdefault(close_ms, self._rounds)

    def round_completed(self) -> None:
        self._rounds += 1

    def ready(self) -> list[CandleBatch]:
        out: list[CandleBatch] = []
        for close_ms in sorted(self._pending):
            candles = self._pending[close_ms]
            waiting = [
                symbol
                for symbol in self._symbols
                if symbol not in candles
                and self._latest_open.get(symbol, -1) + self._step_ms < close_ms
            ]
            # Rounds count only when all symbols were fetched, so an outage never makes a
            # symbol look late.
            if waiting and self._rounds - self._first_round[close_ms] < 2:
                break  # later batches wait too: the stream stays in time order
            del self._pending[close_ms], self._first_round[close_ms]
            self._emitted = close_ms
            close_time = _EPOCH + timedelta(milliseconds=close_ms)
            out.append(CandleBatch(close_time=close_time, candles=candles))
        return out


class _Health:
    """A failure streak: ``on_lost`` once it passes ``lost_after``, ``on_recovered`` once after."""

    def __init__(
        self, lost_after: float, on_lost: FeedCallback, on_recovered: FeedCallback
    ) -> None:
        self._lost_after = lost_after
        self._on_lost = on_lost
        self._on_recovered = on_recovered
        self._failing_since: float | None = None
        self._lost = False

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def failed(self) -> None:
        if self._failing_since is None:
            self._failing_since = self._now()
        await self.check()

    async def check(self) -> None:
        if self._lost or self._failing_since is None:
            return
        if self._now() - self._failing_since > self._lost_after:
            self._lost = True
            logger.error("exchange feed lost: failing for over %.1f s", self._lost_after)
            await self._on_lost()

    def until_lost(self) -> float | None:
        """Seconds until the streak counts as lost (None: not failing, or lost already)."""
        if self._lost or self._failing_since is None:
            return None
        return max(0.0, self._failing_since + self._lost_after - self._now())

    async def succeeded(self) -> None:
        self._failing_since = None
        if self._lost:
            self._lost = False
            logger.warning("exchange feed recovered")
            await self._on_recovered()


class ExchangeFeed:
    """Closed candles of ``symbols`` from a ccxt exchange, polled every ``poll_interval`` s.

    Each ``batches()`` stream starts with the last ``history`` closed candles per symbol (the
    warm-up), then yields every newly closed candle once, in time order. The still-open candle
    is never yielded. Failures are retried with exponential backoff up to ``retry_max`` seconds;
    after ``lost_after`` seconds of failing, ``on_lost`` is awaited once, and ``on_recovered``
    once when the exchange answers again. Nothing is lost across an outage: polling resumes
    from each symbol's last candle. ``after`` is accepted for the Feed protocol: live candles
    are paced by the market itself.
    """

    name = "exchange"

    def __init__(
        self,
        exchange_id: str,
        symbols: Sequence[str],
        timeframe: str,
        *,
        poll_interval: float,
        retry_max: float,
        lost_after: float,
        on_lost: FeedCallback,
        on_recovered: FeedCallback,
        exchange_factory: ExchangeFactory | None = None,
        history: int = 300,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if history < 1:
            raise FeedError(f"history must be at least 1 candle, got {history}")
        self._symbols = tuple(symbols)
        self._timeframe = timeframe
        self._step = timeframe_delta(timeframe)
        self._poll_interval = poll_interval
        self._retry_max = retry_max
        self._lost_after = lost_after
        self._on_lost = on_lost
        self._on_recovered = on_recovered
        self._history = history
        self._clock = clock
        self._exchange = (exchange_factory or default_exchange)(exchange_id)
        if not self._exchange.has.get("fetchOHLCV"):
            raise FeedError(f"market.exchange: {exchange_id} offers no candles (fetchOHLCV)")
        supported = getattr(self._exchange, "timeframes", None) or {}
        if supported and timeframe not in supported:
            raise FeedError(f"market.timeframe: {exchange_id} has no {timeframe!r} candles")

    async def aclose(self) -> None:
        await self._exchange.close()

    async def batches(self, after: datetime | None = None) -> AsyncIterator[CandleBatch]:
        assembler = _Assembler(self._symbols, self._step)
        health = _Health(self._lost_after, self._on_lost, self._on_recovered)
        failures = 0
        while True:
            try:
                await self._poll(assembler)
            except ccxt.BadSymbol as exc:
                raise FeedError(f"market.symbols: {exc}") from exc
            except TRANSIENT_ERRORS as exc:
                failures += 1
                delay = min(self._poll_interval * 2 ** (failures - 1), self._retry_max)
                logger.warning(
                    "exchange poll failed (%d in a row, retry in %.2f s): %s: %s",
                    failures,
                    delay,
                    type(exc).__name__,
                    exc,
                )
                await health.failed()
                for batch in assembler.ready():  # whatever is complete still goes out
                    yield batch
                await self._pause(delay, health)
                continue
            failures = 0
            assembler.round_completed()
            await health.succeeded()
            for batch in assembler.ready():
                yield batch
            await asyncio.sleep(self._poll_interval)

    async def _poll(self, assembler: _Assembler) -> None:
        """One round: every symbol's closed candles since its last one (raises on failure;
        the symbols fetched before the failure keep their candles)."""
        for symbol in self._symbols:
            rows = await self._closed_candles(symbol, assembler.next_open_ms(symbol))
            assembler.add(symbol, rows)

    async def _closed_candles(self, symbol: str, since: int | None) -> list[list[Any]]:
        step_ms = int(self._step / timedelta(milliseconds=1))
        now_ms = int((self._clock() - _EPOCH) / timedelta(milliseconds=1))

        def closed(row: list[Any]) -> bool:
            return row[0] is not None and int(row[0]) + step_ms <= now_ms

        if since is None:  # warm-up: the newest candles, the last of which is still open
            raw = await self._exchange.fetch_ohlcv(symbol, self._timeframe, limit=self._history + 1)
            return [row for row in raw if closed(row) and None not in row[:6]][-self._history :]
        rows: list[list[Any]] = []
        while True:  # page forward from the last candle (a long outage may need several pages)
            raw = await self._exchange.fetch_ohlcv(
                symbol, self._timeframe, since=since, limit=self._history
            )
            page = [row for row in raw if closed(row) and int(row[0]) >= since]
            rows.extend(row for row in page if None not in row[:6])
            if len(raw) < self._history or not page or not closed(raw[-1]):
                return rows
            since = int(page[-1][0]) + step_ms

    async def _pause(self, delay: float, health: _Health) -> None:
        """Sleep ``delay`` seconds, declaring the feed lost on time if that falls inside it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (remaining := deadline - loop.time()) > 0:
            until_lost = health.until_lost()
            if until_lost is None or until_lost >= remaining:
                await asyncio.sleep(remaining)
                return
            await asyncio.sleep(until_lost + 0.001)
            await health.check()

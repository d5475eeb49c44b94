"""A seeded random market: a geometric random walk per symbol whose regime (calm, trending,
volatile) switches at random. Same seed, same candles; for load tests and soak runs."""

from __future__ import annotations

import math
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import count as counter

import numpy as np

from brain.feeds.base import FeedError, Pacer, timeframe_delta
from brain.models import Candle, CandleBatch
from shared.timeutil import to_utc

_CHUNK = 512  # candles drawn per symbol at a time; fixed, so any count is a prefix of the rest
_REFERENCE_MINUTES = 5.0  # the regime parameters below are per 5-minute candle


@dataclass(frozen=True, slots=True)
class _Regime:
    name: str
    sigma: float  # standard deviation of the log return per 5-minute candle
    drift: float  # size of the mean log return per 5-minute candle (its sign is drawn)
    volume: float  # volume multiplier


_REGIMES = (
    _Regime("calm", sigma=0.0008, drift=0.0, volume=0.7),
    _Regime("trending", sigma=0.0016, drift=0.0004, volume=1.2),
    _Regime("volatile", sigma=0.0050, drift=0.0, volume=2.5),
)
_MEAN_REGIME_CANDLES = 240.0  # a regime lasts this many candles on average


class _Walk:
    """One symbol's endless candles, drawn in fixed-size chunks from its own generator."""

    def __init__(self, seed: int, symbol: str, minutes: float) -> None:
        # The stream depends on the seed and the symbol's name only, not on its place in the list.
        sequence = np.random.SeedSequence([seed, zlib.crc32(symbol.encode())])
        self._rng = np.random.Generator(np.random.PCG64(sequence))
        self._scale = minutes / _REFERENCE_MINUTES
        self._price = float(math.exp(self._rng.uniform(math.log(0.05), math.log(50_000.0))))
        self._base_volume = float(self._rng.uniform(100.0, 100_000.0)) / self._price
        self._regime = int(self._rng.integers(len(_REGIMES)))
        self._direction = 1.0

    def candles(self) -> Iterator[tuple[float, float, float, float, float]]:
        while True:
            yield from self._chunk()

    def _chunk(self) -> Iterator[tuple[float, float, float, float, float]]:
        rng = self._rng
        switches = rng.random(_CHUNK) < 1.0 / _MEAN_REGIME_CANDLES
        next_regimes = rng.integers(len(_REGIMES), size=_CHUNK)
        directions = rng.choice([-1.0, 1.0], size=_CHUNK)
        shocks = rng.standard_normal(_CHUNK)
        wicks = np.abs(rng.standard_normal((_CHUNK, 2)))
        volume_noise = rng.lognormal(0.0, 0.35, _CHUNK)
        root = math.sqrt(self._scale)
        for i in range(_CHUNK):
            if switches[i]:
                self._regime = int(next_regimes[i])
                self._direction = float(directions[i])
            regime = _REGIMES[self._regime]
            sigma = regime.sigma * root
            step = regime.drift * self._scale * self._direction + sigma * float(shocks[i])
            open_ = self._price
            close = open_ * math.exp(step)
            # Wicks reach past the body by a fraction of the candle's volatility.
            high = max(open_, close) * math.exp(0.5 * sigma * float(wicks[i, 0]))
            low = min(open_, close) * math.exp(-0.5 * sigma * float(wicks[i, 1]))
            surprise = 1.0 + abs(step) / sigma  # big moves trade more
            volume = self._base_volume * regime.volume * surprise * float(volume_noise[i])
            self._price = close
            yield open_, high, low, close, volume


class SyntheticFeed:
    """Seeded candles for ``symbols`` from ``start`` on; ``count`` batches, or endless if None."""

    name = "synthetic"

    def __init__(
        self,
        symbols: Sequence[str],
        timeframe: str,
        seed: int,
        start: datetime,
        count: int | None = None,
        *,
        speed: float = 0.0,
    ) -> None:
        if count is not None and count < 0:
            raise FeedError(f"count must not be negative, got {count}")
        self._symbols = tuple(symbols)
        self._timeframe = timeframe_delta(timeframe)
        self._seed = seed
        self._start = to_utc(start)
        self._count = count
        self._speed = speed

    async def batches(self, after: datetime | None = None) -> AsyncIterator[CandleBatch]:
        pacer = Pacer(self._timeframe, self._speed, after)
        for batch in self._generate():
            await pacer.wait(batch.close_time)
            yield batch

    async def aclose(self) -> None:
        """Nothing to release."""

    def _generate(self) -> Iterator[CandleBatch]:
        # Every call starts a fresh walk from the seed, so each stream is the same.
        minutes = self._timeframe.total_seconds() / 60.0
        walks = [_Walk(self._seed, symbol, minutes).candles() for symbol in self._symbols]
        for index in counter():
            if self._count is not None and index >= self._count:
                return
            open_time = self._start + index * self._timeframe
            close_time = open_time + self._timeframe
            candles: dict[str, Candle] = {}
            for symbol, walk in zip(self._symbols, walks, strict=True):
                o, h, low, c, v = next(walk)
                candles[symbol] = Candle(symbol, open_time, close_time, o, h, low, c, v)
            yield CandleBatch(close_time=close_time, candles=candles)

"""Incremental indicators: one O(1) update per closed candle and symbol.

Each indicator follows TA-Lib's default definition (no unstable period, default
compatibility) and does its arithmetic in the same order as TA-Lib's C code, so the values
agree with ``talib.EMA``/``RSI``/``ATR``/``SMA`` to rounding (tests/test_indicators.py).
Plain floats: for one value at a time they beat numpy by a wide margin.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from brain.models import Candle, Indicators, Regime, Trend

if TYPE_CHECKING:  # strategy imports this module for its code hash; avoid the cycle
    from brain.strategy import StrategyParams


class Ema:
    """EMA(n) with alpha = 2/(n+1), seeded with the SMA of the first n values.

    The first value comes with the n-th input (index n-1), as in TA-Lib.
    """

    def __init__(self, period: int) -> None:
        self._period = period
        self._k = 2.0 / (period + 1)
        self._seed_sum = 0.0
        self._count = 0
        self._value: float | None = None

    def update(self, x: float) -> float | None:
        if self._value is not None:
            # TA-Lib's order: ((x - prev) * k) + prev
            self._value = ((x - self._value) * self._k) + self._value
            return self._value
        self._seed_sum += x
        self._count += 1
        if self._count == self._period:
            self._value = self._seed_sum / self._period
        return self._value


class RollingMean:
    """SMA(n) over the last n values, including the newest (a running sum, as TA-Lib keeps)."""

    def __init__(self, period: int) -> None:
        self._period = period
        self._window: deque[float] = deque()
        self._total = 0.0

    def update(self, x: float) -> float | None:
        self._window.append(x)
        self._total += x
        if len(self._window) > self._period:
            self._total -= self._window.popleft()
        if len(self._window) < self._period:
            return None
        return self._total / self._period


class WilderRsi:
    """RSI(n) with Wilder smoothing.

    The first averages are the simple means of the first n changes (so the first value comes
    with the (n+1)-th input, index n); then avg = (prev * (n-1) + x) / n. The value is
    100 * gain / (gain + loss), which is 100 - 100 / (1 + gain/loss) without the division by
    zero: 100 when only gains, 0 when only losses. A window with no change at all gives 50
    (TA-Lib gives 0 there; a dead-flat market is neither overbought nor oversold).
    """

    def __init__(self, period: int) -> None:
        self._period = period
        self._prev_close: float | None = None
        self._changes = 0
        self._gain = 0.0
        self._loss = 0.0
        self._ready = False

    def update(self, close: float) -> float | None:
        prev, self._prev_close = self._prev_close, close
        if prev is None:
            return None
        change = close - prev
        n = self._period
        if self._ready:
            gain, loss = self._gain * (n - 1), self._loss * (n - 1)
            if change < 0:
                loss -= change
            else:
                gain += change
            self._gain, self._loss = gain / n, loss / n
        else:
            if change < 0:
                self._loss -= change
            else:
                self._gain += change
            self._changes += 1
            if self._changes < n:
                return None
            self._gain /= n
            self._loss /= n
            self._ready = True
        total = self._gain + self._loss
        return 100.0 * (self._gain / total) if total > 0.0 else 50.0


class WilderAtr:
    """ATR(n): true ranges from the 2nd candle on; first ATR = their mean over n candles
    (so the first value comes with index n), then (prev * (n-1) + tr) / n."""

    def __init__(self, period: int) -> None:
        self._period = period
        self._prev_close: float | None = None
        self._tr_sum = 0.0
        self._trs = 0
        self._value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        prev, self._prev_close = self._prev_close, close
        if prev is None:
            return None
        tr = max(high - low, abs(high - prev), abs(low - prev))
        n = self._period
        if self._value is not None:
            self._value = (self._value * (n - 1) + tr) / n
        else:
            self._tr_sum += tr
            self._trs += 1
            if self._trs == n:
                self._value = self._tr_sum / n
        return self._value


def classify_regime(
    price: float,
    ema_fast: float,
    ema_slow: float,
    atr: float,
    *,
    trend_threshold_pct: float,
    volatile_atr_pct: float,
) -> Regime:
    """Volatile when ATR >= volatile_atr_pct % of the price; else trending when the EMAs are at
    least trend_threshold_pct % of the price apart; else ranging. (Compared as products, not
    quotients, so a value exactly on a threshold counts without rounding noise.)"""
    if atr * 100.0 >= volatile_atr_pct * price:
        return "volatile"
    if abs(ema_fast - ema_slow) * 100.0 >= trend_threshold_pct * price:
        return "trending"
    return "ranging"


def classify_trend(price: float, ema_fast: float, ema_slow: float) -> Trend:
    """Bullish when the fast EMA and the price are both above the slow EMA; bearish when both
    are below it; neutral otherwise (including ties)."""
    if ema_fast > ema_slow and price > ema_slow:
        return "bullish"
    if ema_fast < ema_slow and price < ema_slow:
        return "bearish"
    return "neutral"


class IndicatorState:
    """One symbol's indicators, fed every closed candle in order.

    ``update`` returns None for the first ``warmup`` candles, until every indicator has a
    value. Nothing is persisted: after a restart the engine re-feeds the recent history.
    """

    def __init__(self, params: StrategyParams) -> None:
        self._params = params
        self._ema_fast = Ema(params.ema_fast)
        self._ema_slow = Ema(params.ema_slow)
        self._rsi = WilderRsi(params.rsi_period)
        self._atr = WilderAtr(params.atr_period)
        self._volume = RollingMean(params.volume_period)

    @property
    def warmup(self) -> int:
        """How many candles return None before the first Indicators."""
        return warmup_candles(self._params)

    def update(self, candle: Candle) -> Indicators | None:
        close = candle.close
        # Every indicator must see every candle, so update all before checking readiness.
        ema_fast = self._ema_fast.update(close)
        ema_slow = self._ema_slow.update(close)
        rsi = self._rsi.update(close)
        atr = self._atr.update(candle.high, candle.low, close)
        mean_volume = self._volume.update(candle.volume)
        if ema_fast is None or ema_slow is None or rsi is None or atr is None:
            return None
        if mean_volume is None:
            return None
        params = self._params
        return Indicators(
            price=close,
            ema_fast=ema_fast,
            ema_slow=ema_slow,
            rsi=rsi,
            # No traded volume over the whole window: call the ratio 0, not a division error.
            volume_ratio=candle.volume / mean_volume if mean_volume > 0.0 else 0.0,
            atr=atr,
            regime=classify_regime(
                close,
                ema_fast,
                ema_slow,
                atr,
                trend_threshold_pct=params.trend_threshold_pct,
                volatile_atr_pct=params.volatile_atr_pct,
            ),
            trend=classify_trend(close, ema_fast, ema_slow),
        )


def warmup_candles(params: StrategyParams) -> int:
    """Candles needed before the first Indicators, minus one: the EMAs and the volume mean
    start at index period-1, RSI and ATR at index period (they need a previous close)."""
    return max(
        params.ema_fast - 1,
        params.ema_slow - 1,
        params.volume_period - 1,
        params.rsi_period,
        params.atr_period,
    )

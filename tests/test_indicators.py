"""Incremental indicators against TA-Lib on the real Binance data, and by hand.

How the comparison aligns: each incremental indicator is fed the whole series from its first
candle, exactly as TA-Lib is, and both are indexed by candle. TA-Lib runs with its defaults
(compatibility 0, unstable period 0 for EMA, RSI and ATR; asserted below), so its leading NaNs
are exactly our warm-up Nones: EMA(n) and SMA(n) from index n-1, RSI(n) and ATR(n) from
index n. From there every value must agree: RSI (bounded 0-100) to 1e-6 absolute; EMA, ATR and
the volume average (price or volume scaled, BTC ~6e4 vs DOGE ~0.1) to 1e-6 relative.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import talib

from brain.indicators import (
    Ema,
    IndicatorState,
    RollingMean,
    WilderAtr,
    WilderRsi,
    classify_regime,
    classify_trend,
)
from brain.models import Candle
from brain.strategy import StrategyParams
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATASET = "binance-spot-5m-2024-07-22_2024-08-11"
SYMBOLS = ("BTC_USDT", "ETH_USDT", "SOL_USDT", "XRP_USDT", "DOGE_USDT", "LTC_USDT")
FIVE_MINUTES = timedelta(minutes=5)


def market_dir() -> Path:
    """The repository's copy of the real data, else the shared original."""
    for base in (ROOT / "data" / "market", Path("/work/shared/data/market")):
        if (base / DATASET).is_dir():
            return base / DATASET
    pytest.skip(f"market data {DATASET} not found")


def load_candles(symbol: str) -> list[Candle]:
    """One symbol's candles from ``<BASE>_<QUOTE>-5m.csv``, oldest first."""
    path = market_dir() / f"{symbol}-5m.csv"
    candles = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            opened = datetime.fromtimestamp(int(row["timestamp_ms"]) / 1000, UTC)
            candles.append(
                Candle(
                    symbol=symbol.replace("_", "/"),
                    open_time=opened,
                    close_time=opened + FIVE_MINUTES,
                    open=float(row["open"]),
                    high=float(row["high"]),
                    low=float(row["low"]),
                    close=float(row["close"]),
                    volume=float(row["volume"]),
                )
            )
    return candles


@pytest.fixture(scope="module")
def market() -> dict[str, list[Candle]]:
    return {symbol: load_candles(symbol) for symbol in SYMBOLS}


@pytest.fixture
def params(base_settings: Settings) -> StrategyParams:
    return StrategyParams.from_settings(base_settings.strategy)


def as_array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def assert_agrees(ours: np.ndarray, theirs: np.ndarray, *, rel: float = 0, abs_: float = 0) -> None:
    """Same warm-up (NaN where TA-Lib has NaN, and only there), then the same values."""
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    defined = ~np.isnan(theirs)
    assert defined.sum() > 5000
    np.testing.assert_allclose(ours[defined], theirs[defined], rtol=rel, atol=abs_)


def test_talib_runs_with_its_defaults() -> None:
    assert talib.get_compatibility() == 0  # type: ignore[attr-defined]
    for name in ("EMA", "RSI", "ATR"):
        assert talib.get_unstable_period(name) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_indicator_agrees_with_talib(
    market: dict[str, list[Candle]], params: StrategyParams, symbol: str
) -> None:
    candles = market[symbol]
    high, low, close, volume = (
        np.array([getattr(c, field) for c in candles], dtype=np.float64)
        for field in ("high", "low", "close", "volume")
    )
    fast, slow, rsi = Ema(params.ema_fast), Ema(params.ema_slow), WilderRsi(params.rsi_period)
    atr, mean_volume = WilderAtr(params.atr_period), RollingMean(params.volume_period)
    rel = {"rel": 1e-6}
    assert_agrees(
        as_array([fast.update(x) for x in close]), talib.EMA(close, params.ema_fast), **rel
    )
    assert_agrees(
        as_array([slow.update(x) for x in close]), talib.EMA(close, params.ema_slow), **rel
    )
    assert_agrees(
        as_array([rsi.update(x) for x in close]), talib.RSI(close, params.rsi_period), abs_=1e-6
    )
    assert_agrees(
        as_array([atr.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)]),
        talib.ATR(high, low, close, params.atr_period),
        **rel,
    )
    assert_agrees(
        as_array([mean_volume.update(v) for v in volume]),
        talib.SMA(volume, params.volume_period),
        **rel,
    )


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_indicator_state_matches_talib_after_warmup(
    market: dict[str, list[Candle]], params: StrategyParams, symbol: str
) -> None:
    candles = market[symbol]
    close = np.array([c.close for c in candles])
    high, low = np.array([c.high for c in candles]), np.array([c.low for c in candles])
    volume = np.array([c.volume for c in candles])
    expected = {
        "ema_fast": talib.EMA(close, params.ema_fast),
        "ema_slow": talib.EMA(close, params.ema_slow),
        "rsi": talib.RSI(close, params.rsi_period),
        "atr": talib.ATR(high, low, close, params.atr_period),
        "volume_ratio": volume / talib.SMA(volume, params.volume_period),
    }
    state = IndicatorState(params)
    outputs = [state.update(c) for c in candles]
    assert all(out is None for out in outputs[: state.warmup])
    produced = outputs[state.warmup :]
    assert all(out is not None for out in produced)
    for name, theirs in expected.items():
        ours = np.array([getattr(out, name) for out in produced])
        rsi = name == "rsi"  # bounded: absolute; the rest scale with price or volume: relative
        np.testing.assert_allclose(
            ours, theirs[state.warmup :], rtol=0.0 if rsi else 1e-6, atol=1e-6 if rsi else 0.0
        )
    assert [out.price for out in produced if out] == [c.close for c in candles[state.warmup :]]


def test_a_three_week_replay_of_six_symbols_takes_well_under_a_second(
    market: dict[str, list[Candle]], params: StrategyParams
) -> None:
    started = time.perf_counter()
    updates = 0
    for candles in market.values():
        state = IndicatorState(params)
        for candle in candles:
            state.update(candle)
            updates += 1
    assert updates == 36_288
    assert time.perf_counter() - started < 1.0


def feed(indicator: Callable[[float], float | None], values: Sequence[float]) -> list[float | None]:
    return [indicator(v) for v in values]


def test_ema_by_hand() -> None:
    # alpha = 2/(3+1) = 0.5; seed = mean(1, 2, 3) = 2; then 2 + (4-2)/2 = 3; 3 + (5-3)/2 = 4.
    assert feed(Ema(3).update, [1, 2, 3, 4, 5]) == [None, None, 2, 3, 4]


def test_rsi_by_hand() -> None:
    # Changes +1 -1 +2 +1 -1. First averages: gain (1+2)/3 = 1, loss 1/3 -> 75.
    # Then gain (1*2+1)/3 = 1, loss (1/3*2)/3 = 2/9 -> 100*9/11;
    # then gain (1*2)/3 = 2/3, loss (2/9*2+1)/3 = 13/27 -> 1800/31.
    values = feed(WilderRsi(3).update, [10, 11, 10, 12, 13, 12])
    assert values[:3] == [None, None, None]
    assert values[3:] == pytest.approx([75.0, 900 / 11, 1800 / 31])


def test_rsi_extremes() -> None:
    assert feed(WilderRsi(2).update, [1, 2, 3, 4])[2:] == [100.0, 100.0]
    assert feed(WilderRsi(2).update, [4, 3, 2, 1])[2:] == [0.0, 0.0]
    assert feed(WilderRsi(2).update, [5, 5, 5])[2:] == [50.0]  # no movement at all: neutral


def test_atr_by_hand() -> None:
    atr = WilderAtr(2)
    # TRs from the 2nd candle: max(12-9, |12-10|, |9-10|) = 3, max(11-10, |11-11|, |10-11|) = 1,
    # so the first ATR is (3+1)/2 = 2; then TR max(3.5, |14.5-10.5|, 0.5) = 4 -> (2*1 + 4)/2 = 3.
    assert atr.update(11, 9, 10) is None
    assert atr.update(12, 9, 11) is None
    assert atr.update(11, 10, 10.5) == 2.0
    assert atr.update(14.5, 11, 14) == 3.0


def test_rolling_mean_includes_the_newest_value() -> None:
    assert feed(RollingMean(3).update, [3, 6, 9, 12]) == [None, None, 6, 9]


@pytest.mark.parametrize(
    ("changes", "warmup"),
    [
        ({}, 25),  # the defaults: ema_slow 26 is slowest (first value at index 25)
        ({"ema_fast": 3, "ema_slow": 5, "rsi_period": 10, "atr_period": 4, "volume_period": 6}, 10),
        ({"ema_fast": 3, "ema_slow": 5, "rsi_period": 4, "atr_period": 12, "volume_period": 6}, 12),
        ({"ema_fast": 3, "ema_slow": 5, "rsi_period": 4, "atr_period": 4, "volume_period": 30}, 29),
    ],
)
def test_update_returns_none_exactly_until_the_slowest_indicator_is_ready(
    params: StrategyParams, changes: dict[str, int], warmup: int
) -> None:
    state = IndicatorState(StrategyParams.from_dict({**params.to_dict(), **changes}))
    assert state.warmup == warmup
    candles = load_candles("BTC_USDT")[: warmup + 3]
    outputs = [state.update(c) for c in candles]
    assert outputs[:warmup] == [None] * warmup
    assert all(out is not None for out in outputs[warmup:])


def regime(price: float, fast: float, slow: float, atr: float) -> str:
    return classify_regime(price, fast, slow, atr, trend_threshold_pct=0.5, volatile_atr_pct=1.5)


def test_regime_boundaries() -> None:
    # price 200: volatile from ATR 3 (1.5 %), trending from an EMA gap of 1 (0.5 %).
    assert regime(200, 101, 100, 3.0) == "volatile"
    assert regime(200, 100, 101, 3.0) == "volatile"  # volatility wins over any trend
    assert regime(200, 101, 100, 2.999) == "trending"
    assert regime(200, 100, 101, 2.999) == "trending"  # a falling trend is a trend too
    assert regime(200, 100.999, 100, 2.999) == "ranging"
    assert regime(200, 100, 100, 0.0) == "ranging"


def test_trend_boundaries() -> None:
    assert classify_trend(102, 101, 100) == "bullish"
    assert classify_trend(100, 101, 100) == "neutral"  # price on the slow EMA
    assert classify_trend(99, 101, 100) == "neutral"  # fast above, price below
    assert classify_trend(98, 99, 100) == "bearish"
    assert classify_trend(100, 99, 100) == "neutral"
    assert classify_trend(101, 99, 100) == "neutral"
    assert classify_trend(105, 100, 100) == "neutral"  # EMAs equal


def test_indicators_carry_the_classification(params: StrategyParams) -> None:
    state = IndicatorState(params)
    for candle in load_candles("ETH_USDT")[:200]:
        out = state.update(candle)
        if out is None:
            continue
        assert out.trend == classify_trend(out.price, out.ema_fast, out.ema_slow)
        assert out.regime == classify_regime(
            out.price,
            out.ema_fast,
            out.ema_slow,
            out.atr,
            trend_threshold_pct=params.trend_threshold_pct,
            volatile_atr_pct=params.volatile_atr_pct,
        )

"""The trading strategy: its parameters, its entry/exit rules and its version identity.

Long-only spot. Flat: BUY when the trend is bullish, the market is not volatile, RSI sits in
[rsi_entry_min, rsi_entry_max] and volume is at least volume_ratio_min times its average.
Holding: SELL when RSI reaches rsi_exit or the trend turns bearish.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

from brain import indicators
from brain.models import Indicators, Signal
from shared.settings import StrategySettings
from shared.timeutil import to_utc

ParamValue = int | float


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """One strategy version's parameters (the same keys as ``[strategy]`` in the settings).

    Construction validates every value against ``PARAM_BOUNDS`` (inclusive) and the relations
    between them; a ValueError names the offending parameter.
    """

    ema_fast: int
    ema_slow: int
    rsi_period: int
    atr_period: int
    volume_period: int
    rsi_entry_min: float
    rsi_entry_max: float
    rsi_exit: float
    volume_ratio_min: float
    trend_threshold_pct: float
    volatile_atr_pct: float
    stop_loss_atr: float
    take_profit_atr: float
    min_confidence: float

    # What the optimiser and the AI strategist may propose; each range lies within the one
    # shared.settings.StrategySettings allows (tests check it). Periods are in candles.
    PARAM_BOUNDS: ClassVar[Mapping[str, tuple[float, float]]] = MappingProxyType(
        {
            "ema_fast": (2, 200),
            "ema_slow": (3, 500),
            "rsi_period": (2, 100),
            "atr_period": (2, 100),
            "volume_period": (2, 200),
            "rsi_entry_min": (0.0, 100.0),
            "rsi_entry_max": (0.0, 100.0),
            "rsi_exit": (0.0, 100.0),
            "volume_ratio_min": (0.0, 10.0),
            "trend_threshold_pct": (0.0, 10.0),
            "volatile_atr_pct": (0.05, 50.0),
            "stop_loss_atr": (0.1, 20.0),
            "take_profit_atr": (0.1, 50.0),
            "min_confidence": (0.0, 1.0),
        }
    )
    INTEGER_PARAMS: ClassVar[frozenset[str]] = frozenset(
        {"ema_fast", "ema_slow", "rsi_period", "atr_period", "volume_period"}
    )

    def __post_init__(self) -> None:
        for name, (low, high) in self.PARAM_BOUNDS.items():
            value = _coerce(name, getattr(self, name), integer=name in self.INTEGER_PARAMS)
            object.__setattr__(self, name, value)  # 45 -> 45.0, so equal params hash equal
            if not low <= value <= high:  # also refuses NaN
                raise ValueError(f"{name}={value!r} is outside [{low}, {high}]")
        _require(self.ema_fast < self.ema_slow, "ema_fast", "must be below ema_slow")
        _require(
            self.rsi_entry_min < self.rsi_entry_max, "rsi_entry_min", "must be below rsi_entry_max"
        )
        # An entry band reaching the exit level would sell on the next candle.
        _require(self.rsi_entry_max < self.rsi_exit, "rsi_exit", "must be above rsi_entry_max")

    @classmethod
    def from_settings(cls, settings: StrategySettings) -> StrategyParams:
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict[str, ParamValue]:
        """Plain JSON-ready values, for the strategy versions table."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrategyParams:
        names = {f.name for f in dataclasses.fields(cls)}
        if missing := sorted(names - data.keys()):
            raise ValueError(f"missing strategy parameter(s): {', '.join(missing)}")
        if unknown := sorted(data.keys() - names):
            raise ValueError(f"unknown strategy parameter(s): {', '.join(unknown)}")
        return cls(**data)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def _coerce(name: str, value: object, *, integer: bool) -> ParamValue:
    # bool is an int subclass, and True is never a sensible period or threshold.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not integer:
        return float(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{name} must be a whole number, not {value!r}")
        return int(value)
    return value


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{name} {message}")


def _ramp(x: float, full: float) -> float:
    """0 at x <= 0 rising linearly to 1 at x >= full (1 for any positive x when full <= 0)."""
    if x <= 0.0:
        return 0.0
    if full <= 0.0 or x >= full:
        return 1.0
    return x / full


class Strategy:
    """Turns one symbol's indicators into a BUY, a SELL or nothing.

    BUY confidence = 0.4 * trend + 0.3 * volume + 0.3 * rsi, each part in [0, 1]:
      trend:  the EMA spread (ema_fast - ema_slow, % of price) over twice trend_threshold_pct,
              capped at 1 (so reaching the threshold is worth half);
      volume: volume_ratio over twice volume_ratio_min, capped at 1;
      rsi:    1 at the middle of the entry band, falling linearly to 0 at its edges
              (room left before overbought, momentum already there).
    Non-decreasing in the spread and the volume ratio, always within [0, 1].

    SELL confidence = 0.5 + 0.5 * strength, in [0.5, 1]: strength is how far RSI went past
    rsi_exit towards 100, or the bearish spread over twice trend_threshold_pct, whichever is
    larger. Exits cut risk, so they never score below a half.
    Signals below min_confidence are still returned; the engine rejects them.
    """

    def __init__(self, params: StrategyParams, version: str) -> None:
        self.params = params
        self.version = version

    def evaluate(self, symbol: str, ind: Indicators, holding: bool) -> Signal | None:
        p = self.params
        if holding:
            exit_rsi = ind.rsi >= p.rsi_exit
            if not exit_rsi and ind.trend != "bearish":
                return None
            reason = f"RSI {ind.rsi:.1f} >= {p.rsi_exit:g}" if exit_rsi else "trend turned bearish"
            return Signal(symbol, "SELL", self.sell_confidence(ind), reason)
        if (
            ind.trend != "bullish"
            or ind.regime == "volatile"
            or not p.rsi_entry_min <= ind.rsi <= p.rsi_entry_max
            or ind.volume_ratio < p.volume_ratio_min
        ):
            return None
        reason = f"bullish {ind.regime}, RSI {ind.rsi:.1f}, volume {ind.volume_ratio:.2f}x"
        return Signal(symbol, "BUY", self.buy_confidence(ind), reason)

    def buy_confidence(self, ind: Indicators) -> float:
        p = self.params
        spread_pct = (ind.ema_fast - ind.ema_slow) / ind.price * 100.0
        trend = _ramp(spread_pct, 2.0 * p.trend_threshold_pct)
        volume = _ramp(ind.volume_ratio, 2.0 * p.volume_ratio_min)
        half_band = (p.rsi_entry_max - p.rsi_entry_min) / 2.0
        middle = p.rsi_entry_min + half_band
        rsi = max(0.0, 1.0 - abs(ind.rsi - middle) / half_band)
        return min(1.0, 0.4 * trend + 0.3 * volume + 0.3 * rsi)

    def sell_confidence(self, ind: Indicators) -> float:
        p = self.params
        past_exit = _ramp(ind.rsi - p.rsi_exit, 100.0 - p.rsi_exit)
        down_spread_pct = (ind.ema_slow - ind.ema_fast) / ind.price * 100.0
        bearish = _ramp(down_spread_pct, 2.0 * p.trend_threshold_pct)
        return 0.5 + 0.5 * max(past_exit, bearish)

    def stop_loss(self, entry_price: float, atr: float) -> float:
        return entry_price - self.params.stop_loss_atr * atr

    def take_profit(self, entry_price: float, atr: float) -> float:
        return entry_price + self.params.take_profit_atr * atr


def code_hash(params: StrategyParams) -> str:
    """First 8 hex digits of sha256 over the parameters' canonical JSON and the source of the
    strategy and indicator modules: a change of any parameter or of the logic changes it."""
    digest = hashlib.sha256(params.canonical_json().encode())
    for module in (sys.modules[__name__], indicators):
        digest.update(b"\0")
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:8]


def version_id(moment: datetime) -> str:
    """``vYYYYMMDD_HHMMSS`` in UTC (a naive moment is taken to be UTC)."""
    return to_utc(moment).strftime("v%Y%m%d_%H%M%S")

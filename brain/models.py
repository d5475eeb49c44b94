"""The brain's value types, shared by its feeds, indicators, strategy, broker, risk and engine.

All times are aware UTC datetimes on the market's clock (candle time in replay).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.events import Action

Regime = Literal["trending", "ranging", "volatile"]
Trend = Literal["bullish", "bearish", "neutral"]

TIMEFRAMES: Mapping[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed candle of one symbol."""

    symbol: str
    open_time: datetime
    close_time: datetime  # open_time + the timeframe: when the candle closed
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class CandleBatch:
    """Every symbol's candle that closed at ``close_time`` (a symbol may be missing)."""

    close_time: datetime
    candles: Mapping[str, Candle]


@dataclass(frozen=True, slots=True)
class Indicators:
    """What the scan knows of one symbol after a closed candle."""

    price: float  # the candle's close
    ema_fast: float
    ema_slow: float
    rsi: float
    volume_ratio: float  # volume over its moving average
    atr: float
    regime: Regime
    trend: Trend


@dataclass(frozen=True, slots=True)
class Signal:
    symbol: str
    action: Action
    confidence: float  # in [0, 1]
    reason: str  # why the strategy said so, for logs and the signals history


@dataclass(frozen=True, slots=True)
class Fill:
    """An executed paper trade. ``pnl``/``pnl_pct`` are set on fills that close a position."""

    symbol: str
    action: Action
    qty: float
    price: float  # after slippage
    fee: float
    pnl: float | None
    pnl_pct: float | None  # percent of the position's cost (3.2 means 3.2 %)
    strategy_version: str
    executed_at: datetime
    reason: str  # "signal", "stop_loss", "take_profit", "manual"
    opened_at: datetime | None = None  # exits: when the position they close was opened

    def trade_fields(self) -> dict[str, object]:
        """What the trades history and the trade_executed event both say of a fill."""
        return {
            "symbol": self.symbol,
            "action": self.action,
            "qty": self.qty,
            "price": self.price,
            "fee": self.fee,
            "pnl": self.pnl,
            "pnl_pct": self.pnl_pct,
            "strategy_version": self.strategy_version,
        }

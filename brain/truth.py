"""Truth benchmarks: the 17 metrics of ``GET /v1/benchmarks``, kept incrementally.

The engine feeds every fill and every closed day; the state is running sums and counts plus one
daily return per day, and round-trips exactly through JSON (``to_dict``/``from_dict``) for crash
recovery. Formulas, units and edge cases are in ``docs/truth-benchmarks.md``.

- ``record_fill(fill)``: an entry (opening) fill; only its fee counts.
- ``record_exit(fill, opened_at)``: a fill that closes a position (``pnl`` set): one round trip,
  its pnl, its fee and its hold time.
- ``record_day(daily)``: a closed day: its portfolio value and its return.

Wins are ``pnl >= 0`` and losses ``pnl < 0``, as in the daybook. Undefined ratios are ``None``
(JSON null), never infinity or NaN.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from brain.ledger import DailyRecord
from brain.models import Fill

DAYS_PER_YEAR = 365  # crypto trades every day
MONEY_DIGITS = 8
RATIO_DIGITS = 6

Metric = float | int | None

# The state's scalar fields, by type, for from_dict.
_COUNTS = ("trades", "wins", "losses", "loss_streak", "max_loss_streak")
_FLOATS = (
    "gross_profit",
    "gross_loss",
    "hold_seconds",
    "fees",
    "last_value",
    "peak_value",
    "max_drawdown",
)
_EXTREMES = ("largest_win", "largest_loss")


class TruthBenchmarks:
    def __init__(self, starting_value: float) -> None:
        _check_finite(starting_value=starting_value)
        self.starting_value = starting_value
        self.trades = 0  # closed round trips
        self.wins = 0
        self.losses = 0
        self.gross_profit = 0.0  # sum of pnl >= 0
        self.gross_loss = 0.0  # sum of pnl < 0 (negative)
        self.largest_win: float | None = None
        self.largest_loss: float | None = None
        self.loss_streak = 0
        self.max_loss_streak = 0
        self.hold_seconds = 0.0
        self.fees = 0.0  # every fill's fee, entries and exits
        self.last_value = starting_value
        self.peak_value = starting_value
        self.max_drawdown = 0.0  # fraction of the peak
        self.daily_returns: list[float] = []  # fractions, one per closed day
        self._daily_cache: dict[str, Metric] | None = None  # derived, not state

    def record_fill(self, fill: Fill) -> None:
        """An entry fill: counts its fee. A closing fill must go through ``record_exit``."""
        if fill.pnl is not None:
            raise ValueError("a closing fill (pnl set) goes through record_exit")
        _check_finite(fee=fill.fee)
        self.fees += fill.fee

    def record_exit(self, fill: Fill, opened_at: datetime) -> None:
        """A fill closing a position opened at ``opened_at``: a round trip, and its fee."""
        pnl = fill.pnl
        if pnl is None:
            raise ValueError("record_exit needs a closing fill (pnl set)")
        hold = (fill.executed_at - opened_at).total_seconds()
        _check_finite(pnl=pnl, fee=fill.fee)
        self.fees += fill.fee
        self.trades += 1
        self.hold_seconds += hold
        if pnl >= 0:
            self.wins += 1
            self.gross_profit += pnl
            self.largest_win = pnl if self.largest_win is None else max(self.largest_win, pnl)
            self.loss_streak = 0
        else:
            self.losses += 1
            self.gross_loss += pnl
            self.largest_loss = pnl if self.largest_loss is None else min(self.largest_loss, pnl)
            self.loss_streak += 1
            self.max_loss_streak = max(self.max_loss_streak, self.loss_streak)

    def record_day(self, daily: DailyRecord) -> None:
        """A closed day: its closing value (drawdown, return) and its return in percent."""
        value, daily_return = daily.portfolio_value, daily.daily_pnl_pct / 100
        _check_finite(portfolio_value=value, daily_pnl_pct=daily_return)
        self.daily_returns.append(daily_return)
        self._daily_cache = None
        self.last_value = value
        self.peak_value = max(self.peak_value, value)
        if self.peak_value > 0:
            drawdown = (self.peak_value - value) / self.peak_value
            self.max_drawdown = max(self.max_drawdown, drawdown)

    def view(self) -> dict[str, Metric]:
        """The 17 metrics, rounded for display; ``None`` where a ratio is undefined."""
        n, start = self.trades, self.starting_value
        return_pct = _ratio((self.last_value - start) * 100, start) if start > 0 else None
        metrics: dict[str, Metric] = {
            "total_trades": n,
            "win_rate": _round(_ratio(self.wins, n)),
            "profit_factor": _round(_ratio(self.gross_profit, -self.gross_loss)),
            "avg_win": _money(_ratio(self.gross_profit, self.wins)),
            "avg_loss": _money(_ratio(self.gross_loss, self.losses)),
            "expectancy": _money(_ratio(self.gross_profit + self.gross_loss, n)),
            "total_pnl": _money(self.gross_profit + self.gross_loss),
            "total_fees": _money(self.fees),
            "return_pct": _round(return_pct),
            "max_drawdown": _round(self.max_drawdown),
            **self._daily_metrics(),
            "largest_win": _money(self.largest_win),
            "largest_loss": _money(self.largest_loss),
            "max_consecutive_losses": self.max_loss_streak,
            "avg_hold_hours": _round(_ratio(self.hold_seconds / 3600, n)),
        }
        return metrics

    def _daily_metrics(self) -> dict[str, Metric]:
        """Sharpe, Sortino and Calmar: one pass over the daily returns, once per new day (a
        refresh after a trade reuses it)."""
        if self._daily_cache is None:
            self._daily_cache = self._compute_daily_metrics()
        return self._daily_cache

    def _compute_daily_metrics(self) -> dict[str, Metric]:
        returns, days = self.daily_returns, len(self.daily_returns)
        sharpe = sortino = calmar = None
        if days >= 2:
            mean = statistics.fmean(returns)
            sharpe = _ratio(mean * math.sqrt(DAYS_PER_YEAR), statistics.stdev(returns))
            downside = math.sqrt(statistics.fmean(min(r, 0.0) * min(r, 0.0) for r in returns))
            sortino = _ratio(mean * math.sqrt(DAYS_PER_YEAR), downside)
        growth = self.last_value / self.starting_value if self.starting_value > 0 else -1.0
        if days >= 1 and growth >= 0:
            try:
                annualised = growth ** (DAYS_PER_YEAR / days) - 1
            except OverflowError:
                annualised = math.inf  # _ratio turns it into None
            calmar = _ratio(annualised, self.max_drawdown)
        return {
            "sharpe_ratio": _round(sharpe),
            "sortino_ratio": _round(sortino),
            "calmar_ratio": _round(calmar),
        }

    def to_dict(self) -> dict[str, Any]:
        """The exact state, JSON-safe (every float is finite)."""
        return {
            "starting_value": self.starting_value,
            "trades": self.trades,
            "wins": self.wins,
            "losses": self.losses,
            "gross_profit": self.gross_profit,
            "gross_loss": self.gross_loss,
            "largest_win": self.largest_win,
            "largest_loss": self.largest_loss,
            "loss_streak": self.loss_streak,
            "max_loss_streak": self.max_loss_streak,
            "hold_seconds": self.hold_seconds,
            "fees": self.fees,
            "last_value": self.last_value,
            "peak_value": self.peak_value,
            "max_drawdown": self.max_drawdown,
            "daily_returns": list(self.daily_returns),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TruthBenchmarks:
        truth = cls(float(data["starting_value"]))
        for name in _COUNTS:
            setattr(truth, name, int(data[name]))
        for name in _FLOATS:
            setattr(truth, name, float(data[name]))
        for name in _EXTREMES:
            setattr(truth, name, None if data[name] is None else float(data[name]))
        truth.daily_returns = [float(r) for r in data["daily_returns"]]
        return truth


def _check_finite(**values: float) -> None:
    """Reject NaN/infinite inputs: once in the sums they would poison every later view."""
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")


def _ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None where that is undefined or not finite."""
    if denominator == 0:
        return None
    result = numerator / denominator
    return result if math.isfinite(result) else None


def _round(value: float | None, digits: int = RATIO_DIGITS) -> float | None:
    """Display precision: 6 decimals for ratios, percents and hours, 8 for money."""
    return None if value is None else round(value, digits)


def _money(value: float | None) -> float | None:
    return _round(value, MONEY_DIGITS)

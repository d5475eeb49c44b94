"""Risk limits: sizing and gating every entry, halting new entries when losses pile up.

The manager only ever blocks or shrinks entries; exits (signals, stops) are never refused.
It knows nothing of events or Telegram: the process passes ``on_halt``/``on_resume`` callbacks
(plan 1.3, option B). Times are the market clock, UTC; days are UTC days.

Halts, each announced once through ``on_halt(reason)``:

* ``daily``: the value fell ``max_daily_loss_pct`` below the day's starting value (the value
  passed with the day's first call, else the last one marked). Cleared by the next UTC day,
  which calls ``on_resume``.
* ``drawdown``: the value fell ``max_drawdown_pct`` below its peak. Needs ``resume()``.
* ``consecutive_losses``: ``max_consecutive_losses`` losing exits in a row: a cooling-off for
  the rest of the day. Cleared by the next UTC day (which also starts the count afresh).

Only the drawdown halt needs an operator. A graver halt replaces a lighter one (drawdown over
consecutive losses over daily loss), so the next day cannot clear a drawdown; a halt while one
as grave or graver holds is not announced again. Daily trades
count every fill, entries and exits alike (each is one ``trade_executed``), though only entries
are refused once the day's limit is reached. Percent-named values here are fractions (0.06).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Literal, get_args

from brain.models import Fill
from shared.settings import RiskSettings
from shared.timeutil import to_utc

HaltKind = Literal["daily", "drawdown", "consecutive_losses"]
# How grave each halt is; the day-scoped ones end with the UTC day.
_GRAVITY: dict[HaltKind, int] = {"daily": 0, "consecutive_losses": 1, "drawdown": 2}
_DAY_SCOPED: tuple[HaltKind, ...] = ("daily", "consecutive_losses")
_EPS = 1e-12  # a loss of exactly the limit (6 of 100 at 6 %) halts despite float rounding
_DECIMALS = 8


class RiskManager:
    def __init__(
        self,
        limits: RiskSettings,
        starting_value: float,
        *,
        on_halt: Callable[[str], None] | None = None,
        on_resume: Callable[[], None] | None = None,
        min_notional: float = 1.0,  # USDT: smaller orders are dust, not worth a fee
    ) -> None:
        self.limits = limits
        self.min_notional = min_notional
        self._on_halt = on_halt
        self._on_resume = on_resume
        self._day: date | None = None
        self._day_start = starting_value
        self._loss_ref = starting_value  # the daily limit's base: day start, or a resume's value
        self._value = starting_value
        self._peak = starting_value
        self._daily_trades = 0
        self._consecutive_losses = 0
        self._halt_kind: HaltKind | None = None
        self._halt_reason: str | None = None

    @property
    def halted(self) -> bool:
        return self._halt_kind is not None

    @property
    def halt_kind(self) -> HaltKind | None:
        return self._halt_kind

    @property
    def halt_reason(self) -> str | None:
        return self._halt_reason

    @property
    def daily_trades(self) -> int:
        return self._daily_trades

    @property
    def consecutive_losses(self) -> int:
        return self._consecutive_losses

    @property
    def drawdown_pct(self) -> float:
        return (self._peak - self._value) / self._peak if self._peak > 0 else 0.0

    def check_entry(
        self,
        symbol: str,
        notional: float,
        portfolio_value: float,
        *,
        open_positions: int,
        holding: bool,
        now: datetime,
        exposure: float = 0.0,
    ) -> tuple[float, str | None]:
        """The notional an entry in ``symbol`` may use, or 0 and why it may not.

        ``exposure`` is what is already held in ``symbol`` at market: an add fills the cap of
        ``max_position_pct * portfolio_value`` only up to the rest, and takes no new slot.
        """
        self._roll(now, portfolio_value)
        if self._halt_reason is not None:
            return 0.0, f"halted: {self._halt_reason}"
        if not holding and open_positions >= self.limits.max_positions:
            return 0.0, "max positions reached"
        if self._daily_trades >= self.limits.max_daily_trades:
            return 0.0, "daily trade limit reached"
        allowed = min(notional, self.limits.max_position_pct * portfolio_value - exposure)
        if allowed < self.min_notional:
            return 0.0, "position too small after clipping"
        return allowed, None

    def record_fill(self, fill: Fill, now: datetime) -> None:
        self._roll(now, self._value)
        self._daily_trades += 1
        if fill.pnl is None:  # an entry: wins and losses are counted on exits
            return
        if fill.pnl >= 0:
            self._consecutive_losses = 0
            return
        self._consecutive_losses += 1
        limit = self.limits.max_consecutive_losses
        if self._consecutive_losses >= limit:
            self._halt(
                "consecutive_losses",
                f"{self._consecutive_losses} consecutive losing trades (limit {limit})",
            )

    def mark(self, portfolio_value: float, now: datetime) -> None:
        """Record the value at market time ``now``; halts when a loss limit is reached."""
        self._roll(now, portfolio_value)
        self._value = portfolio_value
        self._peak = max(self._peak, portfolio_value)
        # Drawdown first: when both trip at once the sticky halt is the one announced.
        if self._drawdown_breached():
            self._halt(
                "drawdown",
                f"drawdown {self.drawdown_pct:.2%} from the peak "
                f"(limit {self.limits.max_drawdown_pct:.2%})",
            )
        if self._daily_loss_breached():
            loss = (self._loss_ref - self._value) / self._loss_ref
            self._halt(
                "daily",
                f"daily loss {loss:.2%} (limit {self.limits.max_daily_loss_pct:.2%})",
            )

    def resume(self) -> bool:
        """Clear the halt (an operator's decision). Every breached limit starts afresh from the
        current value, else the next mark would halt again. False when not halted."""
        kind = self._halt_kind
        if kind is None:
            return False
        if kind == "drawdown" or self._drawdown_breached():
            self._peak = self._value
        if kind == "daily" or self._daily_loss_breached():
            self._loss_ref = self._value
        self._consecutive_losses = 0
        self._clear_halt()
        return True

    def view(self) -> dict[str, Any]:
        """The plan's /v1/risk shape (fractions, not percents)."""
        limits = self.limits
        daily_pnl = self._value - self._day_start
        return {
            "limits": {
                "max_position_pct": limits.max_position_pct,
                "max_positions": limits.max_positions,
                "max_daily_loss_pct": limits.max_daily_loss_pct,
                "max_drawdown_pct": limits.max_drawdown_pct,
                "max_daily_trades": limits.max_daily_trades,
                "max_consecutive_losses": limits.max_consecutive_losses,
            },
            "current": {
                "daily_pnl": _round(daily_pnl),
                "daily_pnl_pct": _round(daily_pnl / self._day_start if self._day_start else 0.0),
                "daily_trades": self._daily_trades,
                "consecutive_losses": self._consecutive_losses,
                "drawdown_pct": _round(self.drawdown_pct),
                "halted": self.halted,
                "halt_reason": self._halt_reason,
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state; limits and callbacks come from the process on restore."""
        return {
            "day": None if self._day is None else self._day.isoformat(),
            "day_start_value": self._day_start,
            "loss_ref_value": self._loss_ref,
            "value": self._value,
            "peak_value": self._peak,
            "daily_trades": self._daily_trades,
            "consecutive_losses": self._consecutive_losses,
            "halt_kind": self._halt_kind,
            "halt_reason": self._halt_reason,
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        limits: RiskSettings,
        *,
        on_halt: Callable[[str], None] | None = None,
        on_resume: Callable[[], None] | None = None,
        min_notional: float = 1.0,
    ) -> RiskManager:
        """Restore without announcing anything: a halt in the state was announced already."""
        manager = cls(
            limits,
            float(data["value"]),
            on_halt=on_halt,
            on_resume=on_resume,
            min_notional=min_notional,
        )
        manager._day = None if data["day"] is None else date.fromisoformat(data["day"])
        manager._day_start = float(data["day_start_value"])
        manager._loss_ref = float(data["loss_ref_value"])
        manager._peak = float(data["peak_value"])
        manager._daily_trades = int(data["daily_trades"])
        manager._consecutive_losses = int(data["consecutive_losses"])
        kind = data["halt_kind"]
        if kind is not None and kind not in get_args(HaltKind):
            raise ValueError(f"unknown halt kind {kind!r}")
        manager._halt_kind = kind
        manager._halt_reason = None if data["halt_reason"] is None else str(data["halt_reason"])
        return manager

    def _roll(self, now: datetime, value: float) -> None:
        """Start a new UTC day: its first value is its base; a daily halt ends with the old day."""
        day = to_utc(now).date()
        if self._day is not None and day <= self._day:
            return
        self._day = day
        self._day_start = self._loss_ref = value
        self._daily_trades = 0
        if self._halt_kind in _DAY_SCOPED:
            if self._halt_kind == "consecutive_losses":
                self._consecutive_losses = 0
            self._clear_halt()

    def _drawdown_breached(self) -> bool:
        drawdown = self.drawdown_pct
        return drawdown > 0 and drawdown >= self.limits.max_drawdown_pct - _EPS

    def _daily_loss_breached(self) -> bool:
        if self._loss_ref <= 0:
            return False
        loss = (self._loss_ref - self._value) / self._loss_ref
        return loss > 0 and loss >= self.limits.max_daily_loss_pct - _EPS

    def _halt(self, kind: HaltKind, reason: str) -> None:
        current = self._halt_kind
        if current is not None and _GRAVITY[current] >= _GRAVITY[kind]:
            return
        self._halt_kind, self._halt_reason = kind, reason
        if self._on_halt is not None:
            self._on_halt(reason)

    def _clear_halt(self) -> None:
        self._halt_kind = self._halt_reason = None
        if self._on_resume is not None:
            self._on_resume()


def _round(number: float) -> float:
    return round(number, _DECIMALS) + 0.0

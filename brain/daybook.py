"""Day and week bookkeeping on the market clock: the daily performance row, ``daily_summary``
at each UTC day close and ``weekly_report`` when a week closes (Monday 00:00 UTC)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from brain.ledger import DailyRecord
from brain.models import Fill


@dataclass(slots=True)
class Tally:
    """Results since ``start`` (a day or a week)."""

    start: date
    start_value: float
    trades: int = 0
    wins: int = 0
    losses: int = 0
    fees: float = 0.0

    def record(self, fill: Fill) -> None:
        self.trades += 1
        self.fees += fill.fee
        if fill.pnl is not None:
            if fill.pnl >= 0:
                self.wins += 1
            else:
                self.losses += 1

    def pnl(self, value: float) -> tuple[float, float]:
        """Profit since the start, absolute and in percent of the start value."""
        pnl = value - self.start_value
        return pnl, (pnl / self.start_value * 100 if self.start_value else 0.0)


@dataclass(frozen=True, slots=True)
class Closing:
    """What closing a day produced: its row, its summary, and a week's report if one closed."""

    daily: DailyRecord
    summary: str
    week_start: date | None
    report: str | None


def market_day(moment: datetime) -> date:
    """The UTC day a candle closing at ``moment`` belongs to (a close at 00:00 ends the day)."""
    return (moment - timedelta(microseconds=1)).date()


class DayBook:
    def __init__(self, day: Tally, week: Tally) -> None:
        self.day = day
        self.week = week

    @classmethod
    def start(cls, moment: datetime, value: float) -> DayBook:
        today = market_day(moment)
        monday = today - timedelta(days=today.weekday())
        return cls(Tally(today, value), Tally(monday, value))

    def record(self, fill: Fill) -> None:
        self.day.record(fill)
        self.week.record(fill)

    def ended_before(self, moment: datetime) -> bool:
        """Whether the book's day ended before the candle closing at ``moment`` (a gap in the
        data skipped its midnight)."""
        return market_day(moment) > self.day.start

    def close(self, moment: datetime, value: float) -> Closing:
        """Close the current day at ``value`` and start the next one (and a new week on Monday)."""
        day = self.day
        pnl, pnl_pct = day.pnl(value)
        daily = DailyRecord(
            day.start, value, pnl, pnl_pct, day.trades, day.wins, day.losses, day.fees
        )
        summary = (
            f"{day.start.isoformat()}: portfolio {value:,.2f} USDT ({pnl:+,.2f}, {pnl_pct:+.2f}%)\n"
            f"{day.trades} trades: {day.wins} won, {day.losses} lost; fees {day.fees:,.2f}"
        )
        next_day = market_day(moment) if not is_midnight(moment) else moment.date()
        self.day = Tally(next_day, value)
        week_start, report = None, None
        if next_day - self.week.start >= timedelta(days=7):
            week = self.week
            week_pnl, week_pct = week.pnl(value)
            week_start = week.start
            report = (
                f"Week of {week.start.isoformat()}: portfolio {value:,.2f} USDT "
                f"({week_pnl:+,.2f}, {week_pct:+.2f}%)\n"
                f"{week.trades} trades: {week.wins} won, {week.losses} lost; "
                f"fees {week.fees:,.2f}"
            )
            self.week = Tally(next_day - timedelta(days=next_day.weekday()), value)
        return Closing(daily, summary, week_start, report)

    def to_dict(self) -> dict[str, Any]:
        return {"day": _tally_dict(self.day), "week": _tally_dict(self.week)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DayBook:
        return cls(_tally(data["day"]), _tally(data["week"]))


def is_midnight(moment: datetime) -> bool:
    """A candle closing at 00:00 UTC closes the day."""
    return (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0)


def _tally_dict(tally: Tally) -> dict[str, Any]:
    return {**asdict(tally), "start": tally.start.isoformat()}


def _tally(data: Mapping[str, Any]) -> Tally:
    return Tally(**{**data, "start": date.fromisoformat(data["start"])})

"""The event catalog: every event the brain publishes, with the fields of its data.

This module is the single source for the brain's Notifier (one method per event), the API's
WebSocket filters and docs, and the Telegram switches. On the wire an event is
``{"id": "<event id>", "event": "<name>", "data": {...}, "timestamp": "<ISO 8601 Z>"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypedDict, get_type_hints

from shared import jsonutil
from shared.timeutil import parse_iso, to_iso, to_utc


class EventName(StrEnum):
    TRADE_EXECUTED = "trade_executed"
    STOP_TRIGGERED = "stop_triggered"
    RISK_HALT = "risk_halt"
    RISK_RESUMED = "risk_resumed"
    SIGNAL_GENERATED = "signal_generated"
    SIGNAL_REJECTED = "signal_rejected"
    SCAN_COMPLETE = "scan_complete"
    STRATEGY_DEPLOYED = "strategy_deployed"
    STRATEGY_ROLLBACK = "strategy_rollback"
    PAPER_TEST_STARTED = "paper_test_started"
    PAPER_TEST_COMPLETED = "paper_test_completed"
    ORCHESTRATOR_CYCLE_STARTED = "orchestrator_cycle_started"
    ORCHESTRATOR_CYCLE_COMPLETED = "orchestrator_cycle_completed"
    SYSTEM_ONLINE = "system_online"
    SYSTEM_SHUTDOWN = "system_shutdown"
    SYSTEM_ERROR = "system_error"
    WEBSOCKET_FEED_LOST = "websocket_feed_lost"
    WEBSOCKET_FEED_RECOVERED = "websocket_feed_recovered"
    TRADING_PAUSED = "trading_paused"
    TRADING_RESUMED = "trading_resumed"
    DAILY_SUMMARY = "daily_summary"
    WEEKLY_REPORT = "weekly_report"


Action = Literal["BUY", "SELL", "CLOSE"]


class TradeExecuted(TypedDict):
    trade_id: int
    symbol: str
    action: Action
    qty: float
    price: float
    fee: float
    pnl: float | None  # set on trades that close a position, null on opening ones
    pnl_pct: float | None  # percent (3.2 means 3.2 %)
    strategy_version: str


class StopTriggered(TypedDict):
    symbol: str
    reason: Literal["stop_loss", "take_profit"]
    price: float


class RiskHalt(TypedDict):
    reason: str


class Empty(TypedDict):
    pass


class SignalGenerated(TypedDict):
    symbol: str
    action: Action
    confidence: float


class SignalRejected(TypedDict):
    symbol: str
    reason: str


class ScanComplete(TypedDict):
    symbol_count: int
    signal_count: int


class StrategyDeployed(TypedDict):
    version: str
    tier: int
    changes: dict[str, Any]


class StrategyRollback(TypedDict):
    reason: str
    version: str  # the version restored


class PaperTestStarted(TypedDict):
    version: str
    days: int


class PaperTestCompleted(TypedDict):
    version: str
    passed: bool
    results: dict[str, Any]


class OrchestratorCycleCompleted(TypedDict):
    decision_type: str  # the most significant of ``decisions``
    decisions: list[str]  # everything the cycle did, in order
    summary: str  # one line a person can read


class SystemOnline(TypedDict):
    portfolio_value: float
    positions: int


class ErrorReport(TypedDict):
    message: str


class DailySummary(TypedDict):
    date: str  # YYYY-MM-DD, the UTC day summarised
    summary: str


class WeeklyReport(TypedDict):
    week_start: str  # YYYY-MM-DD, the Monday the week began
    report: str


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What the catalog knows of one event."""

    name: EventName
    payload: type[Any]  # a TypedDict
    frequency: str
    summary: str
    telegram_switch: str  # its key in [telegram.notifications]

    @property
    def fields(self) -> dict[str, Any]:
        """Field name -> type of the event's data."""
        return get_type_hints(self.payload)

    @property
    def carries_symbol(self) -> bool:
        return "symbol" in self.fields


def _spec(
    name: EventName, payload: type[Any], frequency: str, summary: str, switch: str = ""
) -> tuple[EventName, EventSpec]:
    return name, EventSpec(name, payload, frequency, summary, switch or name.value)


_N = EventName
CATALOG: Mapping[EventName, EventSpec] = dict(
    [
        _spec(_N.TRADE_EXECUTED, TradeExecuted, "per trade", "A paper order was filled."),
        _spec(_N.STOP_TRIGGERED, StopTriggered, "per trigger", "A stop loss or take profit hit."),
        _spec(_N.RISK_HALT, RiskHalt, "rare", "Risk limits halted new entries."),
        _spec(_N.RISK_RESUMED, Empty, "rare", "A risk halt was cleared."),
        _spec(_N.SIGNAL_GENERATED, SignalGenerated, "per scan (0-N)", "The strategy signalled."),
        _spec(_N.SIGNAL_REJECTED, SignalRejected, "per rejection", "A signal was refused."),
        _spec(_N.SCAN_COMPLETE, ScanComplete, "every candle", "A market scan finished."),
        _spec(_N.STRATEGY_DEPLOYED, StrategyDeployed, "rare", "A new strategy version went live."),
        _spec(
            _N.STRATEGY_ROLLBACK, StrategyRollback, "rare", "A version was rolled back.", "rollback"
        ),
        _spec(_N.PAPER_TEST_STARTED, PaperTestStarted, "rare", "A candidate's paper test began."),
        _spec(_N.PAPER_TEST_COMPLETED, PaperTestCompleted, "rare", "A paper test was judged."),
        _spec(_N.ORCHESTRATOR_CYCLE_STARTED, Empty, "nightly", "The nightly cycle began."),
        _spec(
            _N.ORCHESTRATOR_CYCLE_COMPLETED,
            OrchestratorCycleCompleted,
            "nightly",
            "The nightly cycle ended.",
        ),
        _spec(_N.SYSTEM_ONLINE, SystemOnline, "startup", "The brain started."),
        _spec(_N.SYSTEM_SHUTDOWN, Empty, "shutdown", "The brain stopped cleanly."),
        _spec(_N.SYSTEM_ERROR, ErrorReport, "on error", "Something failed; trading went on."),
        _spec(
            _N.WEBSOCKET_FEED_LOST,
            Empty,
            "rare",
            "The market data feed stayed down.",
            "websocket_failed",
        ),
        _spec(_N.WEBSOCKET_FEED_RECOVERED, Empty, "rare", "The market data feed is back."),
        _spec(_N.TRADING_PAUSED, Empty, "rare", "An operator paused new entries."),
        _spec(_N.TRADING_RESUMED, Empty, "rare", "An operator resumed new entries."),
        _spec(_N.DAILY_SUMMARY, DailySummary, "nightly", "The UTC day's results."),
        _spec(_N.WEEKLY_REPORT, WeeklyReport, "weekly", "The week's results (Mondays)."),
    ]
)


class EventDataError(ValueError):
    """An event's data does not match its catalog entry."""


def validate_data(name: EventName, data: Mapping[str, Any]) -> None:
    """Check that data has exactly the catalog's fields for this event."""
    expected = set(CATALOG[name].fields)
    missing, extra = expected - data.keys(), data.keys() - expected
    if missing or extra:
        raise EventDataError(
            f"{name.value}: missing fields {sorted(missing)}, unexpected fields {sorted(extra)}"
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One event of the log. ``id`` is assigned by the brain (its outbox sequence) and increases."""

    id: str
    name: EventName
    data: dict[str, Any]
    timestamp: datetime = field(compare=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp", to_utc(self.timestamp))

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.name.value,
            "data": self.data,
            "timestamp": to_iso(self.timestamp),
        }

    def encode(self) -> bytes:
        return jsonutil.dumps(self.to_wire())

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Event:
        return cls(
            id=str(wire["id"]),
            name=EventName(wire["event"]),
            data=dict(wire["data"]),
            timestamp=parse_iso(wire["timestamp"]),
        )

    @classmethod
    def decode(cls, raw: bytes | str) -> Event:
        return cls.from_wire(jsonutil.loads(raw))

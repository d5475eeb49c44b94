"""The Notifier: one method per catalog event. It only records events into the current unit of
work; the engine commits them to the SQL outbox in the same transaction as the change they
describe, and the relay publishes them. It knows nothing of Telegram or WebSocket clients."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from brain.models import Fill
from shared.events import EventName
from shared.outbox import NewEvent


class Notifier:
    def __init__(self) -> None:
        self._pending: list[NewEvent] = []

    def take(self) -> list[NewEvent]:
        """The events recorded since the last take, in order (for the engine to commit)."""
        pending, self._pending = self._pending, []
        return pending

    def _record(self, name: EventName, data: Mapping[str, Any] | None = None) -> None:
        self._pending.append((name, dict(data or {})))

    def trade_executed(self, trade_id: int, fill: Fill) -> None:
        self._record(EventName.TRADE_EXECUTED, {"trade_id": trade_id, **fill.trade_fields()})

    def stop_triggered(self, symbol: str, reason: str, price: float) -> None:
        self._record(EventName.STOP_TRIGGERED, {"symbol": symbol, "reason": reason, "price": price})

    def risk_halt(self, reason: str) -> None:
        self._record(EventName.RISK_HALT, {"reason": reason})

    def risk_resumed(self) -> None:
        self._record(EventName.RISK_RESUMED)

    def signal_generated(self, symbol: str, action: str, confidence: float) -> None:
        self._record(
            EventName.SIGNAL_GENERATED,
            {"symbol": symbol, "action": action, "confidence": confidence},
        )

    def signal_rejected(self, symbol: str, reason: str) -> None:
        self._record(EventName.SIGNAL_REJECTED, {"symbol": symbol, "reason": reason})

    def scan_complete(self, symbol_count: int, signal_count: int) -> None:
        self._record(
            EventName.SCAN_COMPLETE, {"symbol_count": symbol_count, "signal_count": signal_count}
        )

    def strategy_deployed(self, version: str, tier: int, changes: Mapping[str, Any]) -> None:
        self._record(
            EventName.STRATEGY_DEPLOYED, {"version": version, "tier": tier, "changes": changes}
        )

    def strategy_rollback(self, reason: str, version: str) -> None:
        self._record(EventName.STRATEGY_ROLLBACK, {"reason": reason, "version": version})

    def paper_test_started(self, version: str, days: int) -> None:
        self._record(EventName.PAPER_TEST_STARTED, {"version": version, "days": days})

    def paper_test_completed(self, version: str, passed: bool, results: Mapping[str, Any]) -> None:
        self._record(
            EventName.PAPER_TEST_COMPLETED,
            {"version": version, "passed": passed, "results": dict(results)},
        )

    def orchestrator_cycle_started(self) -> None:
        self._record(EventName.ORCHESTRATOR_CYCLE_STARTED)

    def orchestrator_cycle_completed(
        self, decision_type: str, decisions: list[str], summary: str
    ) -> None:
        self._record(
            EventName.ORCHESTRATOR_CYCLE_COMPLETED,
            {"decision_type": decision_type, "decisions": decisions, "summary": summary},
        )

    def system_online(self, portfolio_value: float, positions: int) -> None:
        self._record(
            EventName.SYSTEM_ONLINE, {"portfolio_value": portfolio_value, "positions": positions}
        )

    def system_shutdown(self) -> None:
        self._record(EventName.SYSTEM_SHUTDOWN)

    def system_error(self, message: str) -> None:
        self._record(EventName.SYSTEM_ERROR, {"message": message})

    def websocket_feed_lost(self) -> None:
        self._record(EventName.WEBSOCKET_FEED_LOST)

    def websocket_feed_recovered(self) -> None:
        self._record(EventName.WEBSOCKET_FEED_RECOVERED)

    def trading_paused(self) -> None:
        self._record(EventName.TRADING_PAUSED)

    def trading_resumed(self) -> None:
        self._record(EventName.TRADING_RESUMED)

    def daily_summary(self, date: str, summary: str) -> None:
        self._record(EventName.DAILY_SUMMARY, {"date": date, "summary": summary})

    def weekly_report(self, week_start: str, report: str) -> None:
        self._record(EventName.WEEKLY_REPORT, {"week_start": week_start, "report": report})

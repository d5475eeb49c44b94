"""The event catalog: the plan's events, their switches, the wire format."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared import jsonutil
from shared.events import CATALOG, Event, EventDataError, EventName, validate_data
from shared.settings import NotificationSettings

PLAN_EVENTS = {
    "trade_executed": {"symbol", "action", "qty", "price", "fee", "pnl"},
    "stop_triggered": {"symbol", "reason", "price"},
    "risk_halt": {"reason"},
    "risk_resumed": set(),
    "signal_generated": {"symbol", "action", "confidence"},
    "signal_rejected": {"symbol", "reason"},
    "scan_complete": {"symbol_count", "signal_count"},
    "strategy_deployed": {"version", "tier", "changes"},
    "strategy_rollback": {"reason", "version"},
    "paper_test_started": {"version", "days"},
    "paper_test_completed": {"version", "passed", "results"},
    "orchestrator_cycle_started": set(),
    "orchestrator_cycle_completed": {"decision_type"},
    "system_online": {"portfolio_value", "positions"},
    "system_shutdown": set(),
    "system_error": {"message"},
    "websocket_feed_lost": set(),
    "daily_summary": {"summary"},
    "weekly_report": {"report"},
}


def test_the_catalog_holds_every_plan_event_with_at_least_the_plans_fields() -> None:
    assert {name.value for name in CATALOG} >= set(PLAN_EVENTS)
    for name, fields in PLAN_EVENTS.items():
        assert fields <= set(CATALOG[EventName(name)].fields), name


def test_every_event_has_exactly_one_telegram_switch_and_every_switch_an_event() -> None:
    switches = {spec.telegram_switch for spec in CATALOG.values()}
    assert len(switches) == len(CATALOG)
    assert switches == {field.name for field in dataclasses.fields(NotificationSettings)}
    assert CATALOG[EventName.STRATEGY_ROLLBACK].telegram_switch == "rollback"
    assert CATALOG[EventName.WEBSOCKET_FEED_LOST].telegram_switch == "websocket_failed"


def test_symbol_carrying_events_are_known_for_filters() -> None:
    carriers = {spec.name.value for spec in CATALOG.values() if spec.carries_symbol}
    assert carriers == {"trade_executed", "stop_triggered", "signal_generated", "signal_rejected"}


def test_wire_format_is_the_plans_with_an_id_and_a_z_timestamp() -> None:
    moment = datetime(2026, 2, 9, 5, 10, tzinfo=timezone(timedelta(hours=2)))
    event = Event("17", EventName.RISK_HALT, {"reason": "max drawdown"}, moment)
    assert jsonutil.loads(event.encode()) == {
        "id": "17",
        "event": "risk_halt",
        "data": {"reason": "max drawdown"},
        "timestamp": "2026-02-09T03:10:00Z",
    }
    assert Event.decode(event.encode()) == event
    assert Event.decode(event.encode()).timestamp.tzinfo is UTC


def test_event_data_is_checked_against_the_catalog() -> None:
    validate_data(EventName.SCAN_COMPLETE, {"symbol_count": 6, "signal_count": 0})
    with pytest.raises(EventDataError, match=r"missing fields \['signal_count'\]"):
        validate_data(EventName.SCAN_COMPLETE, {"symbol_count": 6})
    with pytest.raises(EventDataError, match=r"unexpected fields \['extra'\]"):
        validate_data(EventName.RISK_RESUMED, {"extra": 1})


def test_json_never_writes_nan_or_infinity() -> None:
    assert jsonutil.loads(jsonutil.dumps({"a": float("nan"), "b": float("inf")})) == {
        "a": None,
        "b": None,
    }

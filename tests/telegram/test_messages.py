"""Messages: one per event kind, valid Telegram HTML whatever the data holds, split under the
limit; and which switch is which event."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from brain.telegram import messages
from brain.telegram.messages import MAX_MESSAGE, render, split_message
from brain.telegram.relay import switched_on
from shared.config import load_settings
from shared.events import CATALOG, Event, EventName
from tests.support.bot_api_server import telegram_plain_text, utf16_length

NASTY = "<b>&amp; \"x\" 'y' </i>"
AT = datetime(2024, 8, 5, 15, 30, tzinfo=UTC)

SAMPLES: dict[EventName, dict[str, Any]] = {
    EventName.TRADE_EXECUTED: {
        "trade_id": 3,
        "symbol": NASTY,
        "action": "SELL",
        "qty": 12.5,
        "price": 0.12345678,
        "fee": 0.0015,
        "pnl": -0.42,
        "pnl_pct": -2.1,
        "strategy_version": NASTY,
    },
    EventName.STOP_TRIGGERED: {"symbol": NASTY, "reason": "take_profit", "price": 3456.78},
    EventName.RISK_HALT: {"reason": NASTY},
    EventName.RISK_RESUMED: {},
    EventName.SIGNAL_GENERATED: {"symbol": NASTY, "action": "BUY", "confidence": 0.731},
    EventName.SIGNAL_REJECTED: {"symbol": NASTY, "reason": NASTY},
    EventName.SCAN_COMPLETE: {"symbol_count": 6, "signal_count": 0},
    EventName.STRATEGY_DEPLOYED: {"version": NASTY, "tier": 2, "changes": {NASTY: NASTY}},
    EventName.STRATEGY_ROLLBACK: {"reason": NASTY, "version": NASTY},
    EventName.PAPER_TEST_STARTED: {"version": NASTY, "days": 7},
    EventName.PAPER_TEST_COMPLETED: {"version": NASTY, "passed": False, "results": {"pnl": 1}},
    EventName.ORCHESTRATOR_CYCLE_STARTED: {},
    EventName.ORCHESTRATOR_CYCLE_COMPLETED: {"decision_type": NASTY},
    EventName.SYSTEM_ONLINE: {"portfolio_value": 1234.5, "positions": 2},
    EventName.SYSTEM_SHUTDOWN: {},
    EventName.SYSTEM_ERROR: {"message": NASTY},
    EventName.WEBSOCKET_FEED_LOST: {},
    EventName.WEBSOCKET_FEED_RECOVERED: {},
    EventName.TRADING_PAUSED: {},
    EventName.TRADING_RESUMED: {},
    EventName.DAILY_SUMMARY: {
        "date": "2024-08-04",
        "summary": "2024-08-04: portfolio 201.23 USDT (+1.23, +0.62%)\n"
        "3 trades: 2 won, 1 lost; fees 0.42",
    },
    EventName.WEEKLY_REPORT: {"week_start": "2024-07-29", "report": NASTY + "\nline two"},
}


def test_every_event_kind_has_its_own_message() -> None:
    assert set(SAMPLES) == set(EventName)
    assert set(messages._FORMATTERS) == set(EventName)


@pytest.mark.parametrize("name", list(EventName))
def test_each_message_is_valid_html_and_shows_values_as_written(name: EventName) -> None:
    (text,) = render(Event("1", name, SAMPLES[name], AT))
    plain = telegram_plain_text(text)  # raises where Telegram would answer 400
    assert plain.endswith("2024-08-05 15:30 UTC")
    for value in SAMPLES[name].values():
        if value == NASTY:
            assert NASTY in plain


def test_daily_summary_reads_well_on_a_phone() -> None:
    (text,) = render(Event("1", EventName.DAILY_SUMMARY, SAMPLES[EventName.DAILY_SUMMARY], AT))
    assert telegram_plain_text(text).splitlines() == [
        "📅 Daily summary · 2024-08-04",
        "",
        "2024-08-04: portfolio 201.23 USDT (+1.23, +0.62%)",
        "3 trades: 2 won, 1 lost; fees 0.42",
        "2024-08-05 15:30 UTC",
    ]


def test_a_deploy_lists_each_parameter_change() -> None:
    data = {"version": "v2", "tier": 1, "changes": {"rsi_exit": {"from": 78.0, "to": 80.0}}}
    (text,) = render(Event("1", EventName.STRATEGY_DEPLOYED, data, AT))
    lines = telegram_plain_text(text).splitlines()
    assert lines[:4] == [
        "🚀 Strategy deployed v2",
        "Risk tier 1",
        "Changes:",
        "• rsi_exit: 78.0 → 80.0",
    ]


def test_an_event_with_unexpected_data_still_gets_a_message() -> None:
    (text,) = render(Event("1", EventName.TRADE_EXECUTED, {"symbol": "<X>"}, AT))
    assert "symbol: <X>" in telegram_plain_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "<b>title</b>\n" + "\n".join(f"line {i} &amp; more" for i in range(900)),
        "<b>t</b>\n" + "&lt;&amp;" * 3000,  # one long line of entities
        "<b>t</b>\n" + "😀" * 5000,  # two UTF-16 units each
        "<b>t</b>\n" + "word " * 2000,
    ],
)
def test_long_texts_split_into_valid_parts_under_the_limit(text: str) -> None:
    parts = split_message(text)
    assert len(parts) > 1
    for part in parts:
        assert utf16_length(telegram_plain_text(part)) <= MAX_MESSAGE
        assert utf16_length(part) <= MAX_MESSAGE
    assert "".join(p.replace("\n", "") for p in parts) == text.replace("\n", "")


def test_the_plans_switch_names_map_to_their_events() -> None:
    switches = load_settings(env={}, dotenv_path=None).telegram.notifications
    assert CATALOG[EventName.STRATEGY_ROLLBACK].telegram_switch == "rollback"
    assert CATALOG[EventName.WEBSOCKET_FEED_LOST].telegram_switch == "websocket_failed"
    off = dataclasses.replace(switches, rollback=False, websocket_failed=False)

    def wanted(notifications: Any, name: EventName) -> bool:
        return switched_on(notifications, Event("1", name, {}, AT))

    assert wanted(switches, EventName.STRATEGY_ROLLBACK)
    assert wanted(switches, EventName.WEBSOCKET_FEED_LOST)
    assert not wanted(off, EventName.STRATEGY_ROLLBACK)
    assert not wanted(off, EventName.WEBSOCKET_FEED_LOST)
    assert not wanted(switches, EventName.SIGNAL_GENERATED)  # high frequency: off by default
    for name in EventName:  # every event has a switch
        assert hasattr(switches, CATALOG[name].telegram_switch)

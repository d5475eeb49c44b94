"""One readable Telegram message per event kind, in Telegram's HTML parse mode.

Every dynamic value goes through ``esc`` (``html.escape``), so a symbol or a reason holding
``<`` or ``&`` is shown as written instead of breaking the message. Tags open and close on the
line they start on: ``split_message`` cuts long texts between lines (or, for one overlong line,
between characters outside any tag or entity), so every part is valid HTML on its own.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.events import CATALOG, Event, EventName

MAX_MESSAGE = 4096  # Telegram's limit, in UTF-16 code units of the text

Lines = list[str]
Formatter = Callable[[Mapping[str, Any]], Lines]


def esc(value: object) -> str:
    return html.escape(str(value))


def price(value: object) -> str:
    """A price or quantity with up to 8 significant digits: 64,123.5 or 0.00012345."""
    return f"{value:,.8g}" if isinstance(value, int | float) else esc(value)


def money(value: object, *, signed: bool = False) -> str:
    if not isinstance(value, int | float):
        return esc(value)
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def percent(value: object) -> str:
    return f"{value:+.2f} %" if isinstance(value, int | float) else esc(value)


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def render(event: Event) -> list[str]:
    """The message(s) for ``event``: one, or several when it exceeds Telegram's limit."""
    formatter = _FORMATTERS.get(event.name, _generic(event.name))
    try:
        lines = formatter(event.data)
    except Exception:  # data older or newer than this code: a plain message, never a stuck queue
        lines = _generic(event.name)(event.data)
    lines.append(f"<i>{when(event.timestamp)}</i>")
    return split_message("\n".join(lines))


# --- per event -------------------------------------------------------------------------------


def _trade_executed(data: Mapping[str, Any]) -> Lines:
    action = str(data["action"])
    icon = "🟢" if action == "BUY" else "🔴"
    lines = [
        f"{icon} <b>{esc(action)} {esc(data['symbol'])}</b>",
        f"{price(data['qty'])} @ {price(data['price'])}",
        f"Fee {money(data['fee'])}",
    ]
    if data.get("pnl") is not None:
        outcome = "✅" if data["pnl"] >= 0 else "❌"
        lines.append(f"{outcome} P&amp;L {money(data['pnl'], signed=True)} USDT")
        if data.get("pnl_pct") is not None:
            lines[-1] += f" ({percent(data['pnl_pct'])})"
    lines.append(f"Trade #{esc(data['trade_id'])} · strategy {esc(data['strategy_version'])}")
    return lines


def _stop_triggered(data: Mapping[str, Any]) -> Lines:
    take_profit = data["reason"] == "take_profit"
    title = "🎯 <b>Take profit hit</b>" if take_profit else "🛑 <b>Stop loss hit</b>"
    return [f"{title} {esc(data['symbol'])}", f"Price {price(data['price'])}"]


def _risk_halt(data: Mapping[str, Any]) -> Lines:
    return [
        "⛔ <b>Trading halted by risk limits</b>",
        f"Reason: {esc(data['reason'])}",
        "No new positions until it clears: daily limits at the next UTC day, others with"
        " /resume_trading.",
    ]


def _signal_generated(data: Mapping[str, Any]) -> Lines:
    return [
        f"📶 <b>Signal {esc(data['action'])} {esc(data['symbol'])}</b>",
        f"Confidence {data['confidence']:.2f}",
    ]


def _signal_rejected(data: Mapping[str, Any]) -> Lines:
    return [f"🚫 <b>Signal refused</b> {esc(data['symbol'])}", f"Reason: {esc(data['reason'])}"]


def _scan_complete(data: Mapping[str, Any]) -> Lines:
    symbols, signals = data["symbol_count"], data["signal_count"]
    return [f"🔎 <b>Scan complete</b>: {esc(symbols)} symbols, {esc(signals)} signals"]


def _mapping_lines(values: Mapping[str, Any]) -> Lines:
    return [f"• {esc(key)}: {esc(value)}" for key, value in values.items()]


def _strategy_deployed(data: Mapping[str, Any]) -> Lines:
    lines = [
        f"🚀 <b>Strategy deployed</b> {esc(data['version'])}",
        f"Risk tier {esc(data['tier'])}",
    ]
    changes = data.get("changes") or {}
    return [*lines, "Changes:", *_change_lines(changes)] if changes else lines


def _change_lines(changes: Mapping[str, Any]) -> Lines:
    """``rsi_exit: 78.0 → 80.0`` for the orchestrator's ``{"from", "to"}`` diffs."""
    lines = []
    for name, change in changes.items():
        if isinstance(change, Mapping) and {"from", "to"} <= change.keys():
            lines.append(f"• {esc(name)}: {esc(change['from'])} → {esc(change['to'])}")
        else:
            lines.append(f"• {esc(name)}: {esc(change)}")
    return lines


def _strategy_rollback(data: Mapping[str, Any]) -> Lines:
    return [
        f"↩️ <b>Strategy rolled back</b> to {esc(data['version'])}",
        f"Reason: {esc(data['reason'])}",
    ]


def _paper_test_started(data: Mapping[str, Any]) -> Lines:
    return [f"🧪 <b>Paper test started</b> {esc(data['version'])}", f"{esc(data['days'])} days"]


def _paper_test_completed(data: Mapping[str, Any]) -> Lines:
    verdict = "passed ✅" if data["passed"] else "failed ❌"
    lines = [f"🧪 <b>Paper test {verdict}</b> {esc(data['version'])}"]
    return lines + _mapping_lines(data.get("results") or {})


def _cycle_completed(data: Mapping[str, Any]) -> Lines:
    return ["🌙 <b>Nightly cycle finished</b>", f"Decision: {esc(data['decision_type'])}"]


def _system_online(data: Mapping[str, Any]) -> Lines:
    return [
        "🟢 <b>TradingBrain online</b>",
        f"Portfolio {money(data['portfolio_value'])} USDT · {esc(data['positions'])} positions",
    ]


def _system_error(data: Mapping[str, Any]) -> Lines:
    return ["⚠️ <b>Error</b> (trading goes on)", esc(data["message"])]


def _daily_summary(data: Mapping[str, Any]) -> Lines:
    return [f"📅 <b>Daily summary</b> · {esc(data['date'])}", "", *_text(data["summary"])]


def _weekly_report(data: Mapping[str, Any]) -> Lines:
    return [
        f"📊 <b>Weekly report</b> · week of {esc(data['week_start'])}",
        "",
        *_text(data["report"]),
    ]


def _text(text: object) -> Lines:
    """Free text (a summary, a report), escaped line by line."""
    return [esc(line) for line in str(text).splitlines()]


def _fixed(*lines: str) -> Formatter:
    return lambda _data: list(lines)


def _generic(name: EventName) -> Formatter:
    """For an event without a formatter of its own: its summary and fields."""

    def format_(data: Mapping[str, Any]) -> Lines:
        return [f"ℹ️ <b>{esc(CATALOG[name].summary)}</b>", *_mapping_lines(data)]

    return format_


_N = EventName
_FORMATTERS: Mapping[EventName, Formatter] = {
    _N.TRADE_EXECUTED: _trade_executed,
    _N.STOP_TRIGGERED: _stop_triggered,
    _N.RISK_HALT: _risk_halt,
    _N.RISK_RESUMED: _fixed("✅ <b>Risk halt cleared</b>", "New positions may open again."),
    _N.SIGNAL_GENERATED: _signal_generated,
    _N.SIGNAL_REJECTED: _signal_rejected,
    _N.SCAN_COMPLETE: _scan_complete,
    _N.STRATEGY_DEPLOYED: _strategy_deployed,
    _N.STRATEGY_ROLLBACK: _strategy_rollback,
    _N.PAPER_TEST_STARTED: _paper_test_started,
    _N.PAPER_TEST_COMPLETED: _paper_test_completed,
    _N.ORCHESTRATOR_CYCLE_STARTED: _fixed("🌙 <b>Nightly cycle started</b>"),
    _N.ORCHESTRATOR_CYCLE_COMPLETED: _cycle_completed,
    _N.SYSTEM_ONLINE: _system_online,
    _N.SYSTEM_SHUTDOWN: _fixed("⚪ <b>TradingBrain stopped</b>"),
    _N.SYSTEM_ERROR: _system_error,
    _N.WEBSOCKET_FEED_LOST: _fixed(
        "📡 <b>Market data feed lost</b>", "No new candles: trading waits until it is back."
    ),
    _N.WEBSOCKET_FEED_RECOVERED: _fixed("📡 <b>Market data feed is back</b>"),
    _N.TRADING_PAUSED: _fixed(
        "⏸ <b>Trading paused</b>", "No new positions; exits and stops go on. /resume to restart."
    ),
    _N.TRADING_RESUMED: _fixed("▶️ <b>Trading resumed</b>"),
    _N.DAILY_SUMMARY: _daily_summary,
    _N.WEEKLY_REPORT: _weekly_report,
}


# --- Telegram's length limit -----------------------------------------------------------------


def _units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji may count two)."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """``text`` in parts of at most ``limit``, cut between lines where possible."""
    if _units(text) <= limit:
        return [text]
    parts: list[str] = []
    current: str | None = None
    for line in text.split("\n"):
        for piece in _cut(line, limit):
            candidate = piece if current is None else f"{current}\n{piece}"
            if _units(candidate) <= limit:
                current = candidate
            else:
                if current is not None and current.strip():
                    parts.append(current)
                current = piece
    if current is not None and current.strip():
        parts.append(current)
    return parts


def _cut(line: str, limit: int) -> list[str]:
    """One line in pieces of at most ``limit``, never inside a tag or an entity, preferring
    a space near the end of each piece."""
    pieces = []
    while _units(line) > limit:
        end, used = 0, 0
        while end < len(line) and used + _units(line[end]) <= limit:
            used += _units(line[end])
            end += 1
        head = line[:end]
        for opener, closer in (("&", ";"), ("<", ">")):
            if head.rfind(opener) > head.rfind(closer):  # it would cut a tag or entity open
                end = head.rfind(opener)
                head = line[:end]
        space = head.rfind(" ")
        if space > end * 4 // 5:
            end = space + 1
        end = max(end, 1)  # always progress, even on a pathological line
        pieces.append(line[:end])
        line = line[end:]
    pieces.append(line)
    return pieces

"""The alert relay against a local Bot API server, with the real python-telegram-bot: switches,
where a new relay starts, Telegram's failures (429, 400, 500) and escaping."""

from __future__ import annotations

import logging
from itertools import pairwise

import pytest

from shared.events import EventName
from shared.store.base import Store
from tests.support.bot_api_server import BotApiServer, Failure
from tests.support.services import async_wait_until
from tests.telegram.conftest import (
    CHAT_ID,
    TOKEN,
    EventMaker,
    running_relay,
    settings_of,
    trade,
)

DEADLINE = 10.0


async def delivered(server: BotApiServer, count: int) -> None:
    await async_wait_until(lambda: len(server.delivered) >= count, DEADLINE, f"{count} alerts")


async def test_enabled_events_are_sent_and_disabled_ones_are_not(
    env: dict[str, str], store: Store, bot_api: BotApiServer, make_event: EventMaker
) -> None:
    settings = settings_of(env)
    assert settings.telegram.notifications.trade_executed
    assert not settings.telegram.notifications.scan_complete
    async with running_relay(settings, store):
        await store.events.append(
            [
                trade(make_event),
                make_event(EventName.SCAN_COMPLETE, symbol_count=6, signal_count=1),
                make_event(
                    EventName.SIGNAL_GENERATED, symbol="BTC/USDT", action="BUY", confidence=0.8
                ),
                make_event(EventName.STRATEGY_ROLLBACK, reason="drawdown", version="v1"),
                make_event(EventName.SYSTEM_ERROR, message="scan of FOO/USDT failed"),
            ]
        )
        await delivered(bot_api, 3)
    texts = bot_api.texts()
    assert len(texts) == 3
    assert texts[0].startswith("🟢 BUY BTC/USDT")
    assert "Strategy rolled back to v1" in texts[1]  # the plan's "rollback" switch
    assert "scan of FOO/USDT failed" in texts[2]
    assert {a.chat_id for a in bot_api.attempts} == {str(CHAT_ID)}
    assert {a.parse_mode for a in bot_api.attempts} == {"HTML"}
    # Skipped events were acknowledged too: a restarted relay does not see them again.
    async with running_relay(settings, store):
        await store.events.append([make_event(EventName.SYSTEM_SHUTDOWN)])
        await delivered(bot_api, 4)
    assert len(bot_api.attempts) == 4
    assert bot_api.texts()[3].startswith("⚪ TradingBrain stopped")


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_setting_turns_a_switch_on(
    env: dict[str, str], store: Store, bot_api: BotApiServer, make_event: EventMaker
) -> None:
    settings = settings_of(env, TB_TELEGRAM__NOTIFICATIONS__SCAN_COMPLETE="true")
    async with running_relay(settings, store):
        await store.events.append(
            [make_event(EventName.SCAN_COMPLETE, symbol_count=6, signal_count=2)]
        )
        await delivered(bot_api, 1)
    assert bot_api.texts()[0].startswith("🔎 Scan complete: 6 symbols, 2 signals")


async def test_a_new_relay_starts_at_the_newest_event(
    env: dict[str, str], store: Store, bot_api: BotApiServer, make_event: EventMaker
) -> None:
    history = [trade(make_event, symbol=f"OLD{i}/USDT") for i in range(3)]
    await store.events.append(history)
    async with running_relay(settings_of(env), store):
        await store.events.append([trade(make_event, symbol="NEW/USDT")])
        await delivered(bot_api, 1)
    assert [text.splitlines()[0] for text in bot_api.texts()] == ["🟢 BUY NEW/USDT"]
    assert len(bot_api.attempts) == 1


async def test_flood_control_is_honoured_then_the_alert_goes_out_once(
    env: dict[str, str], store: Store, bot_api: BotApiServer, make_event: EventMaker
) -> None:
    bot_api.fail_next(Failure(429, retry_after=1))
    async with running_relay(settings_of(env), store):
        await store.events.append([trade(make_event), make_event(EventName.SYSTEM_SHUTDOWN)])
        await delivered(bot_api, 2)
    refused, accepted, following = bot_api.attempts
    assert (refused.status, accepted.status, following.status) == (429, 200, 200)
    assert refused.text == accepted.text
    waited = accepted.at - refused.at
    assert 1.0 <= waited < 4.0, waited  # retry_after=1, with room for a loaded machine
    assert bot_api.texts()[0].startswith("🟢 BUY BTC/USDT")
    assert len(bot_api.texts()) == 2


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_network_errors_are_retried_with_backoff(
    env: dict[str, str], store: Store, bot_api: BotApiServer, make_event: EventMaker
) -> None:
    bot_api.fail_next(Failure(500), Failure(500), Failure(500))
    async with running_relay(settings_of(env), store):
        await store.events.append([trade(make_event)])
        await delivered(bot_api, 1)
    assert [a.status for a in bot_api.attempts] == [500, 500, 500, 200]
    gaps = [later.at - earlier.at for earlier, later in pairwise(bot_api.attempts)]
    assert gaps[0] >= 0.05  # retry_initial, then doubling
    assert gaps[1] >= 0.1
    assert gaps[2] >= 0.2


async def test_a_bad_request_is_acknowledged_and_not_retried(
    env: dict[str, str],
    store: Store,
    bot_api: BotApiServer,
    make_event: EventMaker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot_api.fail_next(Failure(400, description="Bad Request: chat not found"))
    settings = settings_of(env)
    async with running_relay(settings, store):
        await store.events.append([trade(make_event), make_event(EventName.SYSTEM_SHUTDOWN)])
        await delivered(bot_api, 1)
    assert [a.status for a in bot_api.attempts] == [400, 200]
    assert "refused the trade_executed alert of event 1 for good" in caplog.text
    async with running_relay(settings, store):  # acknowledged: a restart does not resend it
        await store.events.append([make_event(EventName.TRADING_PAUSED)])
        await delivered(bot_api, 2)
    assert [a.status for a in bot_api.attempts] == [400, 200, 200]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_dynamic_values_are_escaped(
    env: dict[str, str], store: Store, bot_api: BotApiServer, make_event: EventMaker
) -> None:
    symbol, reason = "<BTC&Co>/USDT", "loss < -6 % & <b>falling</b>"
    async with running_relay(settings_of(env), store):
        await store.events.append(
            [
                trade(make_event, symbol=symbol, action="CLOSE"),
                make_event(EventName.STOP_TRIGGERED, symbol=symbol, reason="stop_loss", price=1.5),
                make_event(EventName.RISK_HALT, reason=reason),
                make_event(EventName.SYSTEM_ERROR, message=f"scan of {symbol} failed: {reason}"),
            ]
        )
        await delivered(bot_api, 4)
    # The server parses HTML as Telegram does: a stray "<" or "&" would have been a 400.
    assert [a.status for a in bot_api.attempts] == [200] * 4
    closed, stopped, halted, error = bot_api.texts()
    assert closed.startswith(f"🔴 CLOSE {symbol}\n")
    assert "P&L +1.25 USDT (+1.30 %)" in closed
    assert stopped.startswith(f"🛑 Stop loss hit {symbol}")
    assert f"Reason: {reason}" in halted
    assert f"scan of {symbol} failed: {reason}" in error
    assert "&lt;BTC&amp;Co&gt;/USDT" in bot_api.attempts[0].text


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_long_reports_are_split_within_telegrams_limit(
    env: dict[str, str], store: Store, bot_api: BotApiServer, make_event: EventMaker
) -> None:
    lines = [f"{day}: " + "gained & lost <a bit> " * 60 for day in range(6)]
    report = "\n".join([*lines, "x" * 5000])
    async with running_relay(settings_of(env), store):
        await store.events.append(
            [make_event(EventName.WEEKLY_REPORT, week_start="2024-07-29", report=report)]
        )
        await async_wait_until(lambda: len(bot_api.delivered) >= 3, DEADLINE, "the parts")
        await store.events.append([make_event(EventName.SYSTEM_SHUTDOWN)])
        await async_wait_until(
            lambda: bot_api.texts()[-1].startswith("⚪"), DEADLINE, "the alert after the parts"
        )
    parts = bot_api.texts()[:-1]
    assert len(parts) >= 3
    assert all(a.status == 200 for a in bot_api.attempts)
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert parts[0].startswith("📊 Weekly report · week of 2024-07-29")
    shown = "".join(part.replace("\n", "") for part in parts)
    for line in lines:
        assert line.strip() in shown
    assert "x" * 5000 in shown


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_token_stays_out_of_the_logs(
    env: dict[str, str],
    store: Store,
    bot_api: BotApiServer,
    make_event: EventMaker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    bot_api.fail_next(Failure(500))
    async with running_relay(settings_of(env), store):
        await store.events.append([trade(make_event)])
        await delivered(bot_api, 1)
    assert "sending the trade_executed alert failed" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text

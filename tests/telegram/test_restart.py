"""At least once across restarts: ``tradingbrain telegram`` SIGKILLed while Telegram holds its
request (sent, not acknowledged) delivers that alert again when it starts anew, and a SIGTERM
stops it cleanly. Its log never shows the bot token, even at DEBUG."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.events import EventName
from shared.store.base import LOG_START, Store
from tests.support.bot_api_server import HANG, BotApiServer
from tests.support.services import async_wait_until
from tests.telegram.conftest import TOKEN, EventMaker, settings_of, trade

DEADLINE = 20.0


def start_relay(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).with_name("tradingbrain")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TB_", "TELEGRAM_"))}
    with log.open("ab") as stderr:  # a file, not a pipe: DEBUG output must never block it
        return subprocess.Popen(
            [str(script), "telegram", "--log-level", "DEBUG"],
            cwd=log.parent,  # no .env of the repository's
            env={**base, **env},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


async def ended(process: subprocess.Popen[bytes]) -> None:
    """Wait (without blocking the loop, which serves the Bot API) for the process to exit."""
    try:
        await async_wait_until(lambda: process.poll() is not None, DEADLINE, "the relay to exit")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_a_relay_killed_before_acknowledging_delivers_again(
    env: dict[str, str],
    store: Store,
    bot_api: BotApiServer,
    make_event: EventMaker,
    tmp_path: Path,
) -> None:
    settings = settings_of(env)
    # The group exists already, as after an earlier run: the relay continues from its position.
    await store.events.group(settings.telegram.consumer_group, "relay").create(LOG_START)
    first, second = trade(make_event), make_event(EventName.SYSTEM_ERROR, message="disk full")
    await store.events.append([first, second])
    bot_api.fail_next(HANG)  # Telegram takes the first alert and never answers

    log = tmp_path / "relay.log"
    relay = start_relay(env, log)
    try:
        await async_wait_until(lambda: len(bot_api.attempts) == 1, DEADLINE, "the first send")
    finally:
        relay.send_signal(signal.SIGKILL)
        await ended(relay)
    assert bot_api.delivered == []

    relay = start_relay(env, log)
    try:
        await async_wait_until(lambda: len(bot_api.delivered) == 2, DEADLINE, "both alerts")
    finally:
        relay.send_signal(signal.SIGTERM)
        await ended(relay)
    errors = log.read_text()
    assert relay.returncode == 0, errors
    hung, *answered = bot_api.attempts
    assert [a.status for a in answered] == [200, 200]
    assert answered[0].text == hung.text  # the unacknowledged alert, again
    assert answered[0].plain.startswith("🟢 BUY BTC/USDT")
    assert "disk full" in answered[1].plain  # and the next one, once
    assert "Telegram relay delivering alerts" in errors
    assert "getUpdates" not in bot_api.calls  # standalone: alerts only, no commands
    assert TOKEN not in errors
    assert TOKEN.split(":")[1] not in errors

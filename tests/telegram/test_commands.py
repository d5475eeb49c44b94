"""Chat commands acting on a running brain (the relay and the command bot inside
``run_brain``), through the real python-telegram-bot polling a local Bot API server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from brain.engine import TradingEngine
from brain.feeds.replay import ReplayFeed
from brain.models import CandleBatch
from brain.process import run_brain
from shared.events import EventName
from shared.store.base import SnapshotName
from tests.brain.test_replay import read_events, read_snapshots
from tests.support.bot_api_server import BotApiServer
from tests.support.replay import REPLAY_DIR, Replay
from tests.support.services import async_wait_until
from tests.telegram.conftest import CHAT_ID, settings_of

DEADLINE = 15.0
STRANGER = 666
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT")


class UntilPositionsFeed:
    """Replay candles until the brain holds positions (after a warm-up), then end: the brain
    stays up serving its final state, with something for /closeall to close."""

    name = "replay"

    def __init__(self, engine: list[TradingEngine]) -> None:
        self._engine = engine  # filled by the on_step observer
        self.done = asyncio.Event()

    async def batches(self, after: datetime | None = None) -> AsyncIterator[CandleBatch]:
        replay = ReplayFeed(REPLAY_DIR, SYMBOLS, "5m")
        count = 0
        async for batch in replay.batches(after):
            yield batch
            count += 1
            if count > 300 and self._engine and len(self._engine[0].portfolio.positions) >= 2:
                break
        self.done.set()

    async def aclose(self) -> None:
        pass


class Chat:
    """The operator's side of the conversation."""

    def __init__(self, server: BotApiServer) -> None:
        self.server = server

    async def send(self, text: str, expect: str) -> str:
        """Send ``text``; the bot's reply: the next message starting with ``expect`` (alerts
        arrive in the same chat meanwhile)."""
        before = len(self.server.texts(str(CHAT_ID)))

        def replies() -> list[str]:
            return [t for t in self.server.texts(str(CHAT_ID))[before:] if t.startswith(expect)]

        self.server.push_command(CHAT_ID, text)
        await async_wait_until(lambda: bool(replies()), DEADLINE, f"the reply to {text}")
        return replies()[0]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_commands_from_the_chat_act_on_the_running_brain(
    env: dict[str, str],
    bot_api: BotApiServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_of(
        env,
        TB_MARKET__REPLAY_DIR=str(REPLAY_DIR),
        TB_MARKET__SYMBOLS=",".join(SYMBOLS),
        TB_BRAIN__SNAPSHOT_INTERVAL="0.05",
    )
    engines: list[TradingEngine] = []
    feed = UntilPositionsFeed(engines)
    stop = asyncio.Event()

    def observe(engine: TradingEngine, _batch: CandleBatch, _elapsed: float) -> None:
        if not engines:
            engines.append(engine)

    brain = asyncio.create_task(
        run_brain(settings, stop, exit_at_end=False, on_step=observe, feed=feed, telegram=True)
    )
    run = Replay(settings.store.backend, settings, tmp_path, result=None)  # type: ignore[arg-type]
    chat = Chat(bot_api)
    try:
        await async_wait_until(feed.done.is_set, 60, "the replay to reach open positions")
        await async_wait_until(lambda: "getUpdates" in bot_api.calls, DEADLINE, "polling")
        engine = engines[0]
        held = sorted(engine.portfolio.positions)

        caplog.set_level(logging.WARNING, logger="brain.telegram.commands")
        bot_api.push_command(STRANGER, "/pause")
        status = await chat.send("/status", "🤖 TradingBrain ·")  # after the stranger's
        assert bot_api.texts(str(STRANGER)) == []
        assert f"ignored an update from chat {STRANGER}" in caplog.text
        assert "State: ▶️ trading" in status
        value = engine.value()
        assert f"Portfolio {value:,.2f} USDT" in status
        assert f"{len(held)} positions" in status

        positions = await chat.send("/positions", "📂")
        assert all(symbol in positions for symbol in held)

        await chat.send("/pause", "⏸ Paused")
        await async_wait_until(
            lambda: "⏸ Trading paused" in "".join(bot_api.texts()), DEADLINE, "the alert"
        )
        await async_wait_until(lambda: _system_paused(run), DEADLINE, "paused in the snapshot")
        await chat.send("/pause", "Trading was already paused.")
        await chat.send("/resume", "▶️ Resumed")
        await chat.send("/resume_trading", "Trading is not halted.")

        ask = await chat.send("/closeall", "⚠️")
        assert f"sells all {len(held)} open positions" in ask
        assert "/closeall confirm" in ask
        assert sorted(engine.portfolio.positions) == held  # nothing happened yet
        closed = await chat.send("/closeall confirm", "🧯")
        assert closed.startswith(f"🧯 Closed {len(held)} positions")
        assert engine.portfolio.positions == {}
        await async_wait_until(
            lambda: _positions_empty(run), DEADLINE, "the positions snapshot to empty"
        )
        assert "/closeall" in await chat.send("/help", "🤖 TradingBrain commands")
    finally:
        stop.set()
        await asyncio.wait_for(brain, 30)

    events = await read_events(run)
    names = [event.name for event in events]
    paused_at = names.index(EventName.TRADING_PAUSED)
    assert names.count(EventName.TRADING_PAUSED) == 1
    assert names.index(EventName.TRADING_RESUMED) > paused_at
    closing = [e for e in events[paused_at:] if e.name is EventName.TRADE_EXECUTED]
    assert sorted(e.data["symbol"] for e in closing) == held
    assert {e.data["action"] for e in closing} == {"CLOSE"}
    # The relay drained the log on the way out: system_shutdown reached the chat last.
    assert bot_api.texts(str(CHAT_ID))[-1].startswith("⚪ TradingBrain stopped")


async def _system_paused(run: Replay) -> bool:
    return bool((await read_snapshots(run))[SnapshotName.SYSTEM]["paused"])


async def _positions_empty(run: Replay) -> bool:
    positions: list[object] = (await read_snapshots(run))[SnapshotName.POSITIONS]
    return positions == []

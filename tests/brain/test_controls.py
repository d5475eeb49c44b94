"""Operator commands on a running brain (what Telegram's /pause, /resume, /resume_trading and
/closeall call): they act between steps, are committed with events, and survive in the state."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from brain.engine import TradingEngine
from brain.feeds.replay import ReplayFeed
from brain.models import CandleBatch
from brain.process import run_brain
from shared.config import load_settings
from shared.db import tables
from shared.events import EventName
from tests.brain.test_lifecycle import BatchesFeed
from tests.brain.test_replay import read_events, sql_rows
from tests.support.replay import REPLAY_DIR, Replay, brain_env


async def test_pause_resume_and_close_all_act_between_steps(tmp_path: Path) -> None:
    env = brain_env(tmp_path, "sqlite", None, f"tbtest:{uuid.uuid4().hex[:8]}")
    settings = load_settings(env=env, dotenv_path=None)
    replay = ReplayFeed(REPLAY_DIR, settings.market.symbols, "5m")
    batches = [batch async for batch in replay.batches()][:1200]
    commands: list[asyncio.Task[object]] = []
    held_at_close_all: list[int] = []

    def operator(engine: TradingEngine, batch: CandleBatch, _elapsed: float) -> None:
        index = batches.index(batch)
        if index == 300:
            commands.append(asyncio.ensure_future(engine.pause()))
        elif index == 500:
            commands.append(asyncio.ensure_future(engine.resume()))
        elif index >= 1000 and engine.portfolio.positions and not held_at_close_all:
            held_at_close_all.append(len(engine.portfolio.positions))
            commands.append(asyncio.ensure_future(engine.close_all()))

    result = await run_brain(
        settings, asyncio.Event(), exit_at_end=True, feed=BatchesFeed(batches), on_step=operator
    )
    assert [task.result() for task in commands[:2]] == [True, True]
    run = Replay("sqlite", settings, tmp_path, result)
    events = await read_events(run)
    names = [event.name for event in events]
    paused_at = names.index(EventName.TRADING_PAUSED)
    resumed_at = names.index(EventName.TRADING_RESUMED)
    assert paused_at < resumed_at
    signals = await sql_rows(run, tables.signals)
    paused_from = batches[300].close_time
    resumed_from = batches[501].close_time
    while_paused = [s for s in signals if paused_from < s.created_at < resumed_from]
    buys = [s for s in while_paused if s.action == "BUY"]
    assert buys, "the strategy wanted to buy while paused"
    confident = [s for s in buys if s.confidence >= settings.strategy.min_confidence]
    assert confident
    assert {(s.executed, s.rejected_reason) for s in confident} == {(False, "trading paused")}
    trades = await sql_rows(run, tables.trades)
    opened_while_paused = [
        t for t in trades if t.action == "BUY" and paused_from < t.executed_at < resumed_from
    ]
    assert len(opened_while_paused) <= 1  # at most an order queued before the pause filled
    assert held_at_close_all, "no position was open to close"
    closed = commands[-1].result()
    assert isinstance(closed, list)
    assert len(closed) == held_at_close_all[0]
    assert {(fill.action, fill.reason) for fill in closed} == {("CLOSE", "manual")}
    closing_trades = {t.id for t in trades if t.action == "CLOSE" and t.pnl is not None}
    trade_events = [e for e in events if e.name is EventName.TRADE_EXECUTED]
    assert closing_trades <= {e.data["trade_id"] for e in trade_events}
    (state,) = await sql_rows(run, tables.brain_state)
    assert state.state["paused"] is False

"""The trading book's restart guarantee after a strategy change: indicators rebuilt from a
window of candles (a deploy, a paper test's start) are rebuilt from exactly that window when a
restart re-reads the feed from its beginning, so the restarted brain goes on bit for bit."""

from __future__ import annotations

import asyncio
import dataclasses

from brain.book import TradingBook
from brain.engine_state import EngineState
from brain.feeds.replay import ReplayFeed
from brain.ledger import Step
from brain.models import CandleBatch
from brain.notifier import Notifier
from brain.strategy import Strategy, StrategyParams
from shared.config import load_settings
from tests.support.replay import REPLAY_DIR


def test_adopted_indicators_are_rebuilt_from_the_same_candles_after_a_restart() -> None:
    settings = load_settings(env={}, dotenv_path=None)

    async def read() -> list[CandleBatch]:
        feed = ReplayFeed(REPLAY_DIR, settings.market.symbols, "5m", speed=0.0)
        return [batch async for batch in feed.batches()][:700]

    history = asyncio.run(read())
    # Long periods: where the history starts still shows in their values after 300 candles.
    params = dataclasses.replace(
        StrategyParams.from_settings(settings.strategy), ema_slow=400, volume_period=150
    )
    strategy = Strategy(params, "v2")
    notifier = Notifier()
    running = TradingBook(settings, EngineState.fresh(settings, notifier, params, None), notifier)
    running.adopt(strategy, history[200:500])  # the engine's window of recent candles
    for batch in history[500:]:
        running.advance(batch, Step(batch.close_time, {}))
    assert running.state.indicators_from == history[200].close_time

    saved = running.state.to_dict(positions=True)
    state = EngineState.from_dict(saved, settings, notifier, strategy, next_trade_id=1)
    restarted = TradingBook(settings, state, notifier)
    for batch in history:  # a restart re-reads the feed from its first candle
        restarted.warm(batch)

    indicators = {symbol: scan.indicators for symbol, scan in running.scans.items()}
    assert {s: scan.indicators for s, scan in restarted.scans.items()} == indicators
    assert all(value is not None for value in indicators.values())
    assert restarted.marks == running.marks

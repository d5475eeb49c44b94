"""The brain process as an operator meets it: SIGTERM stops it gracefully, and a failing symbol
is reported without stopping the loop."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from brain.feeds.replay import ReplayFeed
from brain.models import Candle, CandleBatch
from brain.process import run_brain
from shared.config import load_settings
from shared.events import EventName
from shared.store.base import SnapshotName
from tests.brain.test_crash import committed_market_time, start_brain
from tests.brain.test_replay import read_events, read_snapshots
from tests.support.replay import REPLAY_DIR, Replay, brain_env
from tests.support.services import wait_until


async def test_sigterm_stops_the_brain_gracefully(tmp_path: Path) -> None:
    env = brain_env(tmp_path, "sqlite", None, "unused")
    env["TB_MARKET__REPLAY_SPEED"] = "60000"  # 5-minute candles every 5 ms: a long run
    brain = start_brain(env)
    try:
        wait_until(lambda: committed_market_time(tmp_path / "history.db") is not None, 60, "steps")
        brain.send_signal(signal.SIGTERM)
        _, errors = brain.communicate(timeout=30)
    finally:
        if brain.poll() is None:
            brain.kill()
            brain.communicate()
    assert brain.returncode == 0, errors.decode()
    settings = load_settings(env=env, dotenv_path=None)
    run = Replay("sqlite", settings, tmp_path, result=None)  # type: ignore[arg-type]
    events = await read_events(run)
    assert events[-1].name is EventName.SYSTEM_SHUTDOWN
    assert (await read_snapshots(run))[SnapshotName.SYSTEM]["status"] == "stopped"


class BatchesFeed:
    """A feed of given batches (the feed is a plug-in point: the brain takes any Feed)."""

    name = "replay"

    def __init__(self, batches: list[CandleBatch]) -> None:
        self._batches = batches

    async def batches(self, after: datetime | None = None) -> AsyncIterator[CandleBatch]:
        for batch in self._batches:
            yield batch

    async def aclose(self) -> None:
        pass


async def test_a_failing_symbol_is_reported_and_the_loop_goes_on(tmp_path: Path) -> None:
    env = brain_env(tmp_path, "sqlite", None, f"tbtest:{uuid.uuid4().hex[:8]}")
    settings = load_settings(env=env, dotenv_path=None)
    settings = dataclasses.replace(
        settings, market=dataclasses.replace(settings.market, symbols=("BTC/USDT", "ETH/USDT"))
    )
    real = ReplayFeed(REPLAY_DIR, ("BTC/USDT", "ETH/USDT"), "5m")
    batches = [batch async for batch in real.batches()][:60]
    # A candle of a symbol the brain was not configured for: its scan fails.
    broken = batches[40]
    stray = dataclasses.replace(broken.candles["BTC/USDT"], symbol="FOO/USDT")
    batches[40] = CandleBatch(broken.close_time, {**broken.candles, "FOO/USDT": stray})
    result = await run_brain(settings, asyncio.Event(), exit_at_end=True, feed=BatchesFeed(batches))
    assert result.steps == 60
    events = await read_events(Replay("sqlite", settings, tmp_path, result))
    errors = [e for e in events if e.name is EventName.SYSTEM_ERROR]
    assert len(errors) == 1
    assert "FOO/USDT" in errors[0].data["message"]
    scans = [e for e in events if e.name is EventName.SCAN_COMPLETE]
    assert len(scans) == 60
    assert isinstance(stray, Candle)

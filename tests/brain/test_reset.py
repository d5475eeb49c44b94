"""``tradingbrain reset`` wipes the paper account, its history and its store, after asking."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from brain.feeds.replay import ReplayFeed
from brain.process import run_brain
from shared.cli import main
from shared.config import load_settings
from shared.db import tables
from tests.brain.test_lifecycle import BatchesFeed
from tests.brain.test_replay import read_events, read_snapshots, sql_rows
from tests.support.replay import REPLAY_DIR, Replay, brain_env


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_reset_asks_then_wipes_everything(
    backend: str,
    tmp_path: Path,
    redis_url: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if backend == "redis" and redis_url is None:
        pytest.skip("needs a real redis-server")
    env = brain_env(tmp_path, backend, redis_url, f"tbtest:{uuid.uuid4().hex[:12]}")
    settings = load_settings(env=env, dotenv_path=None)
    replay = ReplayFeed(REPLAY_DIR, settings.market.symbols, "5m")
    two_days = [batch async for batch in replay.batches()][:576]
    await run_brain(settings, asyncio.Event(), exit_at_end=True, feed=BatchesFeed(two_days))
    run = Replay(backend, settings, tmp_path, result=None)  # type: ignore[arg-type]
    assert await sql_rows(run, tables.trades)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env here

    refused = await asyncio.to_thread(main, ["reset"])  # no terminal to confirm on
    assert refused == 1
    assert "Nothing was deleted" in capsys.readouterr().out
    assert await sql_rows(run, tables.trades)

    assert await asyncio.to_thread(main, ["reset", "--yes"]) == 0
    assert "Reset done" in capsys.readouterr().out
    for table in (tables.trades, tables.signals, tables.positions, tables.brain_state):
        assert await sql_rows(run, table) == []
    assert await read_events(run) == []
    assert await read_snapshots(run) == {}

"""SIGKILL the brain in the middle of a replay, start it again: it resumes where its last commit
left off, and ends with exactly the trades, cash and positions of a run that never crashed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from shared.config import load_settings
from shared.db import tables
from shared.events import EventName
from tests.brain.test_replay import read_events, sql_rows
from tests.support.replay import ROOT, Replay, brain_env
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

KILL_AFTER = "2024-07-30T00:00:00"  # about a third of the way through the three weeks


def start_brain(env: dict[str, str]) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).with_name("tradingbrain")
    base = {k: v for k, v in os.environ.items() if not k.startswith("TB_")}
    return subprocess.Popen(
        [str(script), "brain", "--exit-at-end", "--log-level", "WARNING"],
        cwd=ROOT,
        env={**base, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def committed_market_time(history: Path) -> str | None:
    if not history.exists():
        return None
    try:
        with closing(sqlite3.connect(f"file:{history}?mode=ro", uri=True, timeout=1)) as conn:
            row = conn.execute("SELECT market_time FROM brain_state").fetchone()
    except sqlite3.OperationalError:
        return None  # not created yet
    return str(row[0]) if row else None


def comparable(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in rows]


async def test_a_killed_brain_resumes_and_ends_as_if_it_never_crashed(
    replay: Replay, tmp_path: Path, redis_url: str | None
) -> None:
    env = brain_env(tmp_path, replay.backend, redis_url, f"tbtest:{uuid.uuid4().hex[:12]}")
    history = tmp_path / "history.db"

    first = start_brain(env)
    try:
        wait_until(
            lambda: (committed_market_time(history) or "") >= KILL_AFTER, 120, "the replay to run"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    killed_at = committed_market_time(history)
    assert killed_at is not None
    assert killed_at < "2024-08-12", "killed mid-replay"

    second = start_brain(env)
    _, errors = second.communicate(timeout=300)
    assert second.returncode == 0, errors.decode()

    crashed = load_settings(env=env, dotenv_path=None)
    run = Replay(replay.backend, crashed, tmp_path, replay.result)
    assert comparable(await sql_rows(run, tables.trades)) == comparable(
        await sql_rows(replay, tables.trades)
    )
    assert comparable(await sql_rows(run, tables.positions)) == comparable(
        await sql_rows(replay, tables.positions)
    )
    assert comparable(await sql_rows(run, tables.daily_performance)) == comparable(
        await sql_rows(replay, tables.daily_performance)
    )
    (state,) = await sql_rows(run, tables.brain_state)
    (reference,) = await sql_rows(replay, tables.brain_state)
    assert state.state["portfolio"] == reference.state["portfolio"]
    assert state.state["risk"] == reference.state["risk"]

    events = await read_events(run)
    trade_ids = [e.data["trade_id"] for e in events if e.name is EventName.TRADE_EXECUTED]
    assert trade_ids == [t.id for t in await sql_rows(run, tables.trades)]
    counts = Counter(e.name for e in events)
    assert counts[EventName.SYSTEM_ONLINE] == 2  # one per start; the killed run never stopped
    assert counts[EventName.SYSTEM_SHUTDOWN] == 1
    assert counts[EventName.SCAN_COMPLETE] == 6048  # no step lost, none done twice
    assert [int(e.id) for e in events] == sorted({int(e.id) for e in events})

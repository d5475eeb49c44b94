"""SIGKILL the brain in the middle of a nightly cycle (while the optimiser searches, after
``orchestrator_cycle_started`` was committed): no version is ever half-deployed, and the
restarted brain ends exactly where a run that never crashed ends."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from brain.process import run_brain
from shared.config import load_settings
from shared.db import tables
from shared.events import EventName
from shared.store.base import SnapshotName
from tests.brain.test_crash import comparable, start_brain
from tests.brain.test_replay import read_events, read_snapshots, sql_rows
from tests.support.replay import Replay, brain_env, first_days
from tests.support.services import async_wait_until

pytestmark = pytest.mark.slow

DAYS = 5
KILLED_CYCLE = 4  # 2024-07-25 01:00: paper tests have run, a deploy may be decided
SETTINGS = {
    # A search long enough (seconds) to be caught in the middle of.
    "TB_ORCHESTRATOR__CANDIDATE_BUDGET": "400",
    # The engine keeps two days of candles: the shadow books' indicators are built from fewer
    # candles than the feed has, which a restart must reproduce exactly.
    "TB_ORCHESTRATOR__LOOKBACK_DAYS": "1",
}


def settings_env(workdir: Path, data: Path, backend: str, redis_url: str | None) -> dict[str, str]:
    env = brain_env(workdir, backend, redis_url, f"tbtest:{uuid.uuid4().hex[:12]}")
    return {**env, **SETTINGS, "TB_MARKET__REPLAY_DIR": str(data)}


async def cycle_counts(run: Replay) -> Counter[EventName]:
    try:
        events = await read_events(run)
    except Exception:  # the store is not created yet
        return Counter()
    return Counter(event.name for event in events)


async def versions_and_tests(run: Replay) -> tuple[list[Any], list[Any]]:
    versions = await sql_rows(run, tables.strategy_versions)
    tests = await sql_rows(run, tables.paper_tests)
    return comparable(versions), [row[1:] for row in comparable(tests)]  # ids aside


async def assert_sql_and_snapshots_agree(run: Replay) -> None:
    versions = await sql_rows(run, tables.strategy_versions)
    (active,) = [row for row in versions if row.status == "active"]
    strategy = (await read_snapshots(run))[SnapshotName.STRATEGY]
    assert strategy["active"]["version"] == active.version
    assert strategy["active"]["parameters"] == active.parameters
    running = {
        row.version for row in await sql_rows(run, tables.paper_tests) if row.status == "running"
    }
    assert {row.version for row in versions if row.status == "candidate"} == running


async def test_a_brain_killed_mid_cycle_never_half_deploys(
    replay: Replay, tmp_path: Path, redis_url: str | None
) -> None:
    data = first_days(tmp_path / "market", DAYS)
    backend = replay.backend

    reference_env = settings_env(tmp_path / "clean", data, backend, redis_url)
    (tmp_path / "clean").mkdir()
    reference = Replay(
        backend,
        load_settings(env=reference_env, dotenv_path=None),
        tmp_path / "clean",
        replay.result,
    )
    await run_brain(reference.settings, asyncio.Event(), exit_at_end=True)

    (tmp_path / "crashed").mkdir()
    env = settings_env(tmp_path / "crashed", data, backend, redis_url)
    crashed = Replay(
        backend, load_settings(env=env, dotenv_path=None), tmp_path / "crashed", replay.result
    )
    brain = start_brain(env)
    try:

        async def in_the_middle_of_the_cycle() -> bool:
            counts = await cycle_counts(crashed)
            started = counts[EventName.ORCHESTRATOR_CYCLE_STARTED]
            completed = counts[EventName.ORCHESTRATOR_CYCLE_COMPLETED]
            return started == KILLED_CYCLE and completed == KILLED_CYCLE - 1

        await async_wait_until(in_the_middle_of_the_cycle, 120, "the third cycle to start")
    finally:
        brain.send_signal(signal.SIGKILL)
        brain.communicate(timeout=30)
    assert brain.returncode == -signal.SIGKILL
    counts = await cycle_counts(crashed)
    assert counts[EventName.ORCHESTRATOR_CYCLE_COMPLETED] == KILLED_CYCLE - 1, "killed mid-cycle"
    await assert_sql_and_snapshots_agree(crashed)

    restarted = start_brain(env)
    _, errors = await asyncio.to_thread(restarted.communicate, timeout=300)
    assert restarted.returncode == 0, errors.decode()

    await assert_sql_and_snapshots_agree(crashed)
    assert await versions_and_tests(crashed) == await versions_and_tests(reference)
    for table in (tables.trades, tables.positions, tables.daily_performance):
        assert comparable(await sql_rows(crashed, table)) == comparable(
            await sql_rows(reference, table)
        ), table.name
    (state,) = await sql_rows(crashed, tables.brain_state)
    (expected,) = await sql_rows(reference, tables.brain_state)
    assert state.state == expected.state  # the live book, and the paper tests' shadow books
    counts = await cycle_counts(crashed)
    assert counts[EventName.ORCHESTRATOR_CYCLE_STARTED] == DAYS  # announced once, not again
    assert counts[EventName.ORCHESTRATOR_CYCLE_COMPLETED] == DAYS
    reference_counts = await cycle_counts(reference)
    for name in (
        EventName.STRATEGY_DEPLOYED,
        EventName.PAPER_TEST_STARTED,
        EventName.PAPER_TEST_COMPLETED,
    ):
        assert counts[name] == reference_counts[name], name


async def test_a_stop_request_does_not_wait_for_a_long_cycle(tmp_path: Path) -> None:
    """A search that would take minutes is cancelled by a stop (its worker killed, nothing of
    the cycle committed but its announcement); the next start runs the cycle again."""
    data = first_days(tmp_path / "market", 3)
    env = settings_env(tmp_path, data, "sqlite", None)
    slow = load_settings(
        env={**env, "TB_ORCHESTRATOR__CANDIDATE_BUDGET": "100000"}, dotenv_path=None
    )
    run = Replay("sqlite", slow, tmp_path, None)  # type: ignore[arg-type]
    stop = asyncio.Event()
    brain = asyncio.create_task(run_brain(slow, stop, exit_at_end=True))

    async def searching() -> bool:
        return (await cycle_counts(run))[EventName.ORCHESTRATOR_CYCLE_STARTED] == 2

    await async_wait_until(searching, 60, "the second cycle (the first with a search)")
    stop.set()
    await asyncio.wait_for(brain, 15)  # not the minutes the search would take
    assert not multiprocessing.active_children(), "the search's worker is gone"
    counts = await cycle_counts(run)
    assert counts[EventName.ORCHESTRATOR_CYCLE_COMPLETED] == 1
    assert counts[EventName.SYSTEM_SHUTDOWN] == 1

    quick = load_settings(env=env, dotenv_path=None)
    await run_brain(quick, asyncio.Event(), exit_at_end=True)
    counts = await cycle_counts(run)
    assert counts[EventName.ORCHESTRATOR_CYCLE_STARTED] == 3  # the second not announced again
    assert counts[EventName.ORCHESTRATOR_CYCLE_COMPLETED] == 3

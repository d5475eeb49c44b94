"""The orchestrator's parts on their own: the optimiser's search, risk tiers, guard rails and
the worker process."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from brain.feeds.replay import ReplayFeed
from brain.ledger import Step
from brain.models import CandleBatch, Fill
from brain.orchestrator.guard import DeployWatch
from brain.orchestrator.optimiser import SearchRequest, WorkerPool, candidates, search
from brain.orchestrator.tiers import changes, departure, paper_days, risk_tier
from brain.strategy import StrategyParams
from shared.config import load_settings
from shared.settings import Settings
from tests.support.replay import REPLAY_DIR

NOW = datetime(2024, 7, 24, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={"TB_ORCHESTRATOR__CANDIDATE_BUDGET": "5"}, dotenv_path=None)


@pytest.fixture(scope="module")
def two_days(settings: Settings) -> tuple[CandleBatch, ...]:
    async def read() -> list[CandleBatch]:
        feed = ReplayFeed(REPLAY_DIR, settings.market.symbols, "5m", speed=0.0)
        return [batch async for batch in feed.batches()][: 2 * 288]

    return tuple(asyncio.run(read()))


def active(settings: Settings) -> StrategyParams:
    return StrategyParams.from_settings(settings.strategy)


def test_candidates_are_distinct_valid_neighbours_in_a_seeded_order(settings: Settings) -> None:
    base = active(settings)
    drawn = list(candidates(base, random.Random("7:x"), 40))
    assert len(drawn) == 40
    assert len(set(drawn)) == 40
    assert base not in drawn
    assert all(1 <= len(changes(base, params)) <= 3 for params in drawn)
    assert drawn == list(candidates(base, random.Random("7:x"), 40))
    assert drawn != list(candidates(base, random.Random("7:y"), 40))


def test_the_search_is_deterministic(settings: Settings, two_days: tuple[CandleBatch, ...]) -> None:
    request = SearchRequest(settings, active(settings).to_dict(), two_days, "7:2024-07-24")
    first = search(request)
    assert first.evaluated == 5
    assert search(request) == first
    assert first.params is not None  # these two days and this seed give a proposal
    assert "validation" in first.summary
    assert StrategyParams.from_dict(first.params) != active(settings)


def test_a_candidate_that_only_fits_the_past_fails_walk_forward_validation(
    settings: Settings, two_days: tuple[CandleBatch, ...]
) -> None:
    # With this seed the best training score belongs to a candidate that loses to the active
    # version on the last window, the one the ranking never saw.
    result = search(SearchRequest(settings, active(settings).to_dict(), two_days, "3"))
    assert result.params is None
    assert "failed walk-forward validation" in result.summary


def test_a_search_without_candidates_says_so(
    settings: Settings, two_days: tuple[CandleBatch, ...]
) -> None:
    lone = dataclasses.replace(
        settings, orchestrator=dataclasses.replace(settings.orchestrator, min_edge_pct=100.0)
    )
    result = search(SearchRequest(lone, active(settings).to_dict(), two_days, "7"))
    assert result.params is None
    assert "beat the active version" in result.summary


def test_tiers_follow_the_largest_parameter_move(settings: Settings) -> None:
    rules = settings.orchestrator
    base = active(settings)
    # rsi_exit's range is 0-100: 2 points move 2 %, 10 points 10 %, 20 points 20 %
    small = dataclasses.replace(base, rsi_exit=80.0)
    medium = dataclasses.replace(base, rsi_exit=88.0)
    large = dataclasses.replace(base, rsi_exit=98.0)
    assert departure(base, small) == pytest.approx(0.02)
    assert [risk_tier(base, p, rules) for p in (small, medium, large)] == [1, 2, 3]
    assert [paper_days(tier, rules) for tier in (1, 2, 3)] == [2, 3, 5]
    assert changes(base, small) == {"rsi_exit": {"from": 78.0, "to": 80.0}}


def losing_exit(at: datetime) -> Fill:
    return Fill("BTC/USDT", "SELL", 1.0, 10.0, 0.01, -1.0, -9.0, "v", at, "stop_loss", at)


def test_guard_rails_catch_a_drawdown_and_a_run_of_losses(settings: Settings) -> None:
    rules = settings.orchestrator  # 5 % drawdown, 4 losses
    watch = DeployWatch("v2", "v1", NOW + timedelta(days=3), peak=200.0)
    watch.observe(210.0, Step(NOW, {}))
    watch.observe(200.0, Step(NOW, {}))
    assert watch.breach(rules) is None  # 4.8 % below the peak
    watch.observe(199.0, Step(NOW, {}))
    reason = watch.breach(rules)
    assert reason is not None
    assert "drawdown 5.24%" in reason

    losses = DeployWatch("v2", "v1", NOW + timedelta(days=3), peak=200.0)
    step = Step(NOW, {}, trades=[(i, losing_exit(NOW)) for i in range(3)])
    losses.observe(200.0, step)
    assert losses.breach(rules) is None
    losses.observe(200.0, Step(NOW, {}, trades=[(9, losing_exit(NOW))]))
    assert "4 losing trades" in (losses.breach(rules) or "")
    assert DeployWatch.from_dict(losses.to_dict()) == losses


async def test_a_search_past_its_time_limit_is_killed_and_the_worker_replaced() -> None:
    pool = WorkerPool()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await pool.run(time.sleep, 30.0, limit=1.0)
        assert time.monotonic() - started < 20
        assert await pool.run(abs, -3, limit=60.0) == 3  # a fresh worker
    finally:
        pool.close()

"""The built-in strategist: a seeded random search over the strategy's parameters, each
candidate backtested on the recent candles with the brain's own ``TradingBook``, and judged by
walk-forward validation so it cannot just fit the past.

The recent candles (after a warm-up for the indicators) are split into consecutive windows.
Candidates are ranked by their mean score on all windows but the last; the best must beat the
active version there, and then again on the last window, which the ranking never looked at.
A window's score is its return in percent less half its deepest drawdown in percent.

The search runs in a worker process (``WorkerPool``), off the trading loop's event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import random
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.pool import Pool
from typing import Any, TypeVar

from brain.book import TradingBook
from brain.engine_state import EngineState
from brain.ledger import Step
from brain.models import CandleBatch
from brain.notifier import Notifier
from brain.orchestrator.proposal import NoProposal, Proposal
from brain.strategy import ParamValue, Strategy, StrategyParams
from shared.settings import Secrets, Settings
from shared.timeutil import to_iso

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Each candidate moves one to three parameters by a normal step of one of these fractions of
# the parameter's range: mostly small moves (tier 1), some bolder ones (tiers 2 and 3).
STEP_SCALES = (0.01, 0.03, 0.08)
WARMUP_BATCHES = 288  # one day of 5-minute candles warms every indicator the bounds allow
DRAWDOWN_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class SearchRequest:
    settings: Settings
    active: dict[str, ParamValue]
    history: tuple[CandleBatch, ...]
    seed: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    params: dict[str, ParamValue] | None  # None: no candidate passed; ``summary`` says why
    summary: str
    evaluated: int


@dataclass(frozen=True, slots=True)
class Backtest:
    scores: list[float]  # one per window
    training_trades: int  # trades closed in all windows but the last

    @property
    def training(self) -> float:
        return statistics.fmean(self.scores[:-1])

    @property
    def validation(self) -> float:
        return self.scores[-1]


def backtest(
    settings: Settings, params: StrategyParams, history: Sequence[CandleBatch], windows: int
) -> Backtest:
    """Run ``params`` once over ``history`` and score each of its ``windows``."""
    notifier = Notifier()
    strategy = Strategy(params, "backtest")
    book = TradingBook(settings, EngineState.fresh(settings, notifier, params, strategy), notifier)
    warm = min(WARMUP_BATCHES, len(history) // (windows + 1))
    for batch in history[:warm]:
        book.warm(batch)
    traded = history[warm:]
    size = len(traded) // windows
    scores = []
    training_trades = 0
    for index in range(windows):
        chunk = traded[index * size : (index + 1) * size if index < windows - 1 else None]
        start = peak = book.value()
        drawdown = 0.0
        for batch in chunk:
            step = Step(batch.close_time, {})
            book.advance(batch, step)
            notifier.take()
            if index < windows - 1:
                training_trades += sum(1 for _, fill in step.trades if fill.pnl is not None)
            value = book.value()
            peak = max(peak, value)
            drawdown = max(drawdown, 1.0 - value / peak)
        end = book.value()
        scores.append((end / start - 1.0) * 100.0 - DRAWDOWN_WEIGHT * drawdown * 100.0)
    return Backtest(scores, training_trades)


def candidates(active: StrategyParams, rng: random.Random, budget: int) -> Iterator[StrategyParams]:
    """Up to ``budget`` distinct valid neighbours of ``active``, in the order ``rng`` gives."""
    seen = {active}
    bounds = StrategyParams.PARAM_BOUNDS
    for _ in range(budget * 50):  # invalid draws (ema_fast >= ema_slow, ...) are redrawn
        if len(seen) > budget:
            return
        scale = rng.choice(STEP_SCALES)
        values = active.to_dict()
        for name in rng.sample(sorted(bounds), k=rng.randint(1, 3)):
            low, high = bounds[name]
            moved = min(high, max(low, values[name] + rng.gauss(0.0, scale * (high - low))))
            integer = name in StrategyParams.INTEGER_PARAMS
            values[name] = round(moved) if integer else round(moved, 4)
        try:
            params = StrategyParams(**values)  # type: ignore[arg-type]
        except ValueError:
            continue
        if params not in seen:
            seen.add(params)
            yield params


def search(request: SearchRequest) -> SearchResult:
    """The search itself (in the worker process): deterministic for a given request. Only
    candidates that closed at least ``paper_min_trades`` trades in training compete: standing
    aside always "beats" a losing market, and would fail its paper test anyway."""
    rules = request.settings.orchestrator
    active = StrategyParams.from_dict(request.active)
    history, windows = request.history, rules.walk_forward_folds
    base = backtest(request.settings, active, history, windows)
    best: tuple[StrategyParams, Backtest] | None = None
    evaluated = 0
    for params in candidates(active, random.Random(request.seed), rules.candidate_budget):
        evaluated += 1
        result = backtest(request.settings, params, history, windows)
        if result.training_trades < max(1, rules.paper_min_trades):
            continue
        if best is None or result.training > best[1].training:
            best = (params, result)
    edge = rules.min_edge_pct
    if best is None or best[1].training <= base.training + edge:
        summary = f"no candidate of {evaluated} beat the active version's training score"
        return SearchResult(None, summary, evaluated)
    params, result = best
    scores = (
        f"training score {result.training:+.3f} vs {base.training:+.3f}, "
        f"validation {result.validation:+.3f} vs {base.validation:+.3f}"
    )
    if result.validation <= base.validation + edge:
        summary = f"the best of {evaluated} candidates failed walk-forward validation ({scores})"
        return SearchResult(None, summary, evaluated)
    return SearchResult(params.to_dict(), f"best of {evaluated}: {scores}", evaluated)


class WorkerPool:
    """One worker process (spawned lazily), so a search never blocks the trading loop and a
    search past its time limit, or a stopping brain, can kill it."""

    def __init__(self) -> None:
        self._pool: Pool | None = None

    async def run(self, function: Callable[[T], R], argument: T, limit: float) -> R:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()

        def settle(outcome: Any, failed: bool = False) -> None:
            if not done.done():
                (done.set_exception if failed else done.set_result)(outcome)

        if self._pool is None:
            self._pool = multiprocessing.get_context("spawn").Pool(1)
        self._pool.apply_async(
            function,
            (argument,),
            callback=lambda result: loop.call_soon_threadsafe(settle, result),
            error_callback=lambda exc: loop.call_soon_threadsafe(settle, exc, True),
        )
        try:
            return await asyncio.wait_for(done, limit)
        except (TimeoutError, asyncio.CancelledError):
            self.close()  # the worker may be mid-search: kill it, the next run spawns anew
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


class Optimiser:
    def __init__(self, settings: Settings, pool: WorkerPool) -> None:
        # The worker needs no secrets: they stay in this process.
        self._settings = dataclasses.replace(
            settings, secrets=Secrets((), None, None, None, None, None)
        )
        self._pool = pool

    async def propose(
        self, active: StrategyParams, history: Sequence[CandleBatch], moment: datetime
    ) -> Proposal:
        rules = self._settings.orchestrator
        if not history or history[-1].close_time - history[0].close_time < timedelta(
            days=rules.min_history_days
        ):
            raise NoProposal(f"less than {rules.min_history_days:g} days of candles to test on")
        since = history[-1].close_time - timedelta(days=rules.lookback_days)
        recent = tuple(batch for batch in history if batch.close_time > since)
        seed = f"{rules.seed}:{to_iso(moment)}"  # the same cycle always searches the same way
        request = SearchRequest(self._settings, active.to_dict(), recent, seed)
        try:
            result = await self._pool.run(search, request, limit=rules.worker_timeout)
        except TimeoutError:
            raise NoProposal(f"the search took longer than {rules.worker_timeout:g}s") from None
        log.info("optimiser: %s", result.summary)
        if result.params is None:
            raise NoProposal(result.summary)
        return Proposal(StrategyParams.from_dict(result.params), result.summary, "optimiser")

    def close(self) -> None:
        self._pool.close()

"""The trading engine: one step per batch of closed candles, the same code live, in replay and
in backtests.

A step: the live ``TradingBook`` trades the batch (fills, stops, scans, the day's close), its
companion (the orchestrator's paper tests and guard rails) follows, then everything the step
changed, events included, is committed in one SQL transaction, and only then handed to the
snapshot publisher. Batches at or before the last committed step only warm the
indicators, so a restart continues exactly as if it had never stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from brain.book import TradingBook
from brain.engine_state import EngineState
from brain.ledger import Ledger, Step
from brain.models import CandleBatch, Fill
from brain.notifier import Notifier
from brain.portfolio import Portfolio
from brain.risk import RiskManager
from brain.strategy import Strategy, code_hash, version_id
from brain.views import market_view, system_view
from brain.writer import StepWriter
from shared.settings import Settings
from shared.store.base import SnapshotName
from shared.timeutil import utc_now

log = logging.getLogger(__name__)


class StepCompanion(Protocol):
    """What rides along the live book (the orchestrator: paper tests, guard rails, the strategy
    and AI usage documents). Its state is saved in every step's transaction."""

    def warm(self, batch: CandleBatch) -> None: ...

    def advance(self, batch: CandleBatch, step: Step, live: TradingBook) -> None: ...

    def to_dict(self) -> dict[str, Any]: ...

    def docs(self) -> Mapping[SnapshotName, Any]: ...

    async def refresh(self) -> None: ...


class TradingEngine:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        notifier: Notifier,
        writer: StepWriter,
        state: EngineState,
        *,
        companion: StepCompanion,
        history: int,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._notifier = notifier
        self._writer = writer
        self._state = state
        self._companion = companion
        self._online = False
        # Steps, operator commands (Telegram's /pause, /closeall, ...) and the nightly cycle's
        # changes take turns: none sees another half-done.
        self._turn = asyncio.Lock()
        self._started_at = utc_now()
        self._book = TradingBook(settings, state, notifier)
        # The newest candles, for the optimiser and to rebuild indicators when the strategy
        # changes (a restart refills it: the feed re-reads its history).
        self._history: deque[CandleBatch] = deque(maxlen=history)

    # --- what others read ------------------------------------------------------------------

    @property
    def checkpoint(self) -> datetime | None:
        """The market time of the last committed step."""
        return self._state.checkpoint

    @property
    def portfolio(self) -> Portfolio:
        return self._state.portfolio

    @property
    def risk(self) -> RiskManager:
        return self._state.risk

    @property
    def strategy(self) -> Strategy | None:
        return self._state.strategy

    @property
    def truth_view(self) -> dict[str, Any]:
        return dict(self._state.truth.view())

    def history(self) -> list[CandleBatch]:
        return list(self._history)

    def value(self) -> float:
        return self._book.value()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """A restart comes online at once, at the market time it resumes from; a fresh start
        comes online at its first step's market time."""
        await self._companion.refresh()
        if self._state.checkpoint is not None:
            await self._come_online(self._state.checkpoint)

    async def stop(self) -> None:
        """``system_shutdown`` and a final ``stopped`` system snapshot, after every step."""
        self._notifier.system_shutdown()
        await self._submit_events(self.snapshot_docs(status="stopped"))

    async def feed_lost(self) -> None:
        self._notifier.websocket_feed_lost()
        await self._submit_events()

    async def feed_recovered(self) -> None:
        self._notifier.websocket_feed_recovered()
        await self._submit_events()

    def clock(self) -> datetime:
        """Market time: the last step's, or the wall clock before the first (live feeds)."""
        return self._state.checkpoint or utc_now()

    async def _submit_events(self, docs: dict[SnapshotName, Any] | None = None) -> None:
        events = self._notifier.take()
        await self._writer.submit(Step(self.clock(), None, events=events), docs)

    async def _come_online(self, moment: datetime) -> None:
        """``system_online`` at the market time of the first step this run makes."""
        self._online = True
        portfolio = self._state.portfolio
        self._notifier.system_online(round(self.value(), 8), len(portfolio.positions))
        docs = self.snapshot_docs(status="running")
        await self._writer.submit(Step(moment, None, events=self._notifier.take()), docs)

    # --- operator commands ----------------------------------------------------------------

    async def pause(self) -> bool:
        """Stop opening new positions (exits and stops go on); False when already paused."""
        async with self._turn:
            if self._state.paused:
                return False
            self._state.paused = True
            self._notifier.trading_paused()
            await self._commit(Step(self.clock(), None))
            return True

    async def resume(self) -> bool:
        """Open new positions again after ``pause``; False when not paused."""
        async with self._turn:
            if not self._state.paused:
                return False
            self._state.paused = False
            self._notifier.trading_resumed()
            await self._commit(Step(self.clock(), None))
            return True

    async def resume_trading(self) -> bool:
        """Clear a risk halt (``risk_resumed``); False when not halted."""
        async with self._turn:
            if not self._state.risk.resume():
                return False
            await self._commit(Step(self.clock(), None))
            return True

    async def close_all(self) -> list[Fill]:
        """Emergency exit: sell every position now at its last price."""
        async with self._turn:
            step = Step(self.clock(), None)
            fills = self._book.exit_all(step.market_time, step)
            await self._commit(step)
            return fills

    # --- the nightly cycle's changes --------------------------------------------------------

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the engine between steps and commands (the cycle reads and changes it)."""
        async with self._turn:
            yield

    def adopt(self, strategy: Strategy) -> None:
        """Trade ``strategy`` from the next step on (inside ``exclusive``)."""
        self._book.adopt(strategy, self._history)

    async def commit_changes(self, step: Step) -> None:
        """Commit ``step`` (inside ``exclusive``) with the engine's state and events, wait for
        the commit, then publish: what the SQL says and the snapshots agree."""
        await self._commit(step, publish=False)  # the documents wait for the refresh below
        await self._writer.flush()
        await self._companion.refresh()
        await self._writer.submit(
            Step(step.market_time, None), self.snapshot_docs(status="running")
        )

    async def _commit(self, step: Step, *, publish: bool = True) -> None:
        step.events = [*step.events, *self._notifier.take()]
        if self._state.checkpoint is not None:
            step.state = self._state_dict()  # the change survives a restart
        await self._writer.submit(step, self.snapshot_docs(status="running") if publish else None)

    def _state_dict(self) -> dict[str, Any]:
        return {**self._state.to_dict(), "orchestrator": self._companion.to_dict()}

    # --- the step ---------------------------------------------------------------------------

    async def step(self, batch: CandleBatch) -> None:
        async with self._turn:
            await self._step(batch)

    async def _step(self, batch: CandleBatch) -> None:
        moment = batch.close_time
        state = self._state
        self._history.append(batch)
        if state.checkpoint is not None and moment <= state.checkpoint:
            self._book.warm(batch)
            self._companion.warm(batch)
            return
        await self._ensure_strategy(moment)
        if not self._online:
            await self._come_online(moment)
        step = Step(market_time=moment, state={})
        self._book.advance(batch, step)
        self._companion.advance(batch, step, self._book)
        step.events = self._notifier.take()
        step.state = self._state_dict()
        state.checkpoint = moment
        await self._writer.submit(step, self.snapshot_docs(status="running"))

    # --- strategy ---------------------------------------------------------------------------

    async def _ensure_strategy(self, moment: datetime) -> None:
        """The first live step deploys the settings' parameters as the first version."""
        if self._state.strategy is not None:
            return
        params = self._state.params
        version = version_id(moment)
        await self._ledger.add_strategy_version(
            {
                "version": version,
                "code_hash": code_hash(params),
                "risk_tier": 1,
                "description": "initial parameters from settings",
                "parameters": params.to_dict(),
                "status": "active",
                "created_at": moment,
                "deployed_at": moment,
            }
        )
        self._state.strategy = Strategy(params, version)
        await self._companion.refresh()

    # --- snapshots --------------------------------------------------------------------------

    def snapshot_docs(self, *, status: str) -> dict[SnapshotName, Any]:
        state, book = self._state, self._book
        risk = state.risk
        return {
            SnapshotName.SYSTEM: system_view(
                status=status,
                started_at=self._started_at,
                last_scan=state.last_scan,
                paused=state.paused,
                halted=risk.halted,
                halt_reason=risk.halt_reason,
                feed=self._settings.market.feed,
            ),
            SnapshotName.PORTFOLIO: state.portfolio.portfolio_view(book.marks),
            SnapshotName.POSITIONS: state.portfolio.positions_view(book.marks),
            SnapshotName.RISK: risk.view(),
            SnapshotName.MARKET: market_view(
                {s: (scan.candle, scan.indicators, scan.signal) for s, scan in book.scans.items()}
            ),
            SnapshotName.BENCHMARKS: state.truth.view(),
            **self._companion.docs(),
        }

"""The trading engine: one step per batch of closed candles, the same code live, in replay and
in backtests.

A step: fill the orders waiting for this price, check stops and targets, scan (indicators,
signals, risk), queue orders for the next price, close the day when it ends, then commit
everything the step changed, events included, in one SQL transaction, and only then hand the
new state to the snapshot publisher. Batches at or before the last committed step only warm the
indicators, so a restart continues exactly as if it had never stopped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from brain.broker import PaperBroker
from brain.daybook import DayBook, is_midnight
from brain.engine_state import EngineState, PendingOrder
from brain.indicators import IndicatorState
from brain.ledger import Ledger, SignalRecord, Step
from brain.models import Candle, CandleBatch, Fill, Indicators, Signal
from brain.notifier import Notifier
from brain.portfolio import Portfolio
from brain.risk import RiskManager
from brain.strategy import Strategy, code_hash, version_id
from brain.views import market_view, strategy_view, system_view
from brain.writer import StepWriter
from shared.settings import Settings
from shared.store.base import SnapshotName
from shared.timeutil import utc_now

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Scan:
    """The last scan of one symbol: its candle, indicators and the signal action it gave."""

    candle: Candle
    indicators: Indicators | None
    signal: str | None


class TradingEngine:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        notifier: Notifier,
        writer: StepWriter,
        state: EngineState,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._notifier = notifier
        self._writer = writer
        self._state = state
        self._online = False
        # Steps and operator commands (Telegram's /pause, /closeall, ...) take turns: a command
        # never sees a half-done step, and a step never sees a half-applied command.
        self._turn = asyncio.Lock()
        self._started_at = utc_now()
        self._broker = PaperBroker(state.portfolio, settings.paper)
        self._indicators = {s: IndicatorState(state.params) for s in settings.market.symbols}
        self._scans: dict[str, Scan] = {}
        self._marks: dict[str, float] = {}
        self._strategy_doc: dict[str, Any] = {}

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

    def value(self) -> float:
        return self._state.portfolio.value(self._marks)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """A restart comes online at once, at the market time it resumes from; a fresh start
        comes online at its first step's market time."""
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

    def _clock(self) -> datetime:
        """Market time: the last step's, or the wall clock before the first (live feeds)."""
        return self._state.checkpoint or utc_now()

    async def _submit_events(self, docs: dict[SnapshotName, Any] | None = None) -> None:
        events = self._notifier.take()
        await self._writer.submit(Step(self._clock(), None, events=events), docs)

    async def _come_online(self, moment: datetime) -> None:
        """``system_online`` at the market time of the first step this run makes."""
        self._online = True
        await self._refresh_strategy_doc()
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
            await self._commit_command()
            return True

    async def resume(self) -> bool:
        """Open new positions again after ``pause``; False when not paused."""
        async with self._turn:
            if not self._state.paused:
                return False
            self._state.paused = False
            self._notifier.trading_resumed()
            await self._commit_command()
            return True

    async def resume_trading(self) -> bool:
        """Clear a risk halt (``risk_resumed``); False when not halted."""
        async with self._turn:
            if not self._state.risk.resume():
                return False
            await self._commit_command()
            return True

    async def close_all(self) -> list[Fill]:
        """Emergency exit: sell every position now at its last price."""
        async with self._turn:
            moment = self._clock()
            step = Step(moment, None)
            fills = []
            for symbol in list(self._state.portfolio.positions):
                price = self._marks.get(symbol)
                fill = (
                    self._broker.exit(symbol, price, "CLOSE", moment, "manual") if price else None
                )
                if fill is not None:
                    fills.append(fill)
                    self._record(fill, step)
            self._state.pending = [o for o in self._state.pending if o.action != "BUY"]
            await self._commit_command(step)
            return fills

    async def _commit_command(self, step: Step | None = None) -> None:
        step = step or Step(self._clock(), None)
        step.events = self._notifier.take()
        if self._state.checkpoint is not None:
            step.state = self._state.to_dict()  # the command's effect survives a restart
        await self._writer.submit(step, self.snapshot_docs(status="running"))

    # --- the step ---------------------------------------------------------------------------

    async def step(self, batch: CandleBatch) -> None:
        async with self._turn:
            await self._step(batch)

    async def _step(self, batch: CandleBatch) -> None:
        moment = batch.close_time
        state = self._state
        if state.checkpoint is not None and moment <= state.checkpoint:
            self._warm(batch)
            return
        strategy = await self._strategy(moment)
        if not self._online:
            await self._come_online(moment)
        if state.book is None:
            state.book = DayBook.start(moment, self.value())
        step = Step(market_time=moment, state={})
        if state.book.ended_before(moment):
            self._close_day(moment, step)
        self._fill_pending(batch, step)
        self._check_stops(batch, step)
        self._marks.update({symbol: c.close for symbol, c in batch.candles.items()})
        value = self.value()
        state.risk.mark(value, moment)
        signal_count = 0
        for symbol, candle in batch.candles.items():
            signal_count += self._scan(symbol, candle, strategy, value, step)
        self._notifier.scan_complete(len(batch.candles), signal_count)
        state.last_scan = moment
        if is_midnight(moment):
            self._close_day(moment, step)
        step.events = self._notifier.take()
        step.state = state.to_dict()
        state.checkpoint = moment
        await self._writer.submit(step, self.snapshot_docs(status="running"))

    def _warm(self, batch: CandleBatch) -> None:
        for symbol, candle in batch.candles.items():
            if symbol in self._indicators:
                indicators = self._indicators[symbol].update(candle)
                self._scans[symbol] = Scan(candle, indicators, None)
                self._marks[symbol] = candle.close

    def _fill_pending(self, batch: CandleBatch, step: Step) -> None:
        """Orders queued by the last scan fill at this candle's open: the next price."""
        waiting: list[PendingOrder] = []
        for order in self._state.pending:
            candle = batch.candles.get(order.symbol)
            if candle is None:
                waiting.append(order)  # no price for it yet
                continue
            fill = self._fill(order, candle)
            if fill is not None:
                self._record(fill, step)
        self._state.pending = waiting

    def _fill(self, order: PendingOrder, candle: Candle) -> Fill | None:
        strategy = self._state.strategy
        assert strategy is not None
        if order.action == "BUY":
            fill = self._broker.buy(
                order.symbol,
                order.notional,
                candle.open,
                stop_loss=strategy.stop_loss(candle.open, order.atr),
                take_profit=strategy.take_profit(candle.open, order.atr),
                at=candle.open_time,
                strategy_version=strategy.version,
            )
            if fill is None:
                self._notifier.signal_rejected(order.symbol, "not enough cash at the fill")
            return fill
        # An exit finds nothing to sell when a stop closed the position first.
        return self._broker.exit(order.symbol, candle.open, order.action, candle.open_time)

    def _check_stops(self, batch: CandleBatch, step: Step) -> None:
        for symbol in list(self._state.portfolio.positions):
            candle = batch.candles.get(symbol)
            fill = self._broker.check_stops(candle) if candle is not None else None
            if fill is not None:
                self._notifier.stop_triggered(symbol, fill.reason, fill.price)
                self._record(fill, step)

    def _record(self, fill: Fill, step: Step) -> None:
        state = self._state
        trade_id = state.next_trade_id
        state.next_trade_id += 1
        step.trades.append((trade_id, fill))
        step.positions[fill.symbol] = state.portfolio.positions.get(fill.symbol)
        state.risk.record_fill(fill, fill.executed_at)
        assert state.book is not None
        state.book.record(fill)
        if fill.opened_at is None:
            state.truth.record_fill(fill)
        else:
            state.truth.record_exit(fill, fill.opened_at)
        self._notifier.trade_executed(trade_id, fill)

    def _scan(
        self, symbol: str, candle: Candle, strategy: Strategy, value: float, step: Step
    ) -> int:
        """Indicators and the strategy for one symbol; returns 1 when it signalled. A failure
        here is reported and skipped: one bad symbol must not stop the others."""
        try:
            indicators = self._indicators[symbol].update(candle)
            holding = symbol in self._state.portfolio.positions
            signal = strategy.evaluate(symbol, indicators, holding) if indicators else None
        except Exception as exc:
            log.exception("scan of %s failed", symbol)
            self._notifier.system_error(f"scan of {symbol} failed: {exc}")
            return 0
        self._scans[symbol] = Scan(candle, indicators, signal.action if signal else None)
        if signal is None or indicators is None:
            return 0
        self._notifier.signal_generated(symbol, signal.action, signal.confidence)
        rejected = self._act(signal, indicators, value, step.market_time)
        if rejected is not None:
            self._notifier.signal_rejected(symbol, rejected)
        step.signals.append(
            SignalRecord(
                symbol,
                signal.action,
                signal.confidence,
                strategy.version,
                rejected is None,
                rejected,
                step.market_time,
            )
        )
        return 1

    def _act(self, signal: Signal, ind: Indicators, value: float, moment: datetime) -> str | None:
        """Queue the order a signal asks for; returns why it was refused, if it was."""
        state = self._state
        if any(order.symbol == signal.symbol for order in state.pending):
            return "an order for this symbol is already waiting"
        if signal.action != "BUY":  # exits are never held back: they reduce risk
            state.pending.append(PendingOrder(signal.symbol, signal.action, 0.0, ind.atr))
            return None
        notional, refusal = self._entry_notional(signal, value, moment)
        if refusal is None:
            state.pending.append(PendingOrder(signal.symbol, "BUY", notional, ind.atr))
        return refusal

    def _entry_notional(
        self, signal: Signal, value: float, moment: datetime
    ) -> tuple[float, str | None]:
        """How much an entry may spend, or why it may not happen at all."""
        state = self._state
        if signal.confidence < state.params.min_confidence:
            return 0.0, f"low confidence ({signal.confidence:.2f} < {state.params.min_confidence})"
        if state.paused:
            return 0.0, "trading paused"
        portfolio = state.portfolio
        allowed, refusal = state.risk.check_entry(
            signal.symbol,
            self._settings.risk.max_position_pct * value,
            value,
            open_positions=len(portfolio.positions) + state.pending_entries(),
            holding=signal.symbol in portfolio.positions,
            now=moment,
            exposure=portfolio.exposure(signal.symbol, self._marks),
        )
        if refusal is not None:
            return 0.0, refusal
        spendable = portfolio.cash - state.reserved_cash()
        if spendable < state.risk.min_notional:
            return 0.0, "not enough cash"
        return min(allowed, spendable), None

    def _close_day(self, moment: datetime, step: Step) -> None:
        book = self._state.book
        assert book is not None
        closing = book.close(moment, self.value())
        step.daily.append(closing.daily)
        self._state.truth.record_day(closing.daily)
        self._notifier.daily_summary(closing.daily.date.isoformat(), closing.summary)
        if closing.week_start is not None and closing.report is not None:
            self._notifier.weekly_report(closing.week_start.isoformat(), closing.report)

    # --- strategy ---------------------------------------------------------------------------

    async def _strategy(self, moment: datetime) -> Strategy:
        """The active strategy; the first live step deploys the settings' parameters."""
        if self._state.strategy is None:
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
            await self._refresh_strategy_doc()
        return self._state.strategy

    async def _refresh_strategy_doc(self) -> None:
        active = await self._ledger.active_strategy()
        self._strategy_doc = strategy_view(active, await self._ledger.recent_strategies())

    # --- snapshots --------------------------------------------------------------------------

    def snapshot_docs(self, *, status: str) -> dict[SnapshotName, Any]:
        state, marks = self._state, self._marks
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
            SnapshotName.PORTFOLIO: state.portfolio.portfolio_view(marks),
            SnapshotName.POSITIONS: state.portfolio.positions_view(marks),
            SnapshotName.RISK: risk.view(),
            SnapshotName.MARKET: market_view(
                {s: (scan.candle, scan.indicators, scan.signal) for s, scan in self._scans.items()}
            ),
            SnapshotName.STRATEGY: self._strategy_doc,
            SnapshotName.BENCHMARKS: state.truth.view(),
        }

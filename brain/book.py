"""A trading book: one simulated account trading one strategy on a stream of closed candles.

The live account, a paper test's shadow accounts and the optimiser's backtests all run this one
class, so a candidate is judged by exactly the code that would trade it. A book knows nothing of
SQL or snapshots: it records what a step did into a ``Step`` and reports through a ``Notifier``;
the engine commits and publishes the live book's, the others are thrown away.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from brain.broker import PaperBroker
from brain.daybook import DayBook, is_midnight
from brain.engine_state import EngineState, PendingOrder
from brain.indicators import IndicatorState
from brain.ledger import SignalRecord, Step
from brain.models import Candle, CandleBatch, Fill, Indicators, Signal
from brain.notifier import Notifier
from brain.strategy import Strategy
from shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Scan:
    """The last scan of one symbol: its candle, indicators and the signal action it gave."""

    candle: Candle
    indicators: Indicators | None
    signal: str | None


class TradingBook:
    def __init__(self, settings: Settings, state: EngineState, notifier: Notifier) -> None:
        self._settings = settings
        self.state = state
        self._notifier = notifier
        self._broker = PaperBroker(state.portfolio, settings.paper)
        self._indicators = {s: IndicatorState(state.params) for s in settings.market.symbols}
        self.scans: dict[str, Scan] = {}
        self.marks: dict[str, float] = {}

    def value(self) -> float:
        return self.state.portfolio.value(self.marks)

    # --- indicators -------------------------------------------------------------------------

    def warm(self, batch: CandleBatch) -> None:
        """Feed a candle the book has already traded on (a restart re-reading history). Its
        indicators only take candles from ``indicators_from`` on: a restart rebuilds them from
        exactly the candles they were first built from, so it continues bit for bit."""
        since = self.state.indicators_from
        for symbol, candle in batch.candles.items():
            if symbol in self._indicators:
                self.marks[symbol] = candle.close
                if since is None or batch.close_time >= since:
                    indicators = self._indicators[symbol].update(candle)
                    self.scans[symbol] = Scan(candle, indicators, None)

    def adopt(self, strategy: Strategy, history: Sequence[CandleBatch]) -> None:
        """Trade ``strategy`` from now on, its indicators rebuilt from ``history`` (a deploy, a
        rollback, a paper test's start). Open positions and waiting orders stay as they are."""
        self.state.params = strategy.params
        self.state.strategy = strategy
        self.state.indicators_from = history[0].close_time if history else None
        self._indicators = {s: IndicatorState(strategy.params) for s in self._indicators}
        for batch in history:
            self.warm(batch)

    # --- one step ---------------------------------------------------------------------------

    def advance(self, batch: CandleBatch, step: Step) -> None:
        """Trade one batch: fill the orders waiting for this price, check stops and targets,
        scan (indicators, signals, risk), queue orders for the next price, close the day when
        it ends."""
        moment = batch.close_time
        state = self.state
        strategy = state.strategy
        assert strategy is not None, "a book trades only once it has a strategy"
        if state.book is None:
            state.book = DayBook.start(moment, self.value())
        if state.book.ended_before(moment):
            self.close_day(moment, step)
        self._fill_pending(batch, step)
        self._check_stops(batch, step)
        self.marks.update({symbol: c.close for symbol, c in batch.candles.items()})
        value = self.value()
        state.risk.mark(value, moment)
        signal_count = 0
        for symbol, candle in batch.candles.items():
            signal_count += self._scan(symbol, candle, strategy, value, step)
        self._notifier.scan_complete(len(batch.candles), signal_count)
        state.last_scan = moment
        if is_midnight(moment):
            self.close_day(moment, step)

    def exit_all(self, moment: datetime, step: Step) -> list[Fill]:
        """Sell every position now at its last price, and drop waiting entries."""
        fills = []
        for symbol in list(self.state.portfolio.positions):
            price = self.marks.get(symbol)
            fill = self._broker.exit(symbol, price, "CLOSE", moment, "manual") if price else None
            if fill is not None:
                fills.append(fill)
                self._record(fill, step)
        self.state.pending = [o for o in self.state.pending if o.action != "BUY"]
        return fills

    def close_day(self, moment: datetime, step: Step) -> None:
        book = self.state.book
        assert book is not None
        closing = book.close(moment, self.value())
        step.daily.append(closing.daily)
        self.state.truth.record_day(closing.daily)
        self._notifier.daily_summary(closing.daily.date.isoformat(), closing.summary)
        if closing.week_start is not None and closing.report is not None:
            self._notifier.weekly_report(closing.week_start.isoformat(), closing.report)

    def _fill_pending(self, batch: CandleBatch, step: Step) -> None:
        """Orders queued by the last scan fill at this candle's open: the next price."""
        waiting: list[PendingOrder] = []
        for order in self.state.pending:
            candle = batch.candles.get(order.symbol)
            if candle is None:
                waiting.append(order)  # no price for it yet
                continue
            fill = self._fill(order, candle)
            if fill is not None:
                self._record(fill, step)
        self.state.pending = waiting

    def _fill(self, order: PendingOrder, candle: Candle) -> Fill | None:
        strategy = self.state.strategy
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
        for symbol in list(self.state.portfolio.positions):
            candle = batch.candles.get(symbol)
            fill = self._broker.check_stops(candle) if candle is not None else None
            if fill is not None:
                self._notifier.stop_triggered(symbol, fill.reason, fill.price)
                self._record(fill, step)

    def _record(self, fill: Fill, step: Step) -> None:
        state = self.state
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
            holding = symbol in self.state.portfolio.positions
            signal = strategy.evaluate(symbol, indicators, holding) if indicators else None
        except Exception as exc:
            log.exception("scan of %s failed", symbol)
            self._notifier.system_error(f"scan of {symbol} failed: {exc}")
            return 0
        self.scans[symbol] = Scan(candle, indicators, signal.action if signal else None)
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
        state = self.state
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
        state = self.state
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
            exposure=portfolio.exposure(signal.symbol, self.marks),
        )
        if refusal is not None:
            return 0.0, refusal
        spendable = portfolio.cash - state.reserved_cash()
        if spendable < state.risk.min_notional:
            return 0.0, "not enough cash"
        return min(allowed, spendable), None

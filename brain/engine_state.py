"""The engine's resumable state, and how it is saved with each step and loaded at start.

Open positions live in the ``positions`` table; everything else (cash, risk counters, the day's
tally, orders waiting for the next price, the pause flag) in the one ``brain_state`` row. Both
are written in the step's transaction, so what a restart loads always matches the trades.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from brain.daybook import DayBook
from brain.ledger import Ledger
from brain.notifier import Notifier
from brain.portfolio import Portfolio
from brain.risk import RiskManager
from brain.strategy import Strategy, StrategyParams
from brain.truth import TruthBenchmarks
from shared.events import Action
from shared.settings import Settings
from shared.timeutil import parse_iso, to_iso


@dataclass(slots=True)
class PendingOrder:
    """An order the last scan queued, to fill at the symbol's next price."""

    symbol: str
    action: Action
    notional: float  # BUY: the most cash to spend, fee included
    atr: float  # at the signal: sets the stop loss and take profit from the fill price


@dataclass(slots=True)
class EngineState:
    params: StrategyParams
    strategy: Strategy | None
    portfolio: Portfolio
    risk: RiskManager
    truth: TruthBenchmarks
    next_trade_id: int
    checkpoint: datetime | None = None  # market time of the last committed step
    last_scan: datetime | None = None
    book: DayBook | None = None
    pending: list[PendingOrder] = field(default_factory=list)
    paused: bool = False
    # The first candle the indicators were built from (None: the feed's first), so a restart
    # rebuilds them from the same candles after a strategy change.
    indicators_from: datetime | None = None

    # The orchestrator's own state (paper tests, guard rails), as the last step saved it.
    orchestrator: Mapping[str, Any] | None = None

    def pending_entries(self) -> int:
        """New positions already on their way (they take a slot before they fill)."""
        held = self.portfolio.positions
        return sum(1 for o in self.pending if o.action == "BUY" and o.symbol not in held)

    def reserved_cash(self) -> float:
        return sum(order.notional for order in self.pending if order.action == "BUY")

    def to_dict(self, *, positions: bool = False) -> dict[str, Any]:
        """The state to save; the live book's positions live in their own table, so only a
        shadow book (a paper test's) keeps them here."""
        portfolio = self.portfolio.to_dict()
        if not positions:
            del portfolio["positions"]
        return {
            "portfolio": portfolio,
            "risk": self.risk.to_dict(),
            "truth": self.truth.to_dict(),
            "book": self.book.to_dict() if self.book else None,
            "pending": [asdict(order) for order in self.pending],
            "paused": self.paused,
            "indicators_from": to_iso(self.indicators_from) if self.indicators_from else None,
            "last_scan": to_iso(self.last_scan) if self.last_scan else None,
        }

    @classmethod
    def fresh(
        cls,
        settings: Settings,
        notifier: Notifier,
        params: StrategyParams,
        strategy: Strategy | None,
        next_trade_id: int = 1,
    ) -> EngineState:
        """A new paper account with the settings' starting cash."""
        cash = settings.paper.starting_cash
        risk = RiskManager(
            settings.risk, cash, on_halt=notifier.risk_halt, on_resume=notifier.risk_resumed
        )
        return cls(params, strategy, Portfolio(cash), risk, TruthBenchmarks(cash), next_trade_id)

    @classmethod
    def from_dict(
        cls,
        saved: Mapping[str, Any],
        settings: Settings,
        notifier: Notifier,
        strategy: Strategy,
        *,
        next_trade_id: int,
        checkpoint: datetime | None = None,
    ) -> EngineState:
        """The state ``to_dict`` saved (with its positions, or with them filled in)."""
        risk = RiskManager.from_dict(
            saved["risk"],
            settings.risk,
            on_halt=notifier.risk_halt,
            on_resume=notifier.risk_resumed,
        )
        return cls(
            strategy.params,
            strategy,
            Portfolio.from_dict(saved["portfolio"]),
            risk,
            TruthBenchmarks.from_dict(saved["truth"]),
            next_trade_id,
            checkpoint=checkpoint,
            last_scan=parse_iso(saved["last_scan"]) if saved["last_scan"] else None,
            book=DayBook.from_dict(saved["book"]) if saved["book"] else None,
            pending=[PendingOrder(**order) for order in saved["pending"]],
            paused=bool(saved["paused"]),
            indicators_from=parse_iso(since) if (since := saved.get("indicators_from")) else None,
            orchestrator=saved.get("orchestrator"),
        )

    @classmethod
    async def load(cls, ledger: Ledger, settings: Settings, notifier: Notifier) -> EngineState:
        """The state the last committed step left, or a fresh paper account."""
        active = await ledger.active_strategy()
        recovered = await ledger.recover()
        if active is None or recovered is None:
            # A version may exist with no step committed after it: trade it from the start.
            strategy = None
            if active is not None:
                strategy = Strategy(StrategyParams.from_dict(active.parameters), active.version)
            params = (
                strategy.params if strategy else StrategyParams.from_settings(settings.strategy)
            )
            return cls.fresh(settings, notifier, params, strategy, await ledger.next_trade_id())
        saved = recovered.state
        portfolio = {**saved["portfolio"], "positions": [_position(r) for r in recovered.positions]}
        return cls.from_dict(
            {**saved, "portfolio": portfolio},
            settings,
            notifier,
            Strategy(StrategyParams.from_dict(active.parameters), active.version),
            next_trade_id=recovered.next_trade_id,
            checkpoint=recovered.market_time,
        )


def _position(row: Any) -> Mapping[str, Any]:
    return {
        "symbol": row.symbol,
        "qty": row.qty,
        "entry_price": row.entry_price,
        "cost": row.cost,
        "stop_loss": row.stop_loss,
        "take_profit": row.take_profit,
        "opened_at": to_iso(row.opened_at),
        "strategy_version": row.strategy_version,
    }

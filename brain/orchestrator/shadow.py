"""A paper test: the candidate and the active version, each trading its own simulated account
in shadow on the live prices. Neither places an order of the live book; what they do is judged
at the end, the candidate against the active version over exactly the same period."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from brain.book import TradingBook
from brain.engine_state import EngineState
from brain.ledger import Step
from brain.models import CandleBatch
from brain.notifier import Notifier
from brain.strategy import Strategy, StrategyParams
from shared.settings import Settings
from shared.timeutil import parse_iso, to_iso


class ShadowBook:
    """A fresh paper account trading one strategy, with its value's peak and deepest drawdown.
    Its events are dropped: a shadow trade is nobody's business but the paper test's."""

    def __init__(
        self,
        settings: Settings,
        notifier: Notifier,  # the one the state's risk manager reports to
        state: EngineState,
        peak: float,
        max_drawdown: float,
    ) -> None:
        self._notifier = notifier
        self._settings = settings
        self.book = TradingBook(settings, state, notifier)
        self.peak = peak
        self.max_drawdown = max_drawdown  # fraction of the peak

    @classmethod
    def fresh(
        cls, settings: Settings, strategy: Strategy, history: Sequence[CandleBatch]
    ) -> ShadowBook:
        notifier = Notifier()
        state = EngineState.fresh(settings, notifier, strategy.params, strategy)
        shadow = cls(settings, notifier, state, settings.paper.starting_cash, 0.0)
        shadow.book.adopt(strategy, history)
        return shadow

    def advance(self, batch: CandleBatch) -> None:
        self.book.advance(batch, Step(batch.close_time, {}))
        self._notifier.take()
        value = self.book.value()
        self.peak = max(self.peak, value)
        self.max_drawdown = max(self.max_drawdown, 1.0 - value / self.peak)

    def metrics(self) -> dict[str, Any]:
        truth = self.book.state.truth.view()
        start = self._settings.paper.starting_cash
        value = self.book.value()
        return {
            "return_pct": round((value / start - 1.0) * 100.0, 4),
            "pnl": round(value - start, 8),
            "trades": truth["total_trades"],
            "win_rate": truth["win_rate"],
            "fees": truth["total_fees"],
            "max_drawdown": round(self.max_drawdown, 6),
        }

    def to_dict(self) -> dict[str, Any]:
        strategy = self.book.state.strategy
        assert strategy is not None
        return {
            "version": strategy.version,
            "params": strategy.params.to_dict(),
            "state": self.book.state.to_dict(positions=True),
            "peak": self.peak,
            "max_drawdown": self.max_drawdown,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], settings: Settings) -> ShadowBook:
        strategy = Strategy(StrategyParams.from_dict(data["params"]), data["version"])
        notifier = Notifier()
        state = EngineState.from_dict(data["state"], settings, notifier, strategy, next_trade_id=1)
        return cls(settings, notifier, state, float(data["peak"]), float(data["max_drawdown"]))


@dataclass(slots=True)
class PaperTest:
    version: str
    tier: int
    days: int
    started_at: datetime
    ends_at: datetime
    candidate: ShadowBook
    baseline: ShadowBook  # the active version when the test began

    @classmethod
    def start(
        cls,
        settings: Settings,
        candidate: Strategy,
        baseline: Strategy,
        history: list[CandleBatch],
        *,
        tier: int,
        days: int,
        at: datetime,
    ) -> PaperTest:
        return cls(
            candidate.version,
            tier,
            days,
            at,
            at + timedelta(days=days),
            ShadowBook.fresh(settings, candidate, history),
            ShadowBook.fresh(settings, baseline, history),
        )

    def warm(self, batch: CandleBatch) -> None:
        self.candidate.book.warm(batch)
        self.baseline.book.warm(batch)

    def advance(self, batch: CandleBatch) -> None:
        self.candidate.advance(batch)
        self.baseline.advance(batch)

    def judge(self, min_edge_pct: float, min_trades: int) -> tuple[bool, dict[str, Any]]:
        """Passed when the candidate closed at least ``min_trades`` trades and beat the active
        version's return by at least ``min_edge_pct`` points; the results say why."""
        candidate, baseline = self.candidate.metrics(), self.baseline.metrics()
        edge = round(candidate["return_pct"] - baseline["return_pct"], 4)
        enough = candidate["trades"] >= min_trades
        passed = enough and edge >= min_edge_pct
        if not enough:
            reason = f"{candidate['trades']} closed trades, fewer than {min_trades}"
        elif passed:
            reason = f"beat the active version by {edge:+.4f} return points"
        else:
            reason = f"trailed the active version by {edge:+.4f} return points"
        results = {
            "candidate": candidate,
            "active": {"version": self.baseline_version, **baseline},
            "edge_pct": edge,
            "reason": reason,
        }
        return passed, results

    @property
    def baseline_version(self) -> str:
        strategy = self.baseline.book.state.strategy
        assert strategy is not None
        return strategy.version

    def view(self) -> dict[str, Any]:
        """The running test for /v1/strategy: when it ends and how both sides are doing."""
        return {
            "version": self.version,
            "status": "running",
            "risk_tier": self.tier,
            "days": self.days,
            "started_at": to_iso(self.started_at),
            "ends_at": to_iso(self.ends_at),
            "candidate": self.candidate.metrics(),
            "active": {"version": self.baseline_version, **self.baseline.metrics()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "tier": self.tier,
            "days": self.days,
            "started_at": to_iso(self.started_at),
            "ends_at": to_iso(self.ends_at),
            "candidate": self.candidate.to_dict(),
            "baseline": self.baseline.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], settings: Settings) -> PaperTest:
        return cls(
            data["version"],
            int(data["tier"]),
            int(data["days"]),
            parse_iso(data["started_at"]),
            parse_iso(data["ends_at"]),
            ShadowBook.from_dict(data["candidate"], settings),
            ShadowBook.from_dict(data["baseline"], settings),
        )

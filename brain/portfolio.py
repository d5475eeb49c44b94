"""The paper account: cash and long-only spot positions, with the API's views of them.

Accounting (every amount in the quote currency, USDT):

* A position's ``cost`` is all the cash its entries took, entry fees included; its
  ``entry_price`` is the fee-free average fill price.
* An exit closes the whole position: ``pnl = qty * price - fee - cost`` (both sides' fees
  inside), ``pnl_pct = pnl / cost * 100``.
* Unrealized pnl is ``qty * mark - cost``: the entry fees already paid are in it, the exit fee
  not yet paid is not. Then ``value == starting_cash + realized_pnl + unrealized_pnl`` always,
  and a position shows its entry costs (fee, slippage) as a loss from the moment it opens.

Invariants (to float tolerance): ``cash + Σ cost == starting_cash + realized_pnl``;
``realized_pnl == Σ pnl of exit fills``; ``fees_paid == Σ fee of all fills``; cash >= 0.
State keeps full float precision; only the views round, for display.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from brain.models import Fill
from shared.events import Action
from shared.timeutil import parse_iso, to_iso, to_utc

_MONEY_DECIMALS = 8
_PCT_DECIMALS = 4
_SIGNIFICANT = 12  # prices and quantities span 1e-8 (SHIB) to 1e5 (BTC): round relatively


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: float
    entry_price: float  # average fill price, fees excluded
    cost: float  # cash paid for the position in total, entry fees included
    stop_loss: float | None
    take_profit: float | None
    opened_at: datetime  # the first entry
    strategy_version: str  # the newest entry's version: it set the current stop and target

    def mark_value(self, mark: float | None = None) -> float:
        return self.qty * (self.entry_price if mark is None else mark)

    def unrealized_pnl(self, mark: float | None = None) -> float:
        return self.mark_value(mark) - self.cost


class Portfolio:
    """Cash plus open positions; every change goes through ``apply_buy``/``apply_exit``."""

    def __init__(self, starting_cash: float) -> None:
        _require(starting_cash >= 0, f"starting cash must be >= 0, got {starting_cash}")
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.positions: dict[str, Position] = {}
        self.realized_pnl = 0.0
        self.fees_paid = 0.0

    def apply_buy(
        self,
        symbol: str,
        qty: float,
        price: float,
        fee: float,
        *,
        stop_loss: float | None,
        take_profit: float | None,
        at: datetime,
        strategy_version: str,
        reason: str,
    ) -> Fill:
        """Open or add to ``symbol``. Raises ValueError when the cash does not cover it."""
        _require(qty > 0 and math.isfinite(qty), f"qty must be > 0, got {qty}")
        _require(price > 0 and math.isfinite(price), f"price must be > 0, got {price}")
        _require(fee >= 0 and math.isfinite(fee), f"fee must be >= 0, got {fee}")
        spend = qty * price + fee
        _require(spend <= self.cash, f"{symbol}: buying needs {spend} but cash is {self.cash}")
        at = to_utc(at)
        held = self.positions.get(symbol)
        if held is None:
            position = Position(
                symbol, qty, price, spend, stop_loss, take_profit, at, strategy_version
            )
        else:
            total_qty = held.qty + qty
            position = dataclasses.replace(
                held,
                qty=total_qty,
                entry_price=(held.qty * held.entry_price + qty * price) / total_qty,
                cost=held.cost + spend,
                stop_loss=stop_loss,  # the newest entry's levels govern the whole position
                take_profit=take_profit,
                strategy_version=strategy_version,
            )
        self.positions[symbol] = position
        self.cash -= spend
        self.fees_paid += fee
        return Fill(symbol, "BUY", qty, price, fee, None, None, strategy_version, at, reason)

    def apply_exit(
        self, symbol: str, price: float, fee: float, *, action: Action, at: datetime, reason: str
    ) -> Fill:
        """Close the whole position in ``symbol``. Raises ValueError when not holding it."""
        _require(action in ("SELL", "CLOSE"), f"an exit is SELL or CLOSE, not {action}")
        _require(symbol in self.positions, f"not holding {symbol}")
        _require(price > 0 and math.isfinite(price), f"price must be > 0, got {price}")
        position = self.positions[symbol]
        gross = position.qty * price
        _require(0 <= fee <= gross, f"fee must be in [0, {gross}], got {fee}")
        del self.positions[symbol]
        proceeds = gross - fee
        pnl = proceeds - position.cost
        self.cash += proceeds
        self.realized_pnl += pnl
        self.fees_paid += fee
        pnl_pct = _percent_of(pnl, position.cost)
        return Fill(
            symbol,
            action,
            position.qty,
            price,
            fee,
            pnl,
            pnl_pct,
            position.strategy_version,
            to_utc(at),
            reason,
            position.opened_at,
        )

    # --- valuation ----------------------------------------------------------------------------

    def value(self, marks: Mapping[str, float]) -> float:
        """Cash plus every position at its mark (its entry price when it has none)."""
        return self.cash + sum(p.mark_value(marks.get(s)) for s, p in self.positions.items())

    def unrealized_pnl(self, marks: Mapping[str, float]) -> float:
        return sum(p.unrealized_pnl(marks.get(s)) for s, p in self.positions.items())

    def exposure(self, symbol: str, marks: Mapping[str, float]) -> float:
        """The market value held in ``symbol`` (0 when flat): what counts against a size cap."""
        held = self.positions.get(symbol)
        return 0.0 if held is None else held.mark_value(marks.get(symbol))

    # --- the API's views (plan: /v1/portfolio, /v1/positions) ---------------------------------

    def portfolio_view(self, marks: Mapping[str, float]) -> dict[str, Any]:
        total = self.value(marks)
        # All value in positions would be total - cash; a zero total (nothing left) is all cash.
        cash_pct = self.cash / total * 100 if total > 0 else 100.0
        return {
            "total_value": _money(total),
            "cash": _money(self.cash),
            "unrealized_pnl": _money(self.unrealized_pnl(marks)),
            "position_count": len(self.positions),
            "allocation": {
                "cash_pct": _pct(cash_pct),
                "positions_pct": _pct(100.0 - cash_pct),
            },
            "realized_pnl": _money(self.realized_pnl),
            "starting_cash": _money(self.starting_cash),
        }

    def positions_view(self, marks: Mapping[str, float]) -> list[dict[str, Any]]:
        views = []
        for position in sorted(self.positions.values(), key=lambda p: (p.opened_at, p.symbol)):
            mark = marks.get(position.symbol, position.entry_price)
            unrealized = position.unrealized_pnl(mark)
            views.append(
                {
                    "symbol": position.symbol,
                    "qty": _sig(position.qty),
                    "entry_price": _sig(position.entry_price),
                    "current_price": _sig(mark),
                    "unrealized_pnl": _money(unrealized),
                    "unrealized_pnl_pct": _pct(_percent_of(unrealized, position.cost)),
                    "stop_loss": _opt_sig(position.stop_loss),
                    "take_profit": _opt_sig(position.take_profit),
                    "opened_at": to_iso(position.opened_at),
                }
            )
        return views

    # --- crash recovery ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state; floats unrounded so ``from_dict`` restores it exactly."""
        return {
            "starting_cash": self.starting_cash,
            "cash": self.cash,
            "realized_pnl": self.realized_pnl,
            "fees_paid": self.fees_paid,
            "positions": [
                {
                    "symbol": p.symbol,
                    "qty": p.qty,
                    "entry_price": p.entry_price,
                    "cost": p.cost,
                    "stop_loss": p.stop_loss,
                    "take_profit": p.take_profit,
                    "opened_at": to_iso(p.opened_at),
                    "strategy_version": p.strategy_version,
                }
                for p in self.positions.values()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Portfolio:
        portfolio = cls(float(data["starting_cash"]))
        portfolio.cash = float(data["cash"])
        portfolio.realized_pnl = float(data["realized_pnl"])
        portfolio.fees_paid = float(data["fees_paid"])
        for raw in data["positions"]:
            position = Position(
                symbol=str(raw["symbol"]),
                qty=float(raw["qty"]),
                entry_price=float(raw["entry_price"]),
                cost=float(raw["cost"]),
                stop_loss=_opt_float(raw["stop_loss"]),
                take_profit=_opt_float(raw["take_profit"]),
                opened_at=parse_iso(raw["opened_at"]),
                strategy_version=str(raw["strategy_version"]),
            )
            portfolio.positions[position.symbol] = position
        return portfolio


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _percent_of(amount: float, base: float) -> float:
    return amount / base * 100 if base > 0 else 0.0


def _money(amount: float) -> float:
    return round(amount, _MONEY_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _pct(percent: float) -> float:
    return round(percent, _PCT_DECIMALS) + 0.0


def _sig(number: float) -> float:
    return float(f"{number:.{_SIGNIFICANT}g}")


def _opt_sig(number: float | None) -> float | None:
    return None if number is None else _sig(number)


def _opt_float(raw: Any) -> float | None:
    return None if raw is None else float(raw)

"""The paper broker: market orders, stop losses and take profits filled against a Portfolio.

Fill model (spot, long only):

* Market orders fill at the price the engine passes (in replay the next candle's open) moved
  against the trader by ``slippage``: buys at ``price * (1 + slippage)``, sells at
  ``price * (1 - slippage)``. The fee is ``fill value * fee_rate``.
* A stop loss is a stop-market order: it fills at the stop level, or at the open when the
  candle gaps through it, and pays slippage like any market order.
* A take profit is a resting limit order: it fills at its level, or at the open when the candle
  gaps up through it (the better price), without slippage, as a limit order would.
* Within one candle the order of highs and lows is unknown, so the stop is assumed first
  (conservative): a candle that reaches both the stop and the target exits at the stop.
"""

from __future__ import annotations

import math
from datetime import datetime

from brain.models import Candle, Fill
from brain.portfolio import Portfolio
from shared.events import Action
from shared.settings import PaperSettings

# A notional this close above the cash (float noise from the caller's arithmetic) is all-in.
_CASH_TOLERANCE = 1e-9
_FIT_STEPS = 64


class PaperBroker:
    def __init__(self, portfolio: Portfolio, settings: PaperSettings) -> None:
        self.portfolio = portfolio
        self._fee_rate = settings.fee_rate
        self._slippage = settings.slippage

    def buy(
        self,
        symbol: str,
        notional: float,
        price: float,
        *,
        stop_loss: float | None,
        take_profit: float | None,
        at: datetime,
        strategy_version: str,
        reason: str = "signal",
    ) -> Fill | None:
        """Spend at most ``notional`` (fee included) on ``symbol``; None when cash won't cover
        it or the quantity comes to nothing."""
        cash = self.portfolio.cash
        if not (notional > 0 and price > 0) or notional > cash * (1 + _CASH_TOLERANCE):
            return None
        budget = min(notional, cash)
        fill_price = price * (1 + self._slippage)
        qty = self._fit(budget / (fill_price * (1 + self._fee_rate)), fill_price, budget)
        if qty <= 0:
            return None
        return self.portfolio.apply_buy(
            symbol,
            qty,
            fill_price,
            qty * fill_price * self._fee_rate,
            stop_loss=stop_loss,
            take_profit=take_profit,
            at=at,
            strategy_version=strategy_version,
            reason=reason,
        )

    def exit(
        self, symbol: str, price: float, action: Action, at: datetime, reason: str = "signal"
    ) -> Fill | None:
        """Sell the whole position in ``symbol`` at market; None when not holding it."""
        if symbol not in self.portfolio.positions or not price > 0:
            return None
        return self._sell(symbol, price * (1 - self._slippage), action, at, reason)

    def check_stops(self, candle: Candle) -> Fill | None:
        """Close the position in ``candle.symbol`` when the candle reached its stop loss or take
        profit. The fill is dated at the candle's close, when the brain learns of it."""
        position = self.portfolio.positions.get(candle.symbol)
        if position is None:
            return None
        stop, target = position.stop_loss, position.take_profit
        at = candle.close_time
        if stop is not None and min(candle.open, candle.low) <= stop:
            level = candle.open if candle.open <= stop else stop  # a gap down fills at the open
            return self._sell(candle.symbol, level * (1 - self._slippage), "CLOSE", at, "stop_loss")
        if target is not None and max(candle.open, candle.high) >= target:
            level = candle.open if candle.open >= target else target  # a gap up: the better open
            return self._sell(candle.symbol, level, "CLOSE", at, "take_profit")
        return None

    def _sell(
        self, symbol: str, fill_price: float, action: Action, at: datetime, reason: str
    ) -> Fill:
        qty = self.portfolio.positions[symbol].qty
        fee = qty * fill_price * self._fee_rate
        return self.portfolio.apply_exit(
            symbol, fill_price, fee, action=action, at=at, reason=reason
        )

    def _fit(self, qty: float, fill_price: float, budget: float) -> float:
        """Trim ``qty`` by a few ulps when rounding made its cost a hair above the budget, so the
        spend never exceeds the notional nor the cash."""
        for _ in range(_FIT_STEPS):
            if qty <= 0 or qty * fill_price + qty * fill_price * self._fee_rate <= budget:
                return qty
            qty = math.nextafter(qty, 0.0)
        return 0.0

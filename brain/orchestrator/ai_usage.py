"""What the AI strategist spends: one ``ai_calls`` row per call, and the daily token budget.

A day is a wall-clock UTC day, also in a replay: the market clock may run weeks ahead in an
hour, but the money is spent in real time, so callers pass the wall clock's ``now``. Cost comes
from the ``[ai] prices`` table (USD per million tokens); a model missing there is recorded at
zero cost, with one warning per model, rather than refusing to record tokens that were spent.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.tables import ai_calls
from shared.settings import AiSettings, ModelPrice
from shared.timeutil import to_utc

log = logging.getLogger(__name__)

_PER_MILLION = 1_000_000
_COST_DIGITS = 6  # a millionth of a dollar: finer than any price in the table


class AiUsage:
    """Records AI calls in the SQL history and answers how much of today's budget is left."""

    def __init__(self, engine: AsyncEngine, settings: AiSettings) -> None:
        self._engine = engine
        self._settings = settings
        self._prices: dict[str, ModelPrice] = {price.model: price for price in settings.prices}
        self._unpriced_warned: set[str] = set()

    @property
    def budget_tokens(self) -> int:
        return self._settings.daily_token_budget

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """USD for one call from the price table; 0.0 (and a warning once) for an unknown model."""
        price = self._prices.get(model)
        if price is None:
            if model not in self._unpriced_warned:
                self._unpriced_warned.add(model)
                log.warning("no price for AI model %r in [ai] prices: recording it at zero", model)
            return 0.0
        usd = (input_tokens * price.input + output_tokens * price.output) / _PER_MILLION
        return round(usd, _COST_DIGITS)

    async def record(
        self,
        *,
        model: str,
        purpose: str,
        input_tokens: int,
        output_tokens: int,
        called_at: datetime,
    ) -> float:
        """Insert one ``ai_calls`` row in a transaction of its own; the call's cost in USD."""
        cost = self.cost(model, input_tokens, output_tokens)
        async with self._engine.begin() as conn:
            await conn.execute(
                ai_calls.insert().values(
                    called_at=to_utc(called_at),
                    model=model,
                    purpose=purpose,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cost_usd=cost,
                )
            )
        return cost

    async def tokens_on(self, day: date) -> int:
        """Input plus output tokens of the calls made on the UTC day ``day``."""
        start, end = _day_bounds(day)
        spent = func.coalesce(func.sum(ai_calls.c.input_tokens + ai_calls.c.output_tokens), 0)
        query = select(spent).where(ai_calls.c.called_at >= start, ai_calls.c.called_at < end)
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def remaining_on(self, day: date) -> int:
        """Tokens of the daily budget not yet spent on ``day`` (never below zero)."""
        return max(0, self.budget_tokens - await self.tokens_on(day))

    async def view(self, now: datetime) -> dict[str, Any]:
        """The ``/v1/ai/usage`` document for the wall-clock UTC day of ``now``."""
        day = to_utc(now).date()
        start, end = _day_bounds(day)
        c = ai_calls.c
        query = (
            select(
                c.model,
                func.count().label("calls"),
                func.sum(c.input_tokens + c.output_tokens).label("tokens"),
                func.sum(c.cost_usd).label("cost_usd"),
            )
            .where(c.called_at >= start, c.called_at < end)
            .group_by(c.model)
            .order_by(c.model)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        by_model: dict[str, dict[str, Any]] = {
            row.model: {
                "calls": int(row.calls),
                "tokens": int(row.tokens),
                "cost_usd": round(float(row.cost_usd), _COST_DIGITS),
            }
            for row in rows
        }
        total_tokens = sum(int(row.tokens) for row in rows)
        total_cost = sum(float(row.cost_usd) for row in rows)
        return {
            "today": {
                "date": day.isoformat(),
                "total_tokens": total_tokens,
                "total_cost_usd": round(total_cost, _COST_DIGITS),
                "by_model": by_model,
                "budget_tokens": self.budget_tokens,
                "budget_remaining": max(0, self.budget_tokens - total_tokens),
            }
        }


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00Z of ``day``, 00:00Z of the next day): the calls that count for it."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)

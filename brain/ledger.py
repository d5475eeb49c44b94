"""The brain's SQL side: each step's trades, signals, positions, daily row, resumable state and
events, committed in ONE transaction, and what a restart needs to resume.

One transaction per step is the unit of crash consistency: a trade and its event exist
together or not at all, and the state a restart loads is exactly the one that matches them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Executable, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from brain.models import Fill
from brain.portfolio import Position
from shared.db import tables
from shared.outbox import NewEvent, add_timed_events
from shared.timeutil import utc_now


@dataclass(frozen=True, slots=True)
class SignalRecord:
    symbol: str
    action: str
    confidence: float
    strategy_version: str
    executed: bool
    rejected_reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DailyRecord:
    date: date
    portfolio_value: float
    daily_pnl: float
    daily_pnl_pct: float  # percent
    trade_count: int
    win_count: int
    loss_count: int
    fees: float


@dataclass(slots=True)
class Step:
    """Everything one step changed, to be committed together."""

    market_time: datetime
    state: dict[str, Any] | None  # None: a unit of events only (start, stop, feed lost)
    trades: list[tuple[int, Fill]] = field(default_factory=list)
    signals: list[SignalRecord] = field(default_factory=list)
    positions: dict[str, Position | None] = field(default_factory=dict)  # None: closed
    daily: list[DailyRecord] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    # Other changes that must commit with the step (the nightly cycle's version and paper test
    # rows), run in order after the step's own rows.
    statements: list[Executable] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Recovered:
    """What the last committed step left: the state to resume from."""

    market_time: datetime
    state: dict[str, Any]
    positions: list[Any]  # rows of tables.positions
    next_trade_id: int


class Ledger:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def recover(self) -> Recovered | None:
        """The state of the last committed step, or None on a fresh database."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(tables.brain_state))).one_or_none()
            if row is None:
                return None
            positions = (await conn.execute(select(tables.positions))).all()
            next_id = await _next_trade_id(conn)
        return Recovered(row.market_time, dict(row.state), list(positions), next_id)

    async def next_trade_id(self) -> int:
        async with self._engine.connect() as conn:
            return await _next_trade_id(conn)

    async def commit(self, steps: Sequence[Step]) -> None:
        """Commit steps, in order, in one transaction. Rows of a kind go in one statement, and
        only the newest state is written: the ones before it would be overwritten anyway."""
        async with self._engine.begin() as conn:
            trades = [_trade_row(i, fill) for step in steps for i, fill in step.trades]
            if trades:
                await conn.execute(insert(tables.trades), trades)
            signals = [_fields(signal) for step in steps for signal in step.signals]
            if signals:
                await conn.execute(insert(tables.signals), signals)
            for step in steps:
                for symbol, position in step.positions.items():
                    await _write_position(conn, symbol, position)
                for daily in step.daily:
                    await _upsert(conn, tables.daily_performance, _fields(daily), ["date"])
            stateful = [step for step in steps if step.state is not None]
            if stateful:
                newest = stateful[-1]
                state_row = {
                    "id": 1,
                    "market_time": newest.market_time,
                    "state": newest.state,
                    "updated_at": utc_now(),
                }
                await _upsert(conn, tables.brain_state, state_row, ["id"])
            for statement in (s for step in steps for s in step.statements):
                await conn.execute(statement)
            events = [(s.market_time, name, data) for s in steps for name, data in s.events]
            await add_timed_events(conn, events)

    async def active_strategy(self) -> Any | None:
        async with self._engine.connect() as conn:
            query = select(tables.strategy_versions).where(
                tables.strategy_versions.c.status == "active"
            )
            return (await conn.execute(query)).first()

    async def add_strategy_version(self, values: Mapping[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(tables.strategy_versions)
                .where(tables.strategy_versions.c.status == "active")
                .values(status="retired", retired_at=values["deployed_at"])
            )
            await conn.execute(insert(tables.strategy_versions).values(**values))

    async def recent_strategies(self, limit: int = 10) -> list[Any]:
        async with self._engine.connect() as conn:
            query = (
                select(tables.strategy_versions)
                .order_by(tables.strategy_versions.c.created_at.desc())
                .limit(limit)
            )
            return list((await conn.execute(query)).all())

    async def wipe(self) -> None:
        """Delete the paper account and all history (``tradingbrain reset``)."""
        async with self._engine.begin() as conn:
            for table in reversed(tables.metadata.sorted_tables):
                await conn.execute(delete(table))


async def _next_trade_id(conn: AsyncConnection) -> int:
    """Trade ids are assigned by the brain (the single writer), so events can carry them."""
    last = (await conn.execute(select(func.max(tables.trades.c.id)))).scalar()
    return int(last or 0) + 1


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def _trade_row(trade_id: int, fill: Fill) -> dict[str, Any]:
    return {"id": trade_id, **fill.trade_fields(), "executed_at": fill.executed_at}


async def _write_position(conn: AsyncConnection, symbol: str, position: Position | None) -> None:
    await conn.execute(delete(tables.positions).where(tables.positions.c.symbol == symbol))
    if position is not None:
        await conn.execute(
            insert(tables.positions).values(
                symbol=position.symbol,
                qty=position.qty,
                entry_price=position.entry_price,
                cost=position.cost,
                stop_loss=position.stop_loss,
                take_profit=position.take_profit,
                opened_at=position.opened_at,
                strategy_version=position.strategy_version,
            )
        )


async def _upsert(
    conn: AsyncConnection, table: Any, values: dict[str, Any], keys: list[str]
) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    changes = {name: statement.excluded[name] for name in values if name not in keys}
    await conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes))

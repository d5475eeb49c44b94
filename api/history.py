"""The SQL history the API serves: trades, signals and daily performance, read-only.

Lists are newest first with keyset pagination: a page asks for one row more than its limit,
and when that row exists the last row served becomes the cursor. Every query follows an index
of ``shared.db.tables`` (time, symbol + time, action + time). Database failures become
``brain_unavailable`` (the details go to the log, never to the client).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Select, and_, or_, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import brain_unavailable
from api.history_cache import DEFAULT_ENTRIES, DataVersion, EncodedList, ListCache
from api.params import Cursor, HistoryQuery, PerformanceQuery
from shared import jsonutil
from shared.db.tables import daily_performance, signals, trades

log = logging.getLogger(__name__)

TRADE_COLUMNS = (
    trades.c.id,
    trades.c.symbol,
    trades.c.action,
    trades.c.qty,
    trades.c.price,
    trades.c.fee,
    trades.c.pnl,
    trades.c.pnl_pct,
    trades.c.strategy_version,
    trades.c.executed_at,
)
SIGNAL_COLUMNS = (
    signals.c.id,
    signals.c.symbol,
    signals.c.action,
    signals.c.confidence,
    signals.c.strategy_version,
    signals.c.executed,
    signals.c.rejected_reason,
    signals.c.created_at,
)
PERFORMANCE_COLUMNS = (
    daily_performance.c.date,
    daily_performance.c.portfolio_value,
    daily_performance.c.daily_pnl,
    daily_performance.c.daily_pnl_pct,
    daily_performance.c.trade_count,
    daily_performance.c.win_count,
    daily_performance.c.loss_count,
    daily_performance.c.fees,
)

# What "the database is not there" looks like: the driver's errors as SQLAlchemy wraps them
# (a missing file or table included: a database not migrated yet), a pool that has no
# connection to give, and the OSError of a refused connection a driver may raise unwrapped.
_UNAVAILABLE = (DBAPIError, PoolTimeoutError, OSError, TimeoutError)


def _older_than(when: Column[Any], row_id: Column[Any], cursor: Cursor) -> ColumnElement[bool]:
    # "when <= cursor" alone lets the database use the time index; the OR settles the ties.
    return and_(
        when <= cursor.moment,
        or_(when < cursor.moment, and_(when == cursor.moment, row_id < cursor.id)),
    )


@dataclass(frozen=True, slots=True)
class _Listing:
    """A newest-first list: its columns, sort key (time, id) and filter columns."""

    name: str
    columns: tuple[Column[Any], ...]
    when: Column[Any]
    row_id: Column[Any]
    symbol: Column[Any]
    action: Column[Any] | None


TRADES = _Listing("trades", TRADE_COLUMNS, trades.c.executed_at, trades.c.id, trades.c.symbol, None)
SIGNALS = _Listing(
    "signals",
    SIGNAL_COLUMNS,
    signals.c.created_at,
    signals.c.id,
    signals.c.symbol,
    signals.c.action,
)


class HistoryReader:
    """Read-only queries on the SQL history, each bounded by a timeout, answered as encoded
    JSON lists and reused while the database has not changed (``api.history_cache``)."""

    def __init__(
        self, engine: AsyncEngine, *, timeout: float, cache_entries: int = DEFAULT_ENTRIES
    ) -> None:
        self._engine = engine
        self._timeout = timeout
        self._version = DataVersion(engine)
        self._cache = ListCache(cache_entries)

    async def trades(self, query: HistoryQuery) -> EncodedList:
        return await self._cached(("trades", query), lambda: self._page(TRADES, query))

    async def signals(self, query: HistoryQuery) -> EncodedList:
        return await self._cached(("signals", query), lambda: self._page(SIGNALS, query))

    async def performance(self, query: PerformanceQuery) -> EncodedList:
        return await self._cached(("performance", query), lambda: self._days(query))

    async def ping(self) -> None:
        """Raise ApiError(brain_unavailable) unless the database answers."""
        async with self._guard("ping"), self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self._version.close()

    async def _cached(
        self, key: Hashable, load: Callable[[], Awaitable[EncodedList]]
    ) -> EncodedList:
        # The version is read before the rows: a commit in between only costs a miss later.
        try:
            async with asyncio.timeout(self._timeout):
                version = await self._version.current()
        except TimeoutError:
            version = None  # no cache this time; the query below says what is wrong
        found = self._cache.get(key, version)
        if found is None:
            found = await load()
            self._cache.put(key, version, found)
        return found

    async def _days(self, query: PerformanceQuery) -> EncodedList:
        table = daily_performance
        statement = select(*PERFORMANCE_COLUMNS).order_by(table.c.date.desc())
        if query.since is not None:
            statement = statement.where(table.c.date >= query.since)
        if query.until is not None:
            statement = statement.where(table.c.date <= query.until)
        rows = await self._fetch(statement, "daily performance")
        return EncodedList(jsonutil.dumps(rows), None, paged=False)

    async def _page(self, listing: _Listing, query: HistoryQuery) -> EncodedList:
        when, row_id = listing.when, listing.row_id
        statement = select(*listing.columns)
        if query.since is not None:
            statement = statement.where(when >= query.since)
        if query.until is not None:
            statement = statement.where(when <= query.until)
        if query.symbol is not None:
            statement = statement.where(listing.symbol == query.symbol)
        if listing.action is not None and query.action is not None:
            statement = statement.where(listing.action == query.action)
        if query.cursor is not None:
            statement = statement.where(_older_than(when, row_id, query.cursor))
        statement = statement.order_by(when.desc(), row_id.desc()).limit(query.limit + 1)
        rows = await self._fetch(statement, listing.name)
        cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            last = rows[-1]
            cursor = Cursor(last[when.name], last[row_id.name]).encode()
        return EncodedList(jsonutil.dumps(rows), cursor, paged=True)

    async def _fetch(self, statement: Select[Any], what: str) -> list[dict[str, Any]]:
        async with self._guard(what), self._engine.connect() as conn:
            result = await conn.execute(statement)
            keys = list(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result.all()]

    @asynccontextmanager
    async def _guard(self, what: str) -> AsyncIterator[None]:
        """Bound a database call in time; its failures become brain_unavailable."""
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except _UNAVAILABLE as error:
            log.warning("history database unavailable (%s): %r", what, error)
            raise brain_unavailable("the history database is unavailable") from None

"""Encoded history pages, reused while the history database has not changed.

Dashboards poll the same lists (the newest 500 trades, today's signals); answering each poll
from SQL costs milliseconds of row decoding and encoding. ``DataVersion`` tells, with one cheap
query, whether anything was committed since a page was made; while nothing was, the page's
bytes are served again. The check runs on every request, so a cached page is never older than
the request: a client that saw a trade_executed event and then asks for /v1/trades gets it.

- SQLite: ``PRAGMA data_version`` on one dedicated connection changes whenever another
  connection commits to the file.
- PostgreSQL: ``pg_current_snapshot()`` changes whenever a transaction that wrote anything
  commits (or starts writing), on any database of the server: more misses, never a stale hit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

DEFAULT_ENTRIES = 128


@dataclass(frozen=True, slots=True)
class EncodedList:
    """A JSON array already encoded, with the cursor of the next page when it is a page."""

    body: bytes
    next_cursor: str | None
    paged: bool


class DataVersion:
    """A token that changes whenever the history database changes (None: cannot tell)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._lock = asyncio.Lock()
        self._connection: AsyncConnection | None = None
        self._generation = 0  # data_version values compare only within one connection

    async def current(self) -> Hashable | None:
        try:
            if self._sqlite:
                return await self._sqlite_version()
            async with self._engine.connect() as conn:
                return (await conn.execute(text("SELECT pg_current_snapshot()::text"))).scalar()
        except Exception as error:  # no version: the caller just does not use the cache
            log.debug("history data version unavailable: %r", error)
            await self._drop()
            return None

    async def _sqlite_version(self) -> Hashable:
        async with self._lock:  # one connection, used by one caller at a time
            if self._connection is None:
                self._connection = await self._engine.connect()
                self._generation += 1
            conn = self._connection
            version = (await conn.exec_driver_sql("PRAGMA data_version")).scalar()
            await conn.rollback()  # hold no read transaction between checks
            return (self._generation, version)

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception as error:
                log.debug("closing the data version connection failed: %r", error)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


class ListCache:
    """The newest ``entries`` encoded lists, each valid for the data version it was made at."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self._entries = entries
        self._lists: OrderedDict[Hashable, tuple[Hashable, EncodedList]] = OrderedDict()

    def get(self, key: Hashable, version: Hashable | None) -> EncodedList | None:
        if version is None:
            return None
        found = self._lists.get(key)
        if found is None or found[0] != version:
            return None
        self._lists.move_to_end(key)
        return found[1]

    def put(self, key: Hashable, version: Hashable | None, value: EncodedList) -> None:
        if version is None or self._entries <= 0:
            return
        self._lists[key] = (version, value)
        self._lists.move_to_end(key)
        while len(self._lists) > self._entries:
            self._lists.popitem(last=False)

"""What every candle feed offers the engine, and the pacing shared by the offline feeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from brain.models import TIMEFRAMES, CandleBatch

# How a feed tells its owner that it is down / back (the engine turns these into events).
FeedCallback = Callable[[], Awaitable[None]]


class FeedError(Exception):
    """A feed cannot work as configured: a missing file, a malformed row, an unknown exchange."""


class Feed(Protocol):
    """A source of closed candles.

    ``batches()`` always starts from the beginning of what the feed has (the engine re-reads
    history up to its checkpoint to warm its indicators deterministically after a restart);
    ``after`` only controls pacing: batches that closed at or before it come without delay.
    Each ``CandleBatch`` holds every symbol's candle that closed at its ``close_time``, and the
    batches come in strictly increasing time order.
    """

    name: str

    def batches(self, after: datetime | None = None) -> AsyncIterator[CandleBatch]: ...

    async def aclose(self) -> None: ...


def timeframe_delta(timeframe: str) -> timedelta:
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        known = ", ".join(TIMEFRAMES)
        raise FeedError(f"unknown timeframe {timeframe!r} (known: {known})") from None


class Pacer:
    """Holds a stream to ``speed`` simulated seconds per wall second.

    Batches closing at or before ``after`` pass at once; each later batch comes one
    ``timeframe / speed`` after the one before it (speed 0: no pacing at all). Deadlines are
    counted from the previous batch, so the consumer's own work eats into the pause, and a
    consumer slower than the pace is never made to wait (nor given a burst to catch up).
    """

    def __init__(self, timeframe: timedelta, speed: float, after: datetime | None) -> None:
        if speed < 0:
            raise FeedError(f"speed must not be negative, got {speed}")
        self._interval = timeframe.total_seconds() / speed if speed > 0 else 0.0
        self._after = after
        self._last: float | None = None

    async def wait(self, close_time: datetime) -> None:
        loop = asyncio.get_running_loop()
        paced = self._interval > 0 and (self._after is None or close_time > self._after)
        if paced and self._last is not None:
            delay = self._last + self._interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        self._last = loop.time()

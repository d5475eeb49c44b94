"""A separate process that writes to or reads from the store configured by its environment
(TB_STORE__* and REDIS_URL), for tests that cross the process boundary.

    python -m tests.support.store_worker write FIRST LAST   appends events FIRST..LAST
    python -m tests.support.store_worker read COUNT         prints the ids of COUNT events
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from shared.config import load_settings
from shared.events import Event, EventName
from shared.store.base import LOG_START
from shared.store.factory import open_store


async def write(first: int, last: int) -> None:
    store = await open_store(load_settings())
    try:
        for seq in range(first, last + 1, 7):
            batch = [
                Event(
                    str(n),
                    EventName.SCAN_COMPLETE,
                    {"symbol_count": 6, "signal_count": n},
                    datetime.now(UTC),
                )
                for n in range(seq, min(seq + 7, last + 1))
            ]
            await store.events.append(batch)
            await asyncio.sleep(0.001)  # interleave with the reader
    finally:
        await store.close()


async def read(count: int) -> None:
    store = await open_store(load_settings(), read_only=True)
    after, seen = LOG_START, 0
    try:
        print("ready", flush=True)
        while seen < count:
            for event in await store.events.read(after, count=100, block=5):
                assert event.data["signal_count"] == int(event.id)
                print(event.id, flush=True)
                after, seen = event.id, seen + 1
    finally:
        await store.close()


if __name__ == "__main__":
    command, *numbers = sys.argv[1:]
    if command == "write":
        asyncio.run(write(int(numbers[0]), int(numbers[1])))
    else:
        asyncio.run(read(int(numbers[0])))

"""A separate process on a SQLite store, for tests of several processes sharing one file.

python -m tests.support.sqlite_worker append SETTINGS_JSON PARITY COUNT
    Appends COUNT events one at a time; ids come from the clock (so two writers interleave)
    made even or odd by PARITY. Prints the JSON list of the ids the log accepted.
python -m tests.support.sqlite_worker read SETTINGS_JSON STOP_ID
    Opens the store read-only (the file need not exist yet), prints "ready", then reads the
    log from its start until it has seen STOP_ID, and prints the JSON list of ids read.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from shared.events import Event, EventName
from shared.settings import StoreSettings
from shared.store.base import LOG_START
from shared.store.sqlite_backend import SQLiteStore

READ_DEADLINE_SECONDS = 60.0


def clock_event(parity: int) -> Event:
    event_id = (time.time_ns() // 1000) * 2 + parity
    return Event(
        str(event_id),
        EventName.SCAN_COMPLETE,
        {"symbol_count": parity, "signal_count": 0},
        datetime.now(UTC),
    )


async def append(settings: StoreSettings, parity: int, count: int) -> list[str]:
    store = await SQLiteStore.open(settings)
    try:
        accepted: list[str] = []
        for _ in range(count):
            accepted += await store.events.append([clock_event(parity)])
        return accepted
    finally:
        await store.close()


async def read(settings: StoreSettings, stop_id: str) -> list[str]:
    store = await SQLiteStore.open(settings, read_only=True)
    print("ready", flush=True)
    seen: list[str] = []
    after = LOG_START
    deadline = time.monotonic() + READ_DEADLINE_SECONDS
    try:
        while stop_id not in seen and time.monotonic() < deadline:
            batch = await store.events.read(after, count=50, block=1.0)
            seen += [event.id for event in batch]
            if batch:
                after = batch[-1].id
        return seen
    finally:
        await store.close()


def main(argv: list[str]) -> None:
    role, settings = argv[0], StoreSettings(**json.loads(argv[1]))
    if role == "append":
        result = asyncio.run(append(settings, int(argv[2]), int(argv[3])))
    elif role == "read":
        result = asyncio.run(read(settings, argv[2]))
    else:
        raise SystemExit(f"unknown role {role!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

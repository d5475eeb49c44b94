"""A separate process that uses the outbox, for crash tests with real processes. Configured by
its environment like the brain: DATABASE_URL, TB_STORE__* and REDIS_URL.

    python -m tests.support.outbox_worker commit-and-die COUNT   commits COUNT events, SIGKILL
    python -m tests.support.outbox_worker publish-and-die        fetch + publish, SIGKILL
    python -m tests.support.outbox_worker relay                  drains the outbox, prints count

Dying by SIGKILL leaves no chance for cleanup of any kind, like a power cut of the process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from shared.config import load_settings
from shared.db.engine import create_engine, database_url
from shared.events import EventName
from shared.outbox import OutboxRelay, add_event
from shared.settings import Settings
from shared.store.factory import open_store


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


async def commit_and_die(settings: Settings, count: int) -> None:
    engine = create_engine(database_url(settings))
    for n in range(count):
        async with engine.begin() as conn:
            await add_event(conn, EventName.SCAN_COMPLETE, {"symbol_count": 6, "signal_count": n})
    print("committed", flush=True)
    die()


async def publish_and_die(settings: Settings) -> None:
    engine = create_engine(database_url(settings))
    store = await open_store(settings)
    relay = OutboxRelay(engine, store.events, settings.outbox)
    events = await relay.fetch()
    await relay.publish(events)
    print(f"published {len(events)}", flush=True)
    die()  # before mark_relayed: the rows stay in the outbox


async def relay(settings: Settings) -> None:
    engine = create_engine(database_url(settings))
    store = await open_store(settings)
    try:
        moved = await OutboxRelay(engine, store.events, settings.outbox).drain()
        print(f"relayed {moved}", flush=True)
    finally:
        await store.close()
        await engine.dispose()


def main(argv: list[str]) -> None:
    settings = load_settings(dotenv_path=None)
    command, *rest = argv
    if command == "commit-and-die":
        asyncio.run(commit_and_die(settings, int(rest[0])))
    elif command == "publish-and-die":
        asyncio.run(publish_and_die(settings))
    elif command == "relay":
        asyncio.run(relay(settings))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

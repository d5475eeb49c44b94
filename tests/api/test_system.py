"""/v1/system: liveness from the heartbeat (running -> stale -> stopped) and the uptime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from shared.store.base import SnapshotName, Store
from shared.timeutil import utc_now
from tests.api import brain_state
from tests.api.conftest import StartApi
from tests.api.helpers import wait_for_data

STALE_AFTER = 0.6


@contextlib.asynccontextmanager
async def beating(store: Store, interval: float = 0.1) -> AsyncIterator[None]:
    """A brain's heartbeat: a fresh heartbeat snapshot every ``interval`` seconds."""

    async def beat() -> None:
        while True:
            await store.snapshots.write({SnapshotName.HEARTBEAT: brain_state.heartbeat_doc()})
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_system_goes_running_then_stale_then_stopped(
    start_api: StartApi, store: Store
) -> None:
    started = utc_now() - timedelta(seconds=100)
    await store.snapshots.write({SnapshotName.SYSTEM: brain_state.system_doc(started_at=started)})
    async with start_api(stale_after=STALE_AFTER) as api:
        get = lambda: api.get("/v1/system")  # noqa: E731
        async with beating(store):
            running = await wait_for_data(get, lambda d: d["status"] == "running", "running")
            assert 100 <= running["uptime_seconds"] <= 130
            assert 0 <= running["heartbeat_age_seconds"] <= STALE_AFTER
            assert running["heartbeat_at"] is not None

        stale = await wait_for_data(get, lambda d: d["status"] == "stale", "stale")
        assert stale["heartbeat_age_seconds"] >= STALE_AFTER  # past it, rounded to 1 ms
        assert stale["uptime_seconds"] >= running["uptime_seconds"]

        async with beating(store):  # the brain comes back: running again
            await wait_for_data(get, lambda d: d["status"] == "running", "running again")
            stopped_doc = brain_state.system_doc(status="stopped", started_at=started)
            await store.snapshots.write({SnapshotName.SYSTEM: stopped_doc})
            stopped = await wait_for_data(get, lambda d: d["status"] == "stopped", "stopped")
        assert stopped["uptime_seconds"] is None
        assert stopped["started_at"] == stopped_doc["started_at"]


async def test_system_without_any_heartbeat_is_stale(start_api: StartApi, store: Store) -> None:
    await store.snapshots.write({SnapshotName.SYSTEM: brain_state.system_doc(halted=True)})
    async with start_api(stale_after=STALE_AFTER) as api:
        system = await api.data("/v1/system")
        assert system["status"] == "stale"
        assert system["heartbeat_at"] is None
        assert system["heartbeat_age_seconds"] is None
        assert system["halted"] is True
        assert system["halt_reason"] == "daily loss limit"
        # An old heartbeat is stale at once.
        old = brain_state.heartbeat_doc(utc_now() - timedelta(seconds=60))
        await store.snapshots.write({SnapshotName.HEARTBEAT: old})
        system = await wait_for_data(
            lambda: api.get("/v1/system"),
            lambda d: d["heartbeat_age_seconds"] is not None,
            "the old heartbeat",
        )
        assert system["status"] == "stale"
        assert system["heartbeat_age_seconds"] >= 60

"""Two API processes (`tradingbrain api`) over one Redis: their clients receive the identical
sequence; when one replica is killed, its clients move to the other with last_event_id and
miss nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.settings import StoreSettings
from shared.store.base import Store
from tests.api.conftest import API_KEY
from tests.api.helpers import wait_for_status
from tests.api_ws.client import ResumingClient, events, running
from tests.support.services import async_wait_until, free_port

pytestmark = [
    pytest.mark.real_redis,
    pytest.mark.slow,
    pytest.mark.parametrize("backend", ["redis"]),
]

EVENTS = 400


@pytest.fixture
def replica_env(
    store_settings: StoreSettings, real_redis_url: str, history_url: str, history: AsyncEngine
) -> dict[str, str]:
    """The environment of `tradingbrain api` on the test's Redis store and SQL history."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        "API_KEY": API_KEY,
        "TB_STORE__BACKEND": "redis",
        "TB_STORE__KEY_PREFIX": store_settings.key_prefix,
        "REDIS_URL": real_redis_url,
        "DATABASE_URL": history_url,
    }


@contextlib.asynccontextmanager
async def replica(
    tmp_path: Path, name: str, env: dict[str, str]
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """`tradingbrain api` in a process of its own; yields its URL and the process."""
    script = shutil.which("tradingbrain", path=os.path.dirname(sys.executable))
    assert script is not None, "the tradingbrain console script is not installed"
    port = free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [script, "api", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:

            async def health() -> httpx.Response:
                try:
                    return await client.get("/healthz")
                except httpx.TransportError:
                    return httpx.Response(599)

            await wait_for_status(health, 200, f"replica {name}", timeout=30)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    text = log.read_text()
    assert "Traceback" not in text, text
    assert API_KEY not in text


async def test_two_replicas_serve_the_same_sequence_and_take_over_each_others_clients(
    tmp_path: Path, store: Store, replica_env: dict[str, str]
) -> None:
    published = 0

    async def publish() -> None:
        nonlocal published
        for first in range(1, EVENTS + 1, 4):
            await store.events.append(events(first, 4))
            published = first + 3
            await asyncio.sleep(0.01)

    async with (
        replica(tmp_path, "a", replica_env) as (a, process_a),
        replica(tmp_path, "b", replica_env) as (b, _),
    ):
        # From the start of the log, so the order they connect in does not matter.
        on_a = [ResumingClient([a, b], last_event_id="0") for _ in range(8)]
        on_b = [ResumingClient([b, a], last_event_id="0") for _ in range(8)]
        async with running(on_a + on_b):
            producer = asyncio.create_task(publish())
            await async_wait_until(lambda: published >= EVENTS // 3, 10, "a third published")
            await async_wait_until(
                lambda: all(len(c.frames) > 20 for c in on_a), 10, "replica a's clients streaming"
            )
            process_a.kill()  # no goodbye: its clients see the connection drop
            await producer
            for client in on_a + on_b:
                await client.wait_for_id(EVENTS)
    expected = [event.to_wire() for event in await store.events.read("0", count=EVENTS + 1)]
    assert len(expected) == EVENTS
    for client in on_a + on_b:
        assert client.frames == expected  # the identical sequence, once each, in order
    for client in on_a:
        assert client.connections == 2
        assert client.closes[0] == 1006
    for client in on_b:
        assert client.connections == 1
        assert client.closes == []

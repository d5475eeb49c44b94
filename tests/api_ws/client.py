"""A test client of /v1/events: records every frame, reconnects with last_event_id.

Like the client in docs/events.md: on any close or refused handshake it reconnects (to the
next URL of its list, so a replica's clients move to another) and resumes after the last
event id it saw, so over reconnects it must see every event exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.events_protocol import CloseCode
from shared import jsonutil
from shared.events import Event, EventName
from shared.timeutil import utc_now
from tests.api.conftest import AUTH
from tests.support.services import async_wait_until

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def ws_url(base: str, **params: str) -> str:
    """The /v1/events URL of an API at ``base`` (http://host:port), with query parameters."""
    url = base.replace("http://", "ws://", 1) + "/v1/events"
    return f"{url}?{urlencode(params)}" if params else url


def events(first: int, count: int, *, at: datetime | None = None) -> list[Event]:
    """``count`` events with ids from ``first``: signals over three symbols, and every fifth
    a scan_complete (which carries no symbol)."""
    moment = at or utc_now()
    made = []
    for seq in range(first, first + count):
        if seq % 5 == 0:
            data: dict[str, Any] = {"symbol_count": 3, "signal_count": seq % 3}
            made.append(Event(str(seq), EventName.SCAN_COMPLETE, data, moment))
        else:
            data = {"symbol": SYMBOLS[seq % 3], "action": "BUY", "confidence": 0.5}
            made.append(Event(str(seq), EventName.SIGNAL_GENERATED, data, moment))
    return made


@contextlib.asynccontextmanager
async def open_stream(
    url: str, *, headers: Mapping[str, str] | None = AUTH, **kwargs: Any
) -> AsyncIterator[ClientConnection]:
    kwargs.setdefault("compression", None)
    # No client-side flow control by default: a test that stops reading early must still see
    # the close frame behind the frames it did not read.
    kwargs.setdefault("max_queue", None)
    async with connect(url, additional_headers=headers, open_timeout=5, **kwargs) as ws:
        yield ws


async def receive(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    frame: dict[str, Any] = jsonutil.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def receive_events(
    ws: ClientConnection, count: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """The next ``count`` event frames (control frames skipped)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        frame = await receive(ws, max(0.01, deadline - time.monotonic()))
        if frame["id"] is not None:
            got.append(frame)
    return got


async def closed_with(ws: ClientConnection, timeout: float = 5.0) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


def ids(frames: Sequence[Mapping[str, Any]]) -> list[int]:
    return [int(frame["id"]) for frame in frames]


@dataclass
class ResumingClient:
    """Follows the stream across closes and refusals, resuming after the last id it saw."""

    urls: Sequence[str]  # base URLs (http://host:port); the next one is tried after a failure
    params: dict[str, str] = field(default_factory=dict)
    last_event_id: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)
    refusals: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    connections: int = 0
    _current: int = 0

    @property
    def ids(self) -> list[int]:
        return ids(self.frames)

    async def run(self) -> None:
        while True:
            params = dict(self.params)
            if self.last_event_id is not None:
                params["last_event_id"] = self.last_event_id
            try:
                async with open_stream(ws_url(self.urls[self._current], **params)) as ws:
                    self.connections += 1
                    with contextlib.suppress(ConnectionClosed):
                        async for message in ws:
                            self._record(message)
                code = ws.close_code
                assert code is not None
                self.closes.append(code)
            except InvalidStatus as refused:
                self.refusals.append(refused.response.status_code)
                code = None
            except OSError:
                self.refusals.append(0)
                code = None
            if code != CloseCode.SLOW_CONSUMER:  # else this server is fine: come back to it
                self._current = (self._current + 1) % len(self.urls)
            await asyncio.sleep(0.05)

    def _record(self, message: str | bytes) -> None:
        frame = jsonutil.loads(message)
        if frame["id"] is None:
            self.controls.append(frame)
            return
        sent = datetime.fromisoformat(frame["timestamp"]).timestamp()
        self.latencies.append(time.time() - sent)
        self.frames.append(frame)
        self.last_event_id = frame["id"]

    async def wait_for_id(self, seq: int, timeout: float = 15.0) -> None:
        def reached() -> bool:
            return self.last_event_id is not None and int(self.last_event_id) >= seq

        await async_wait_until(reached, timeout, f"a client to reach event {seq}")


@contextlib.asynccontextmanager
async def running(clients: Sequence[ResumingClient]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(client.run()) for client in clients]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

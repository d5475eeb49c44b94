"""Limits: a client that stops reading is cut off (4408) without slowing the others; a process
refuses clients beyond its maximum at the handshake."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from api.events_protocol import CloseCode
from shared import jsonutil
from shared.events import Event, EventName
from shared.store.base import Store
from shared.timeutil import utc_now
from tests.api_ws.client import (
    ResumingClient,
    ids,
    open_stream,
    receive,
    receive_events,
    running,
)
from tests.api_ws.conftest import Relay, StartRelay, wait_attached
from tests.support.services import async_wait_until

SUMMARY = "x" * 8000  # large events fill socket buffers quickly


def small_socket(relay: Relay) -> socket.socket:
    """A connected socket with a small receive buffer, so a client that stops reading pushes
    back on the server after a few events."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    host, port = relay.url.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


def summaries(first: int, count: int) -> list[Event]:
    data: dict[str, Any] = {"date": "2024-08-05", "summary": SUMMARY}
    return [
        Event(str(seq), EventName.DAILY_SUMMARY, data, utc_now())
        for seq in range(first, first + count)
    ]


async def test_a_client_that_stops_reading_is_cut_off_and_the_others_keep_up(
    start_relay: StartRelay, store: Store
) -> None:
    total = 600

    async def produce() -> None:
        for first in range(1, total + 1, 10):
            await store.events.append(summaries(first, 10))
            await asyncio.sleep(0.01)

    async with start_relay(ws_send_queue=20) as relay:
        fast = [ResumingClient([relay.url]) for _ in range(5)]
        async with (
            running(fast),
            open_stream(relay.ws(), sock=small_socket(relay), max_queue=1) as slow,
        ):
            await wait_attached(relay, 6)
            producer = asyncio.create_task(produce())
            await async_wait_until(lambda: relay.endpoint.hub.attached == 5, 10, "the cut")
            assert not producer.done()
            got: list[dict[str, Any]] = []
            with contextlib.suppress(Exception):
                while True:
                    got.append(await receive(slow))
            assert slow.close_code == CloseCode.SLOW_CONSUMER
            assert (slow.close_reason or "").startswith("slow consumer")
            await producer
            for client in fast:
                await client.wait_for_id(total)
        seen = ids(got)
        assert seen == list(range(1, len(seen) + 1))
        assert len(seen) < total
        for client in fast:
            assert client.ids == list(range(1, total + 1))
            assert client.closes == []
            latencies = sorted(client.latencies)
            assert latencies[int(len(latencies) * 0.99)] < 1.0, statistics.quantiles(latencies)
        # The cut client resumes where it stopped and misses nothing.
        async with open_stream(relay.ws(last_event_id=str(seen[-1]))) as again:
            rest = await receive_events(again, total - len(seen))
        assert ids(rest) == list(range(len(seen) + 1, total + 1))


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_clients_beyond_the_maximum_are_refused_at_the_handshake(
    start_relay: StartRelay,
) -> None:
    async with start_relay(ws_max_clients=3) as relay, contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(open_stream(relay.ws())) for _ in range(3)]
        await wait_attached(relay, 3)
        with pytest.raises(InvalidStatus) as refused:
            async with open_stream(relay.ws()):
                pass
        response = refused.value.response
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert jsonutil.loads(response.body)["error"]["code"] == "too_many_clients"
        await streams[0].close()
        await async_wait_until(lambda: relay.endpoint.connections == 2, 5, "a free slot")
        async with open_stream(relay.ws()):
            await wait_attached(relay, 3)

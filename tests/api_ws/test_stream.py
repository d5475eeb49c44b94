"""The stream on each store backend: ordered, complete, resumable, filtered, with heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re

import httpx

from api.events_protocol import CloseCode
from api.events_ws import uvicorn_ws_settings
from shared.settings import Settings
from shared.store.base import Store
from tests.api.conftest import AUTH
from tests.api_ws.client import (
    ResumingClient,
    closed_with,
    events,
    open_stream,
    receive,
    receive_events,
    running,
)
from tests.api_ws.conftest import Relay, StartRelay, wait_attached
from tests.support.services import async_wait_until


async def test_many_clients_get_every_event_in_order(relay: Relay, store: Store) -> None:
    await store.events.append(events(1, 5))  # before anyone connects: not part of a live start
    await async_wait_until(lambda: relay.endpoint.hub.position == 5, 5, "the relay to read 5")
    clients = [ResumingClient([relay.url]) for _ in range(50)]
    async with running(clients):
        await wait_attached(relay, 50)
        for first in range(6, 206, 20):
            await store.events.append(events(first, 20))
            await asyncio.sleep(0.01)
        for client in clients:
            await client.wait_for_id(205)
    for client in clients:
        assert client.ids == list(range(6, 206))
        assert client.closes == []
        assert client.refusals == []


async def test_one_frame_per_event_in_the_catalog_wire_format(relay: Relay, store: Store) -> None:
    async with open_stream(relay.ws()) as ws:
        await wait_attached(relay, 1)
        appended = events(1, 3)
        await store.events.append(appended)
        frames = await receive_events(ws, 3)
    assert [frame for frame in frames] == [event.to_wire() for event in appended]


async def test_resume_from_the_middle_has_no_gap_and_no_duplicate(
    relay: Relay, store: Store
) -> None:
    await store.events.append(events(1, 2500))  # catch-up takes several reads
    newest = 3000

    async def produce() -> None:
        for first in range(2501, newest + 1, 5):
            await store.events.append(events(first, 5))
            await asyncio.sleep(0.002)

    starts = ["0", "1", "1200", "2499", "2500"]
    clients = [ResumingClient([relay.url], last_event_id=start) for start in starts]
    async with running(clients):  # they catch up and attach while events keep arriving
        await produce()
        for client in clients:
            await client.wait_for_id(newest)
    for start, client in zip(starts, clients, strict=True):
        assert client.ids == list(range(int(start) + 1, newest + 1)), start
        assert client.controls == []
        assert client.closes == []


async def test_filters_by_event_name_and_symbol_live_and_in_catch_up(
    relay: Relay, store: Store
) -> None:
    history = events(1, 50)
    await store.events.append(history)
    cases = {
        "scan only": {"events": "scan_complete"},
        "btc": {"symbols": "BTC/USDT"},
        "signals on eth or sol": {"events": "signal_generated", "symbols": "ETH/USDT,SOL/USDT"},
    }
    expected = {
        "scan only": lambda frame: frame["event"] == "scan_complete",
        "btc": lambda frame: frame["data"].get("symbol", "BTC/USDT") == "BTC/USDT",
        "signals on eth or sol": lambda frame: (
            frame["event"] == "signal_generated" and frame["data"]["symbol"] != "BTC/USDT"
        ),
    }
    clients = {
        name: ResumingClient([relay.url], params=params, last_event_id="20")
        for name, params in cases.items()
    }
    async with running(list(clients.values())):
        await wait_attached(relay, len(clients))
        live = events(51, 50)
        await store.events.append(live)
        everything = [event.to_wire() for event in history[20:] + live]
        wanted = {name: [f for f in everything if expected[name](f)] for name in cases}
        for name, client in clients.items():
            await client.wait_for_id(int(wanted[name][-1]["id"]))
    for name, client in clients.items():
        assert client.frames == wanted[name], name
        assert len(wanted[name]) >= 10


async def test_heartbeats_tell_a_silent_client_its_position(
    start_relay: StartRelay, store: Store
) -> None:
    await store.events.append(events(1, 10))
    async with (
        start_relay(ws_heartbeat_interval=0.2) as relay,
        open_stream(relay.ws(events="risk_halt")) as ws,
    ):
        first = await receive(ws)
        assert first["event"] == "heartbeat"
        assert first["id"] is None
        assert first["data"] == {"last_event_id": "10"}
        assert first["timestamp"].endswith("Z")
        await store.events.append(events(11, 5))  # all filtered out: the position moves on
        while (frame := await receive(ws))["data"]["last_event_id"] != "15":
            assert frame["event"] == "heartbeat"


async def test_shutdown_closes_streams_with_service_restart(
    start_relay: StartRelay, store: Store
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        async with start_relay() as relay:
            ws = await stack.enter_async_context(open_stream(relay.ws()))
            await wait_attached(relay, 1)
        # The server has shut down (leaving the block above), closing the stream on its way.
        code, _ = await closed_with(ws)
    assert code == CloseCode.SERVICE_RESTART


async def test_metrics_count_clients_and_relayed_events(relay: Relay, store: Store) -> None:
    async with (
        httpx.AsyncClient(base_url=relay.url, headers=AUTH) as http,
        open_stream(relay.ws()) as one,
        open_stream(relay.ws()) as two,
    ):
        await wait_attached(relay, 2)
        await store.events.append(events(1, 3))
        for ws in (one, two):
            await receive_events(ws, 3)

        async def counted() -> bool:  # the counter is updated once a second
            text = (await http.get("/metrics")).text
            assert re.search(r"^tradingbrain_api_websocket_clients 2\.0$", text, re.M), text
            return bool(re.search(r"^tradingbrain_api_events_relayed_total 6\.0$", text, re.M))

        await async_wait_until(counted, 5, "the relayed events counted")


async def test_permessage_deflate_is_off_unless_asked_for(
    relay: Relay, base_settings: Settings
) -> None:
    async with open_stream(relay.ws(), compression="deflate") as ws:  # the client offers it
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
    api = base_settings.api  # the shipped [api] keys
    assert uvicorn_ws_settings(api)["ws_per_message_deflate"] is False
    on = uvicorn_ws_settings(
        dataclasses.replace(api, ws_permessage_deflate=True, ws_ping_interval=5.0)
    )
    assert on["ws_per_message_deflate"] is True
    assert on["ws_ping_interval"] == 5.0

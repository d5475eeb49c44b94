"""Auth of /v1/events: a key in the header, the query or a first message; a bad or missing key
never receives an event."""

from __future__ import annotations

import asyncio
import logging

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from api.events_protocol import CloseCode
from shared import jsonutil
from shared.store.base import Store
from tests.api.conftest import API_KEY, SECOND_KEY
from tests.api_ws.client import closed_with, events, ids, open_stream, receive_events
from tests.api_ws.conftest import Relay, StartRelay, wait_attached

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # auth does not touch the store

BAD_HEADERS = {
    "wrong key": f"Bearer {API_KEY}x",
    "basic scheme": f"Basic {API_KEY}",
    "empty bearer": "Bearer",
}


async def _two_events(relay: Relay, store: Store, ws: ClientConnection, first: int) -> list[int]:
    await wait_attached(relay, 1)
    await store.events.append(events(first, 2))
    return ids(await receive_events(ws, 2))


async def test_a_key_in_the_header_the_query_or_a_first_message_is_accepted(
    relay: Relay, store: Store
) -> None:
    async with open_stream(relay.ws(), headers={"Authorization": f"bearer {SECOND_KEY}"}) as ws:
        assert await _two_events(relay, store, ws, 1) == [1, 2]
    async with open_stream(relay.ws(token=API_KEY), headers=None) as ws:
        assert await _two_events(relay, store, ws, 3) == [3, 4]
    async with open_stream(relay.ws(), headers=None) as ws:
        await ws.send(jsonutil.dumps_str({"op": "auth", "token": API_KEY}))
        assert await _two_events(relay, store, ws, 5) == [5, 6]


async def test_a_bad_key_in_the_header_or_query_is_refused_at_the_handshake(
    relay: Relay,
) -> None:
    attempts: list[tuple[str, dict[str, str] | None]] = [
        (relay.ws(), {"Authorization": header}) for header in BAD_HEADERS.values()
    ]
    attempts.append((relay.ws(token=API_KEY + "x"), None))
    attempts.append((relay.ws(token=""), None))
    for url, headers in attempts:
        with pytest.raises(InvalidStatus) as refused:
            async with open_stream(url, headers=headers):
                pass
        response = refused.value.response
        assert response.status_code == 401, headers
        body = jsonutil.loads(response.body)
        assert body["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "first_message",
    [
        "not json",
        f'{{"op": "subscribe", "token": "{API_KEY}"}}',
        '{"op": "auth"}',
        '{"op": "auth", "token": "wrong"}',
        f'["auth", "{API_KEY}"]',
        b"binary",
    ],
)
async def test_a_first_message_that_is_not_a_valid_auth_closes_with_4401(
    relay: Relay, store: Store, first_message: str | bytes
) -> None:
    async with open_stream(relay.ws(), headers=None) as ws:
        await ws.send(first_message)
        await store.events.append(events(1, 1))
        code, reason = await closed_with(ws)  # and no event before the close
    assert code == CloseCode.UNAUTHORIZED
    assert reason.startswith("unauthorized")


async def test_no_first_message_within_the_timeout_closes_with_4401(
    start_relay: StartRelay,
) -> None:
    async with (
        start_relay(ws_auth_timeout=0.3) as relay,
        open_stream(relay.ws(), headers=None) as ws,
    ):
        started = asyncio.get_running_loop().time()
        code, reason = await closed_with(ws)
        waited = asyncio.get_running_loop().time() - started
    assert code == CloseCode.UNAUTHORIZED
    assert reason == "unauthorized: no auth message within 0.3s"
    assert 0.2 < waited < 2.0


async def test_query_tokens_never_reach_the_log(
    relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with open_stream(relay.ws(token=API_KEY), headers=None):
        pass
    with pytest.raises(InvalidStatus):
        async with open_stream(relay.ws(token="not-a-key-but-maybe-a-typo"), headers=None):
            pass
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "token=***" in logged  # uvicorn logs the path, with the token masked
    assert API_KEY not in logged
    assert "not-a-key-but" not in logged

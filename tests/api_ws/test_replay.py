"""Resuming from an id the log no longer holds (trimmed) or never held: told plainly first."""

from __future__ import annotations

import dataclasses

import pytest

from api.events_protocol import CloseCode
from shared.settings import StoreSettings
from shared.store.base import Store
from tests.api_ws.client import closed_with, events, ids, open_stream, receive, receive_events
from tests.api_ws.conftest import Relay, wait_attached

MAX_EVENTS = 100  # the smallest retention the settings allow


@pytest.fixture
def store_settings(store_settings: StoreSettings) -> StoreSettings:
    return dataclasses.replace(store_settings, max_events=MAX_EVENTS)


async def test_replay_incomplete_after_trimming_then_the_oldest_held_onwards(
    relay: Relay, store: Store
) -> None:
    await store.events.append(events(1, 1000))
    bounds = await store.events.bounds()
    assert bounds.oldest is not None
    assert int(bounds.oldest) > 2
    oldest = int(bounds.oldest)
    async with open_stream(relay.ws(last_event_id="1")) as ws:
        first = await receive(ws)
        assert first["id"] is None
        assert first["event"] == "replay_incomplete"
        assert first["data"] == {"requested": "1", "oldest": str(oldest)}
        replayed = await receive_events(ws, 1000 - oldest + 1)
        assert ids(replayed) == list(range(oldest, 1001))
        await store.events.append(events(1001, 3))
        assert ids(await receive_events(ws, 3)) == [1001, 1002, 1003]


async def test_an_id_the_log_never_held_is_incomplete_too(relay: Relay, store: Store) -> None:
    await store.events.append(events(1, 150))
    oldest = (await store.events.bounds()).oldest
    assert oldest is not None
    async with open_stream(relay.ws(last_event_id="5000")) as ws:
        first = await receive(ws)
        assert first["event"] == "replay_incomplete"
        assert first["data"] == {"requested": "5000", "oldest": oldest}
        assert ids(await receive_events(ws, 151 - int(oldest))) == list(range(int(oldest), 151))


async def test_resuming_right_before_the_oldest_held_is_complete(
    relay: Relay, store: Store
) -> None:
    await store.events.append(events(1, 300))
    oldest = int((await store.events.bounds()).oldest or 0)
    async with open_stream(relay.ws(last_event_id=str(oldest - 1))) as ws:
        frames = await receive_events(ws, 301 - oldest)
    assert ids(frames) == list(range(oldest, 301))  # and no replay_incomplete first


async def test_an_empty_log_resumes_from_zero_without_a_warning(relay: Relay, store: Store) -> None:
    async with open_stream(relay.ws(last_event_id="0")) as ws:
        await store.events.append(events(1, 2))
        first = await receive(ws)
        assert first["id"] == "1"


@pytest.mark.parametrize("backend", ["sqlite"])  # one transaction appends and trims: no race
async def test_live_clients_are_told_when_the_relay_itself_missed_trimmed_events(
    relay: Relay, store: Store
) -> None:
    async with open_stream(relay.ws()) as ws:
        await wait_attached(relay, 1)
        await store.events.append(events(1, 1000))  # trimmed before the relay reads it
        code, reason = await closed_with(ws)
    assert code == CloseCode.TRY_AGAIN_LATER
    assert reason.startswith("the relay missed trimmed events")
    async with open_stream(relay.ws(last_event_id="0")) as ws:
        first = await receive(ws)
    assert first["event"] == "replay_incomplete"

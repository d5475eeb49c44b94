"""Fixtures of the /v1/events tests: the whole API (``create_app``) served for real by uvicorn
on a loopback port, on the test's store, which the test appends events to as the brain's
outbox would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette

from api.events_ws import EventsEndpoint
from tests.api.conftest import StartApi, api_settings, history, history_url, start_api
from tests.api_ws.client import ws_url
from tests.support.services import async_wait_until

__all__ = ["api_settings", "history", "history_url", "start_api"]

# Quick reactions for tests ([api] keys; the shipped defaults are in config/settings.toml).
TEST_OPTIONS: dict[str, Any] = {"ws_outage_grace": 0.3, "retry_initial": 0.05, "retry_max": 0.5}


@dataclass
class Relay:
    url: str  # http://host:port
    app: Starlette

    @property
    def endpoint(self) -> EventsEndpoint:
        endpoint: EventsEndpoint = self.app.state.runtime.events
        return endpoint

    def ws(self, **params: str) -> str:
        return ws_url(self.url, **params)


StartRelay = Callable[..., contextlib.AbstractAsyncContextManager[Relay]]


@pytest.fixture
def start_relay(start_api: StartApi) -> StartRelay:
    """Start the API with some ``[api]`` keys changed (``ws_send_queue=20``, ...)."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Relay]:
        async with start_api(**{**TEST_OPTIONS, **overrides}) as api:
            yield Relay(api.url, api.app)

    return start


@pytest.fixture
async def relay(start_relay: StartRelay) -> AsyncIterator[Relay]:
    async with start_relay() as running:
        yield running


async def wait_attached(relay: Relay, count: int, timeout: float = 10.0) -> None:
    """Wait until ``count`` clients are attached to the relay's hub (live)."""
    await async_wait_until(
        lambda: relay.endpoint.hub.attached >= count, timeout, f"{count} attached clients"
    )

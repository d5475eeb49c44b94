"""Fixtures of the Data API tests: a brain's store and SQL history, and the API served on them.

The API always runs for real (uvicorn on a loopback port) and reads what the test wrote
through the shared interfaces, as it would read a brain's. On the Redis backend it needs a real
server (it opens its own connections), so those tests skip where only fakeredis exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from shared.db.engine import create_engine
from shared.db.migrate import upgrade
from shared.settings import Secret, Settings, StoreSettings
from shared.store.base import Store
from tests.api.server import run_server

API_KEY = "test-key-primary-0123456789abcdefghijklmnop"
SECOND_KEY = "test-key-rotated-0123456789abcdefghijklmnop"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def api_settings_for(
    base: Settings,
    store_settings: StoreSettings,
    backend: str,
    *,
    redis_url: str | None,
    history_url: str,
) -> Settings:
    secrets = dataclasses.replace(
        base.secrets,
        api_keys=(Secret(API_KEY), Secret(SECOND_KEY)),
        redis_url=Secret(redis_url) if redis_url else None,
        database_url=Secret(history_url),
    )
    store = dataclasses.replace(store_settings, backend=backend)
    return dataclasses.replace(base, store=store, secrets=secrets)


def with_api(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with some ``[api]`` keys changed (``stale_after=2.0``, ...)."""
    return dataclasses.replace(settings, api=dataclasses.replace(settings.api, **changes))


@pytest.fixture
def history_url(tmp_path: Path) -> str:
    """The SQL history as a SQLite file (tests of the history endpoints also use PostgreSQL)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"


@pytest.fixture
async def history(history_url: str) -> AsyncIterator[AsyncEngine]:
    """The brain's (writable) engine on the migrated SQL history."""
    engine = create_engine(history_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def api_settings(
    request: pytest.FixtureRequest,
    base_settings: Settings,
    store_settings: StoreSettings,
    backend: str,
    history_url: str,
) -> Settings:
    redis_url = request.getfixturevalue("real_redis_url") if backend == "redis" else None
    return api_settings_for(
        base_settings, store_settings, backend, redis_url=redis_url, history_url=history_url
    )


@dataclass
class Api:
    """A running API and a client of it that sends the primary key."""

    url: str
    client: httpx.AsyncClient
    app: Any

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def data(self, path: str, **kwargs: Any) -> Any:
        response = await self.client.get(path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()["data"]


StartApi = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


@pytest.fixture
def start_api(api_settings: Settings, store: Store, history: AsyncEngine) -> StartApi:
    """Start the API on the test's store and history, with ``[api]`` keys of the test's choosing
    (``start_api(stale_after=2.0)``)."""

    @contextlib.asynccontextmanager
    async def start(**changes: Any) -> AsyncIterator[Api]:
        app = create_app(with_api(api_settings, **changes))
        async with (
            run_server(app) as url,
            httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as client,
        ):
            yield Api(url, client, app)

    return start


@pytest.fixture
async def api(start_api: StartApi) -> AsyncIterator[Api]:
    async with start_api() as running:
        yield running

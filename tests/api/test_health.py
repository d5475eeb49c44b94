"""/healthz, and the API through store and database outages."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from shared.settings import Settings, StoreSettings
from shared.store.base import SnapshotName, Store
from tests.api import brain_state
from tests.api.conftest import AUTH, Api, api_settings_for, with_api
from tests.api.helpers import assert_error, wait_for_data, wait_for_status
from tests.api.server import run_server
from tests.conftest import open_test_store
from tests.support.services import RedisServer


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        run_server(app) as url,
        httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as client,
    ):
        yield client


async def test_healthz_reports_store_and_database(api: Api) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json()["data"] == {"status": "ok", "store": "ok", "database": "ok"}


async def test_missing_history_database_is_unavailable_not_a_crash(
    base_settings: Settings, store_settings: StoreSettings, store: Store, tmp_path: Path
) -> None:
    settings = api_settings_for(
        base_settings,
        store_settings,
        "sqlite",
        redis_url=None,
        history_url=f"sqlite+aiosqlite:///{tmp_path / 'nowhere' / 'history.db'}",
    )
    async with serve(create_app(settings)) as client:
        response = await client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["data"] == {
            "status": "unavailable",
            "store": "ok",
            "database": "unavailable",
        }
        for path in ("/v1/trades", "/v1/signals", "/v1/performance"):
            message = assert_error(await client.get(path), 503, "brain_unavailable")
            assert message == "the history database is unavailable"
            assert "nowhere" not in message


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.real_redis
async def test_redis_outage_healthz_503_then_full_reread(
    base_settings: Settings,
    store_settings: StoreSettings,
    history_url: str,
    history: AsyncEngine,
    tmp_path: Path,
) -> None:
    if not RedisServer.available():
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis-1")
    server.start()
    settings = api_settings_for(
        base_settings, store_settings, "redis", redis_url=server.url, history_url=history_url
    )
    writer = await open_test_store("redis", store_settings, server.url)
    restarted = None
    try:
        await brain_state.publish_state(writer)
        app = create_app(with_api(settings, retry_initial=0.05, retry_max=0.2))
        async with serve(app) as client:
            await wait_for_status(lambda: client.get("/v1/portfolio"), 200, "portfolio")
            server.kill()
            response = await wait_for_status(lambda: client.get("/healthz"), 503, "503")
            assert response.json()["data"]["store"] == "unavailable"
            assert response.json()["data"]["database"] == "ok"
            # The last snapshots are still served from memory.
            assert (await client.get("/v1/portfolio")).status_code == 200

            restarted = RedisServer(tmp_path / "redis-2")
            restarted.port = server.port  # the same address, an empty store
            restarted.start()
            await writer.close()
            writer = await open_test_store("redis", store_settings, restarted.url)
            portfolio = {**brain_state.PORTFOLIO, "total_value": 999.0}
            await writer.snapshots.write({SnapshotName.PORTFOLIO: portfolio})
            await wait_for_data(
                lambda: client.get("/v1/portfolio"),
                lambda data: data["total_value"] == 999.0,
                "the new portfolio after the restart",
            )
            await wait_for_status(lambda: client.get("/healthz"), 200, "healthy again")
            # The reset store no longer holds the positions: not served from a stale cache.
            assert_error(await client.get("/v1/positions"), 503, "brain_unavailable")
    finally:
        await writer.close()
        server.kill()
        if restarted is not None:
            restarted.kill()


async def test_api_started_before_the_brain_created_its_store(
    base_settings: Settings,
    store_settings: StoreSettings,
    history_url: str,
    history: AsyncEngine,
    tmp_path: Path,
) -> None:
    later = dataclasses.replace(store_settings, sqlite_path=str(tmp_path / "later" / "state.db"))
    settings = api_settings_for(
        base_settings, later, "sqlite", redis_url=None, history_url=history_url
    )
    async with serve(create_app(settings)) as client:
        response = await client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["data"]["store"] == "unavailable"
        assert_error(await client.get("/v1/portfolio"), 503, "brain_unavailable")

        brain = await open_test_store("sqlite", later, None)
        try:
            await brain_state.publish_state(brain)
            await wait_for_status(lambda: client.get("/v1/portfolio"), 200, "portfolio")
            await wait_for_status(lambda: client.get("/healthz"), 200, "healthy")
        finally:
            await brain.close()

"""Fixtures shared by the suite.

Services are real where the machine has them: Redis from TB_TEST_REDIS_URL, else a server
answering on 127.0.0.1:6379, else a redis-server the session starts, else fakeredis (then tests
marked ``real_redis`` are skipped). PostgreSQL runs when TB_TEST_DATABASE_URL is given
(an admin URL; each test gets a database of its own). With
TB_TEST_REQUIRE_SERVICES=1 (as in CI) a missing service fails the run instead of skipping.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.settings import Settings, StoreSettings
from shared.store.base import Store
from tests.support.replay import Replay, replay_fixture
from tests.support.services import RedisServer, port_answers

REQUIRE_SERVICES = os.environ.get("TB_TEST_REQUIRE_SERVICES") == "1"


def _missing(what: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required here (TB_TEST_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """URL of a real Redis for the session, or None when only fakeredis can be had
    (TB_TEST_FAKEREDIS=1 asks for fakeredis even when a server is there)."""
    if os.environ.get("TB_TEST_FAKEREDIS") == "1" and not REQUIRE_SERVICES:
        yield None
        return
    if url := os.environ.get("TB_TEST_REDIS_URL"):
        yield url
        return
    if port_answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    if RedisServer.available():
        server = RedisServer(tmp_path_factory.mktemp("redis"))
        server.start()
        yield server.url
        server.stop()
        return
    if REQUIRE_SERVICES:
        pytest.fail("a real Redis is required (TB_TEST_REQUIRE_SERVICES=1) but none is available")
    yield None


@pytest.fixture
def real_redis_url(redis_url: str | None) -> str:
    if redis_url is None:
        _missing("a real redis-server")
    assert redis_url is not None
    return redis_url


@pytest.fixture
def redis_server(tmp_path: Path, real_redis_url: str) -> Iterator[RedisServer]:
    """A redis-server of the test's own (append-only file on), for tests that kill it and
    start it again; ``real_redis_url`` says redis-server is there to be run."""
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def key_prefix(redis_url: str | None) -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"tbtest:{uuid.uuid4().hex[:12]}"
    yield prefix
    if redis_url is not None:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """The shipped defaults, with no environment overrides and no .env."""
    from shared.config import load_settings

    return load_settings(env={}, dotenv_path=None)


@pytest.fixture
def store_settings(base_settings: Settings, tmp_path: Path, key_prefix: str) -> StoreSettings:
    return dataclasses.replace(
        base_settings.store,
        sqlite_path=str(tmp_path / "state.db"),
        key_prefix=key_prefix,
        poll_interval=0.01,
        connect_attempts=2,
        connect_retry_delay=0.1,
    )


async def open_test_store(
    backend: str, store_settings: StoreSettings, redis_url: str | None, **options: Any
) -> Store:
    """A Store on the named backend: real Redis when there is one, fakeredis otherwise."""
    settings = dataclasses.replace(store_settings, backend=backend)
    if backend == "sqlite":
        from shared.store.sqlite_backend import SQLiteStore

        return await SQLiteStore.open(settings, **options)
    from shared.store.redis_backend import RedisStore

    if redis_url is not None:
        return await RedisStore.connect(redis_url, settings)
    import fakeredis

    server = fakeredis.FakeServer()
    return RedisStore(
        fakeredis.FakeAsyncRedis(server=server),
        fakeredis.FakeAsyncRedis(server=server),
        settings,
    )


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(
    backend: str, store_settings: StoreSettings, redis_url: str | None
) -> AsyncIterator[Store]:
    opened = await open_test_store(backend, store_settings, redis_url)
    yield opened
    await opened.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty SQL database: a SQLite file, or a new PostgreSQL database dropped after."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
        return
    admin_url = os.environ.get("TB_TEST_DATABASE_URL")
    if not admin_url:
        _missing("PostgreSQL (set TB_TEST_DATABASE_URL)")
    assert admin_url is not None
    yield from _fresh_postgres_database(admin_url)


def _fresh_postgres_database(admin_url: str) -> Iterator[str]:
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    name = f"tb_test_{uuid.uuid4().hex[:12]}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def redis_client(real_redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(real_redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session", params=["sqlite", "redis"])
def replay(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str | None,
) -> Iterator[Replay]:
    """The shipped three weeks replayed through the whole brain, once per session and backend."""
    yield from replay_fixture(request, tmp_path_factory, redis_url)

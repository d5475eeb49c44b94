"""Fixtures of the Telegram tests: a fake Bot API server, settings pointing at it, a store.

python-telegram-bot is the real library throughout; only Telegram's servers are replaced, by
``tests.support.bot_api_server`` on a loopback port (``[telegram] base_url``). On the Redis
backend a real server is needed: consumer groups are the point of these tests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from brain.telegram.service import TelegramService
from shared.config import load_settings
from shared.events import Event, EventName
from shared.settings import Settings
from shared.store.base import Store
from shared.store.factory import open_store
from tests.support.bot_api_server import BotApiServer

TOKEN = "123456:test-token-ABCdefGHIjklMNOpqr"
CHAT_ID = 777001
T0 = datetime(2024, 8, 5, 15, 30, tzinfo=UTC)


def telegram_env(server: BotApiServer) -> dict[str, str]:
    """Telegram settings for a test, as environment variables (a subprocess gets the same)."""
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_CHAT_ID": str(CHAT_ID),
        "TB_TELEGRAM__BASE_URL": server.base_url,
        "TB_TELEGRAM__RETRY_INITIAL": "0.05",
        "TB_TELEGRAM__RETRY_MAX": "0.5",
        "TB_TELEGRAM__POLL_TIMEOUT": "5",
        "TB_TELEGRAM__DRAIN_TIMEOUT": "3",
    }


def store_env(workdir: Path, backend: str, redis_url: str | None, prefix: str) -> dict[str, str]:
    env = {
        "TB_STORE__BACKEND": backend,
        "TB_STORE__SQLITE_PATH": str(workdir / "state.db"),
        "TB_STORE__KEY_PREFIX": prefix,
        "TB_STORE__POLL_INTERVAL": "0.01",
        "TB_DATABASE__SQLITE_PATH": str(workdir / "history.db"),
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


@pytest.fixture
async def bot_api() -> AsyncIterator[BotApiServer]:
    server = BotApiServer(TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def env(
    backend: str, tmp_path: Path, redis_url: str | None, key_prefix: str, bot_api: BotApiServer
) -> dict[str, str]:
    """Store and Telegram settings; on Redis, a real server (skipped without one)."""
    if backend == "redis" and redis_url is None:
        if os.environ.get("TB_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("a real Redis is required for Telegram on Redis")
        pytest.skip("Telegram on Redis needs a real redis-server (consumer groups)")
    url = redis_url if backend == "redis" else None
    return {**store_env(tmp_path, backend, url, key_prefix), **telegram_env(bot_api)}


def settings_of(env: dict[str, str], **overrides: str) -> Settings:
    return load_settings(env={**env, **overrides}, dotenv_path=None)


@pytest.fixture
async def store(env: dict[str, str]) -> AsyncIterator[Store]:
    opened = await open_store(settings_of(env))
    yield opened
    await opened.close()


class EventMaker:
    """Events with increasing ids, as the brain's outbox would number them."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self, name: EventName, **data: Any) -> Event:
        self._last += 1
        return Event(str(self._last), name, data, T0 + timedelta(minutes=self._last))


@pytest.fixture
def make_event() -> EventMaker:
    return EventMaker()


def trade(make_event: EventMaker, symbol: str = "BTC/USDT", action: str = "BUY") -> Event:
    return make_event(
        EventName.TRADE_EXECUTED,
        trade_id=7,
        symbol=symbol,
        action=action,
        qty=0.0015,
        price=64123.5,
        fee=0.0962,
        pnl=None if action == "BUY" else 1.25,
        pnl_pct=None if action == "BUY" else 1.3,
        strategy_version="v20240805_153000_ab12",
    )


@asynccontextmanager
async def running_relay(settings: Settings, store: Store) -> AsyncIterator[TelegramService]:
    """The relay alone (as ``tradingbrain telegram`` runs it), its group created on entry."""
    service = TelegramService.from_settings(settings, store.events)
    assert service.enabled
    await service.start()
    try:
        yield service
    finally:
        await service.stop()

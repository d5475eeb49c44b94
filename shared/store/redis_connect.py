"""Redis clients for the store: a connect, ping and retry factory, and error translation.

Two clients share nothing: a regular one for short commands, and one for blocking reads
(XREAD/XREADGROUP BLOCK) whose socket timeout outlasts the longest block. redis-py 8 defaults
``socket_timeout`` to 5 s, which would cut a longer block short.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.store.base import StoreUnavailable

log = logging.getLogger(__name__)

# The longest a blocking read may wait in one call, and the slack its socket gets beyond it.
MAX_BLOCK_SECONDS = 60.0
_BLOCKING_SOCKET_SLACK = 10.0
COMMAND_TIMEOUT_SECONDS = 5.0

# What "Redis is not there right now" looks like; BusyLoading is a restart replaying its AOF.
UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)


@asynccontextmanager
async def translate_errors(action: str) -> AsyncIterator[None]:
    """Turn connection-level Redis failures into StoreUnavailable."""
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        raise StoreUnavailable(f"redis unavailable while {action}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class RedisClients:
    commands: aioredis.Redis
    blocking: aioredis.Redis

    async def aclose(self) -> None:
        await self.commands.aclose()
        await self.blocking.aclose()


def describe(client: aioredis.Redis) -> str:
    """host:port/db of a client, never its password."""
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def make_clients(url: str) -> RedisClients:
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3)
    commands = aioredis.Redis.from_url(
        url,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=retry,
        health_check_interval=30,
    )
    blocking = aioredis.Redis.from_url(
        url,
        socket_timeout=MAX_BLOCK_SECONDS + _BLOCKING_SOCKET_SLACK,
        socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
        socket_keepalive=True,
        health_check_interval=30,
    )
    return RedisClients(commands, blocking)


async def connect(url: str, *, attempts: int, retry_delay: float) -> RedisClients:
    """Clients for ``url`` once Redis answers a PING; gives up after ``attempts`` tries."""
    clients = make_clients(url)
    where = describe(clients.commands)
    attempt = 1
    while True:
        try:
            await clients.commands.ping()
            return clients
        except UNAVAILABLE_ERRORS as exc:
            if attempt >= attempts:
                await clients.aclose()
                raise StoreUnavailable(
                    f"redis at {where} did not answer after {attempts} attempts: {exc}"
                ) from exc
            log.warning(
                "redis at %s not answering (attempt %d/%d): %s; retrying in %.1fs",
                where,
                attempt,
                attempts,
                exc,
                retry_delay,
            )
            attempt += 1
            await asyncio.sleep(retry_delay)


def block_ms(block: float) -> int | None:
    """XREAD's BLOCK argument for a wait of ``block`` seconds (None: do not block)."""
    if block < 0 or block > MAX_BLOCK_SECONDS:
        raise ValueError(f"block must be between 0 and {MAX_BLOCK_SECONDS} seconds, got {block}")
    return max(1, round(block * 1000)) if block > 0 else None


StreamEntry = tuple[bytes, dict[bytes, bytes] | None]


def stream_entries(reply: Any) -> list[StreamEntry]:
    """The entries of a one-stream XREAD/XREADGROUP reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(next(iter(reply.values()))[0])
    return list(reply[0][1])

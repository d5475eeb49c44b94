"""The event log on a Redis Stream, with consumer groups for side consumers.

Entry ids are ``<seq>-0`` where ``seq`` is the brain-assigned event id, so Redis itself refuses
a retried XADD of an id it already has (it must be greater than the stream's top item, which
Redis remembers even after trimming). Each entry holds the event's wire JSON in one field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from shared.events import Event
from shared.store.base import LOG_START, ConsumerGroup, LogBounds, event_seq
from shared.store.redis_connect import (
    RedisClients,
    StreamEntry,
    block_ms,
    stream_entries,
    translate_errors,
)

WIRE_FIELD = b"wire"
_STALE_ID_ERROR = "equal or smaller than the target stream top item"


def stream_id(event_id: str) -> str:
    return f"{event_seq(event_id)}-0"


def event_id(entry_id: bytes | str) -> str:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return text.partition("-")[0]


def _decode(entries: Sequence[StreamEntry]) -> list[Event]:
    return [Event.decode(fields[WIRE_FIELD]) for _, fields in entries if fields]


class RedisEventLog:
    def __init__(self, clients: RedisClients, stream: str, max_events: int) -> None:
        self._clients = clients
        self._stream = stream
        self._max_events = max_events

    async def append(self, events: Sequence[Event]) -> list[str]:
        if not events:
            return []
        async with translate_errors("appending events"):
            pipe = self._clients.commands.pipeline(transaction=False)
            for event in events:
                pipe.xadd(
                    self._stream,
                    {WIRE_FIELD: event.encode()},
                    id=stream_id(event.id),
                    maxlen=self._max_events,
                    approximate=True,
                )
            results = await pipe.execute(raise_on_error=False)
        appended = []
        for event, result in zip(events, results, strict=True):
            if isinstance(result, ResponseError):
                if _STALE_ID_ERROR in str(result):
                    continue  # already appended (a retry): refused, never duplicated
                raise result
            appended.append(event.id)
        return appended

    async def read(self, after: str, *, count: int = 100, block: float = 0.0) -> list[Event]:
        wait = block_ms(block)
        client = self._clients.blocking if wait else self._clients.commands
        async with translate_errors("reading events"):
            reply = await client.xread({self._stream: stream_id(after)}, count=count, block=wait)
        return _decode(stream_entries(reply))

    async def bounds(self) -> LogBounds:
        async with translate_errors("reading log bounds"):
            pipe = self._clients.commands.pipeline(transaction=True)
            pipe.xrange(self._stream, count=1)
            pipe.xrevrange(self._stream, count=1)
            first, last = await pipe.execute()
        if not first:
            return LogBounds(None, None)
        return LogBounds(event_id(first[0][0]), event_id(last[0][0]))

    def group(self, name: str, consumer: str, *, min_idle: float = 30.0) -> ConsumerGroup:
        return RedisConsumerGroup(self._clients, self._stream, name, consumer, min_idle)


class RedisConsumerGroup:
    """XREADGROUP / XACK / XAUTOCLAIM. A new handle first replays this consumer's own pending
    entries (what it was given before a restart and never acknowledged), then claims entries
    other consumers left idle past ``min_idle``, then reads new ones."""

    def __init__(
        self, clients: RedisClients, stream: str, name: str, consumer: str, min_idle: float
    ) -> None:
        self._clients = clients
        self._stream = stream
        self._name = name
        self._consumer = consumer
        self._min_idle_ms = round(min_idle * 1000)
        self._recovery_cursor: str | None = "0-0"  # None once own pending entries are replayed

    async def create(self, start_after: str = LOG_START) -> None:
        async with translate_errors("creating a consumer group"):
            try:
                await self._clients.commands.xgroup_create(
                    self._stream, self._name, id=stream_id(start_after), mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, *, count: int = 100, block: float = 0.0) -> list[Event]:
        async with translate_errors("reading a consumer group"):
            if self._recovery_cursor is not None:
                events = await self._read_own_pending(count)
                if events:
                    return events
            claimed = await self._claim_idle(count)
            if claimed:
                return claimed
            wait = block_ms(block)
            client = self._clients.blocking if wait else self._clients.commands
            reply = await client.xreadgroup(
                self._name, self._consumer, {self._stream: ">"}, count=count, block=wait
            )
        return _decode(stream_entries(reply))

    async def _read_own_pending(self, count: int) -> list[Event]:
        assert self._recovery_cursor is not None
        entries = stream_entries(
            await self._clients.commands.xreadgroup(
                self._name, self._consumer, {self._stream: self._recovery_cursor}, count=count
            )
        )
        if not entries:
            self._recovery_cursor = None
            return []
        self._recovery_cursor = entries[-1][0].decode()
        trimmed = [entry_id for entry_id, fields in entries if not fields]
        if trimmed:  # their events were trimmed away: nothing left to deliver
            await self._clients.commands.xack(self._stream, self._name, *trimmed)
        return _decode(entries) or await self._read_own_pending(count)

    async def _claim_idle(self, count: int) -> list[Event]:
        reply: Any = await self._clients.commands.xautoclaim(
            self._stream, self._name, self._consumer, self._min_idle_ms, "0-0", count=count
        )
        return _decode(reply[1])

    async def ack(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        async with translate_errors("acknowledging events"):
            await self._clients.commands.xack(
                self._stream, self._name, *(stream_id(i) for i in ids)
            )

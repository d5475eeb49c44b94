"""A loopback HTTP/1.1 JSON server, for the tests' look-alikes of outside APIs.

``LoopbackHttpServer(handler)`` listens on 127.0.0.1 (a free port), reads each request's head
and ``Content-Length`` body, and answers with what the async ``handler`` returns, as JSON,
keeping the connection open for the next request (keep-alive). A handler may hold a request
as long as it likes (a long poll, a request never answered): ``stop()`` cancels every
connection it still holds, quietly. A handler that raises ``HangUp`` closes the connection
without answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


class HangUp(Exception):
    """Raised by a handler: close the connection without answering."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str  # the request target as sent: path and query
    headers: Mapping[str, str]  # names in lower case
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        """The query parameters; the last value where a name repeats."""
        return {key: values[-1] for key, values in parse_qs(urlsplit(self.target).query).items()}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: Any = None  # sent as JSON; ``bytes`` are sent as they are
    headers: tuple[tuple[str, str], ...] = ()  # besides the usual ones

    def encode(self) -> bytes:
        payload = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Unknown"
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.headers)
        head = (
            f"HTTP/1.1 {self.status} {reason}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
        )
        return head.encode("latin-1") + payload


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class LoopbackHttpServer:
    """The server: ``handler`` answers each request; ``start()`` picks a free port."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._port = 0

    @property
    def port(self) -> int:
        """The port listened on (0 before ``start()``)."""
        return self._port

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and end every connection, held requests included."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:  # HTTP/1.1 keep-alive: one request after another on this connection
                response = await self._handler(await read_request(reader))
                writer.write(response.encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, HangUp):
            pass
        except asyncio.CancelledError:
            # stop() cancels a held request; ending normally keeps asyncio's stream callback
            # from logging the cancellation as an error.
            pass
        finally:
            self._connections.discard(task)
            writer.close()


class LoopbackApi:
    """A base for a look-alike served by a ``LoopbackHttpServer`` of its own: it writes
    ``_handle``, and gets ``port``, ``start()``, ``stop()`` and ``async with``."""

    @cached_property
    def _http(self) -> LoopbackHttpServer:
        return LoopbackHttpServer(self._handle)

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    @property
    def port(self) -> int:
        """The port listened on (0 before ``start()``)."""
        return self._http.port

    async def start(self) -> None:
        await self._http.start()

    async def stop(self) -> None:
        """Stop listening and end every connection, held requests included."""
        await self._http.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def read_request(reader: asyncio.StreamReader) -> HttpRequest:
    """One request off the connection: its head, then its ``Content-Length`` body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return HttpRequest(method, target, headers, body)

"""``GET /v1/events``: the WebSocket relay of the brain's event log (protocol: docs/events.md).

One ``EventsEndpoint`` per API process owns the process's ``EventHub`` (started and stopped by
the lifespan) and serves every connection:

1. the handshake: a key in the ``Authorization`` header or the ``token`` query parameter is
   checked before accepting (a bad one is refused with HTTP 401); the process's client limit
   and the log's availability are checked too (HTTP 503 with Retry-After);
2. after accepting, a client that presented no key must send ``{"op": "auth", "token": ...}``
   within the auth timeout (else close 4401); then the query is parsed (else close 4400);
3. with ``last_event_id`` the client first catches up from the log with reads of its own, then
   attaches to the hub once its position has reached the hub's (no gap, no duplicate); without
   it, it attaches live at once;
4. a writer task drains the client's bounded queue (and sends heartbeats) while a watcher task
   reads what the client sends, until either ends; the stream is then closed with the reason
   the hub or the writer recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.auth import KeyChecker, unauthorized
from api.errors import ApiError, ErrorCode
from api.events_auth import auth_message_token, presented_key, redact_query_tokens
from api.events_hub import OUTAGE_REASON, EventHub, Subscription
from api.events_protocol import (
    PATH,
    CloseCode,
    Frame,
    ProtocolError,
    StreamRequest,
    heartbeat,
    replay_incomplete,
    symbol_of,
)
from api.metrics import ApiMetrics
from shared.settings import ApiSettings
from shared.store.base import EventLog, StoreUnavailable, event_seq

log = logging.getLogger(__name__)

CATCH_UP_COUNT = 1000  # events one catch-up read may return
CATCH_UP_READERS = 8  # catch-up reads of this process running at once (a reconnect storm)
CLOSE_TIMEOUT = 2.0  # seconds to get a close frame out before dropping the connection
MAX_CLIENT_MESSAGE = 64 * 1024  # clients send one small auth message at most
RETRY_AFTER_OUTAGE = "1"
RETRY_AFTER_FULL = "5"

# deny(code, message, status, headers): an HTTP refusal in the error envelope.
Deny = Callable[[str, str, int, Mapping[str, str]], Response]


class _ClientGone(Exception):
    """The client disconnected; nothing is left to send or close."""


class EventsEndpoint:
    """The ASGI app of /v1/events, and the lifecycle of the process's event hub."""

    def __init__(
        self,
        checker: KeyChecker,
        deny: Deny,
        *,
        send_queue: int,
        max_clients: int,
        heartbeat_interval: float,
        auth_timeout: float,
        outage_grace: float,
        retry_initial: float,
        retry_max: float,
        metrics: ApiMetrics | None = None,
    ) -> None:
        self._checker = checker
        self._deny = deny
        self._send_queue = send_queue
        self._max_clients = max_clients
        self._heartbeat_interval = heartbeat_interval
        self._auth_timeout = auth_timeout
        self._outage_grace = outage_grace
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._metrics = metrics
        self._hub: EventHub | None = None
        self._connections = 0
        self._unreported = 0  # frames sent and not yet added to the metrics counter
        self._catch_up_readers = asyncio.Semaphore(CATCH_UP_READERS)

    @classmethod
    def from_settings(
        cls, api: ApiSettings, checker: KeyChecker, deny: Deny, metrics: ApiMetrics | None
    ) -> EventsEndpoint:
        """The endpoint as the ``[api]`` settings (``ws_*``, ``retry_*``) configure it."""
        return cls(
            checker,
            deny,
            send_queue=api.ws_send_queue,
            max_clients=api.ws_max_clients,
            heartbeat_interval=api.ws_heartbeat_interval,
            auth_timeout=api.ws_auth_timeout,
            outage_grace=api.ws_outage_grace,
            retry_initial=api.retry_initial,
            retry_max=api.retry_max,
            metrics=metrics,
        )

    @property
    def hub(self) -> EventHub:
        if self._hub is None:
            raise RuntimeError("the event relay is not started (no lifespan has run)")
        return self._hub

    @property
    def connections(self) -> int:
        return self._connections

    def routes(self) -> list[BaseRoute]:
        """The stream, and for a plain HTTP request to its path, 426 (not a puzzling 404)."""
        return [
            WebSocketRoute(PATH, self, name="events"),
            Route(PATH, _upgrade_required, methods=["GET"], name="events_http"),
        ]

    async def start(self, events: EventLog) -> None:
        """Start the process's single log reader on ``events`` (in the lifespan)."""
        redact_query_tokens()
        self._hub = EventHub(
            events,
            heartbeat_interval=self._heartbeat_interval,
            outage_grace=self._outage_grace,
            retry_initial=self._retry_initial,
            retry_max=self._retry_max,
            on_tick=self._report,
        )
        await self._hub.start()

    async def stop(self) -> None:
        if self._hub is not None:
            await self._hub.stop()
            self._hub = None
        self._report()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        query = QueryParams(scope["query_string"])
        presented = presented_key(scope, query)
        refusal = self._refusal(presented)
        if refusal is not None:
            if "websocket.http.response" in scope.get("extensions", {}):
                await websocket.send_denial_response(refusal)
            else:  # a server without the denial extension answers 403
                await websocket.close(CloseCode.TRY_AGAIN_LATER)
            return
        self._connections += 1
        if self._metrics is not None:
            self._metrics.websocket_clients.inc()
        try:
            await websocket.accept()
            await self._serve(websocket, query, authenticated=presented is not None)
        except _ClientGone:
            pass
        except ProtocolError as error:
            await _close(websocket, error.code, error.reason)
        finally:
            self._connections -= 1
            if self._metrics is not None:
                self._metrics.websocket_clients.dec()

    def _refusal(self, presented: bytes | None) -> Response | None:
        """The HTTP answer refusing this handshake, if it must be refused."""
        if presented is not None and not self._checker.check(presented):
            error = unauthorized(presented=True)
            return self._deny(error.code.value, error.message, error.status, error.headers)
        if self._hub is None or not self._hub.available:
            return self._deny(
                "brain_unavailable", OUTAGE_REASON, 503, {"Retry-After": RETRY_AFTER_OUTAGE}
            )
        if self._connections >= self._max_clients:
            message = (
                f"this API process serves its maximum of {self._max_clients} event streams; "
                "retry later or connect to another replica"
            )
            return self._deny("too_many_clients", message, 503, {"Retry-After": RETRY_AFTER_FULL})
        return None

    async def _serve(
        self, websocket: WebSocket, query: QueryParams, *, authenticated: bool
    ) -> None:
        if not authenticated:
            await self._authenticate(websocket)
        request = StreamRequest.parse(query)
        hub = self._hub
        if hub is None:  # stopped while this client was authenticating
            raise ProtocolError(CloseCode.GOING_AWAY, "the relay stopped")
        subscription = Subscription(request.filter, limit=self._send_queue)
        hub.join(subscription)
        try:
            await self._run(websocket, hub, subscription, request.last_event_id)
        finally:
            hub.leave(subscription)

    async def _authenticate(self, websocket: WebSocket) -> None:
        """Wait for ``{"op": "auth", "token": "<key>"}`` as the first message."""
        try:
            message = await asyncio.wait_for(websocket.receive(), self._auth_timeout)
        except TimeoutError:
            raise ProtocolError(
                CloseCode.UNAUTHORIZED,
                f"unauthorized: no auth message within {self._auth_timeout:g}s",
            ) from None
        if message["type"] == "websocket.disconnect":
            raise _ClientGone
        token = auth_message_token(message.get("text"))
        if token is None:
            raise ProtocolError(
                CloseCode.UNAUTHORIZED,
                'unauthorized: the first message must be {"op": "auth", "token": "<key>"}',
            )
        if not self._checker.check(token):
            raise ProtocolError(CloseCode.UNAUTHORIZED, "unauthorized: the API key is not valid")

    async def _run(
        self, websocket: WebSocket, hub: EventHub, subscription: Subscription, after: str | None
    ) -> None:
        writer = asyncio.create_task(self._write(websocket, hub, subscription, after))
        subscription.interrupt = writer.cancel
        watcher = asyncio.create_task(_watch(websocket))
        try:
            await asyncio.wait((writer, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            subscription.interrupt = None
            for task in (writer, watcher):
                task.cancel()
            await asyncio.gather(writer, watcher, return_exceptions=True)
        if watcher.done() and not watcher.cancelled():
            return  # the client left
        closing = subscription.closing
        if closing is None:
            error = None if writer.cancelled() else writer.exception()
            if isinstance(error, WebSocketDisconnect):
                return
            log.error("event stream failed", exc_info=error)
            closing = (CloseCode.INTERNAL_ERROR, "internal error")
        await _close(websocket, *closing)

    async def _write(
        self, websocket: WebSocket, hub: EventHub, subscription: Subscription, after: str | None
    ) -> None:
        if subscription.closed:  # on joining: the log became unavailable meanwhile
            return
        if after is None:
            hub.attach_live(subscription)  # the hub's position is known while it is available
        else:
            try:
                await self._catch_up(websocket, hub, subscription, after)
            except StoreUnavailable:
                subscription.close(CloseCode.TRY_AGAIN_LATER, OUTAGE_REASON)
        await self._pump(websocket, subscription)

    async def _catch_up(
        self, websocket: WebSocket, hub: EventHub, subscription: Subscription, after: str
    ) -> None:
        """Send what the log holds after ``after`` until the hub's position is reached, then
        attach (in the same step as the last check, so the hub hands over the rest)."""
        events_log = hub.events
        bounds = await events_log.bounds()
        position = event_seq(after)
        if not bounds.covers(after):
            await websocket.send(replay_incomplete(after, bounds.oldest))
            position = event_seq(bounds.oldest) - 1 if bounds.oldest is not None else 0
        subscription.position = position
        wants = subscription.filter.accepts
        while not hub.attach_if_caught_up(subscription):
            if subscription.closed:
                return
            if hub.position is None:
                subscription.close(CloseCode.TRY_AGAIN_LATER, OUTAGE_REASON)
                return
            async with self._catch_up_readers:
                events = await events_log.read(str(position), count=CATCH_UP_COUNT)
            if (not events or event_seq(events[0].id) != position + 1) and not (
                await events_log.bounds()
            ).covers(str(position)):
                subscription.close(
                    CloseCode.SLOW_CONSUMER,
                    "fell behind the log's retention while catching up; reconnect",
                )
                return
            if not events:  # an emptied log (a reset) holds nothing more: go live
                hub.attach_live(subscription)
                break
            sent = 0
            for event in events:
                if wants(event.name, symbol_of(event)):
                    await websocket.send(Frame.of(event).message)
                    sent += 1
            position = subscription.position = event_seq(events[-1].id)
            self._relayed(sent)
        subscription.last_sent = time.monotonic()

    async def _pump(self, websocket: WebSocket, subscription: Subscription) -> None:
        """Send the client's queued frames as the hub offers them, and heartbeats in silence."""
        send = websocket.send
        frames = subscription.frames
        ready = subscription.ready
        while True:
            await ready.wait()
            ready.clear()
            if frames:
                sent = 0
                while frames:
                    await send(frames.popleft().message)
                    sent += 1
                subscription.last_sent = time.monotonic()
                self._relayed(sent)
            if subscription.closed:
                return
            if subscription.heartbeat_due:
                subscription.heartbeat_due = False
                await send(heartbeat(subscription.position))
                subscription.last_sent = time.monotonic()

    def _relayed(self, count: int) -> None:
        self._unreported += count

    def _report(self) -> None:
        """Add the frames sent since the last report to the metrics (once a second, from the
        hub's ticker: a counter update per send would cost a lock per frame)."""
        if self._unreported and self._metrics is not None:
            self._metrics.events_relayed.inc(self._unreported)
        self._unreported = 0


async def _watch(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it disconnects."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Send a close frame if it can get out in time; a client that stopped reading is dropped."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT)


def uvicorn_ws_settings(api: ApiSettings) -> dict[str, Any]:
    """uvicorn's WebSocket options for serving /v1/events (``uvicorn.run(**...)``)."""
    return {
        "ws_ping_interval": api.ws_ping_interval,
        "ws_ping_timeout": api.ws_ping_timeout,
        "ws_per_message_deflate": api.ws_permessage_deflate,
        "ws_max_size": MAX_CLIENT_MESSAGE,
    }


async def _upgrade_required(request: Request) -> Response:
    raise ApiError(
        ErrorCode.UPGRADE_REQUIRED,
        f"{PATH} is a WebSocket stream: connect with a WebSocket client (docs/events.md)",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )

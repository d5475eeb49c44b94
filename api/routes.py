"""Route handlers: a few lines each, from the request to the facade to the envelope.

Snapshot endpoints are the hot path (dashboards poll them): each is a small ASGI app that
answers from the cache without building a Request or parsing an empty query string. The
others are ordinary Starlette endpoints. Handlers reach the runtime they were built with.
"""

from __future__ import annotations

import math

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from api.metrics import CONTENT_TYPE
from api.openapi import OPENAPI_PATH
from api.params import history_query, no_parameters, performance_query
from api.responses import JsonResponse
from api.runtime import ApiRuntime
from shared.store.base import SnapshotName

GET = ["GET"]
SNAPSHOT_PATHS = {
    SnapshotName.PORTFOLIO: "/v1/portfolio",
    SnapshotName.POSITIONS: "/v1/positions",
    SnapshotName.RISK: "/v1/risk",
    SnapshotName.MARKET: "/v1/market",
    SnapshotName.STRATEGY: "/v1/strategy",
    SnapshotName.AI_USAGE: "/v1/ai/usage",
    SnapshotName.BENCHMARKS: "/v1/benchmarks",
}


def _refuse_parameters(scope: Scope) -> None:
    if scope["query_string"]:
        no_parameters(QueryParams(scope["query_string"]))


class SnapshotEndpoint:
    """GET one cached snapshot document (an ASGI app: no Request object, no I/O)."""

    def __init__(self, runtime: ApiRuntime, name: SnapshotName) -> None:
        self.runtime = runtime
        self.name = name
        self.__name__ = name.value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        _refuse_parameters(scope)
        api = self.runtime
        await api.envelope.data(api.facade.snapshot(self.name))(scope, receive, send)


class RestHandlers:
    """The other endpoints, as methods bound to one runtime."""

    def __init__(self, runtime: ApiRuntime) -> None:
        self.api = runtime

    async def system(self, request: Request) -> Response:
        _refuse_parameters(request.scope)
        return self.api.envelope.data(self.api.facade.system())

    async def trades(self, request: Request) -> Response:
        query = history_query(request.query_params, with_action=False)
        return self.api.envelope.data(await self.api.facade.trades(query))

    async def signals(self, request: Request) -> Response:
        query = history_query(request.query_params, with_action=True)
        return self.api.envelope.data(await self.api.facade.signals(query))

    async def performance(self, request: Request) -> Response:
        query = performance_query(request.query_params)
        return self.api.envelope.data(await self.api.facade.performance(query))

    async def openapi(self, request: Request) -> Response:
        _refuse_parameters(request.scope)
        return JsonResponse(self.api.openapi_document)

    async def healthz(self, request: Request) -> Response:
        health = await self.api.facade.health()
        return self.api.envelope.data(health.as_data(), status=200 if health.healthy else 503)

    async def metrics(self, request: Request) -> Response:
        api = self.api
        age = api.facade.heartbeat_age()
        lag = await api.facade.revision_lag()
        api.metrics.heartbeat_age.set(math.nan if age is None else age)
        api.metrics.revision_lag.set(math.nan if lag is None else lag)
        api.metrics.snapshot_revision.set(api.cache.revision)
        api.metrics.store_connected.set(1 if api.cache.connected else 0)
        return Response(api.metrics.exposition(), media_type=CONTENT_TYPE)


def build_routes(runtime: ApiRuntime) -> list[BaseRoute]:
    """Every REST route. (The WebSocket route /v1/events is added beside these.)"""
    handlers = RestHandlers(runtime)
    snapshots = [
        Route(path, SnapshotEndpoint(runtime, name), methods=GET, name=name.value)
        for name, path in SNAPSHOT_PATHS.items()
    ]
    return [
        *snapshots,
        Route("/v1/system", handlers.system, methods=GET),
        Route("/v1/trades", handlers.trades, methods=GET),
        Route("/v1/performance", handlers.performance, methods=GET),
        Route("/v1/signals", handlers.signals, methods=GET),
        Route(OPENAPI_PATH, handlers.openapi, methods=GET),
        Route("/healthz", handlers.healthz, methods=GET),
        Route("/metrics", handlers.metrics, methods=GET),
    ]

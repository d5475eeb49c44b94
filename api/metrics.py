"""Prometheus metrics of the Data API (prometheus-client), correct with several workers.

Requests are timed by route template, method and status (the histogram's ``_count`` is the
request count); the brain's heartbeat
age and the cache's revision lag are measured when /metrics is scraped. With
``PROMETHEUS_MULTIPROC_DIR`` set (``tradingbrain api --workers N`` sets it before the workers
start) every worker writes its values to files there and a scrape, served by any worker,
aggregates them all: counters and histograms sum, gauges as each one's ``multiprocess_mode``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "tradingbrain_api"
UNMATCHED_ROUTE = "<unmatched>"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None


class ApiMetrics:
    """The API's metrics in a registry of their own (never the global default registry)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        registry = self.registry = CollectorRegistry(auto_describe=True)
        labels = ("route", "method", "status")
        # One histogram: its _count series is the request count by route, method, status.
        self.requests = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time to answer an HTTP request (its _count: requests answered)",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.websocket_clients = Gauge(
            f"{PREFIX}_websocket_clients",
            "WebSocket clients connected",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.events_relayed = Counter(
            f"{PREFIX}_events_relayed", "Events relayed to WebSocket clients", registry=registry
        )
        self.heartbeat_age = Gauge(
            f"{PREFIX}_brain_heartbeat_age_seconds",
            "Seconds since the brain's newest heartbeat (NaN: none seen)",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.snapshot_revision = Gauge(
            f"{PREFIX}_snapshot_revision",
            "Store revision of the snapshots this process serves",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.revision_lag = Gauge(
            f"{PREFIX}_snapshot_revision_lag",
            "Store revisions the snapshot cache is behind at scrape time (NaN: store down)",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.store_connected = Gauge(
            f"{PREFIX}_store_connected",
            "1 when the snapshot follower's last store call succeeded",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self._children: dict[tuple[str, str, int], Any] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(route, method, str(status))
        child.observe(seconds)

    def exposition(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return generate_latest(collected)

    def close(self) -> None:
        """Mark this worker's live gauges dead (multiprocess mode), at shutdown."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


CONTENT_TYPE = CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics, paths: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = frozenset(paths)  # routes' paths, to label requests refused before routing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or scope["path"]
            label = path if path in self.paths else UNMATCHED_ROUTE
            self.metrics.observe(label, scope["method"], status, time.perf_counter() - started)

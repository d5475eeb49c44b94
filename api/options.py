"""The Data API's options: the ``[api]`` settings plus the knobs not (yet) in ``Settings``.

``ApiOptions.from_settings`` reads each knob from ``settings.api`` when that section has it
and otherwise falls back to the default below. The defaults marked PENDING-SETTING are meant to
move into ``[api]`` in config/settings.toml (with ``shared/settings.py`` types); once a key is
there, this module picks it up without a change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from shared.settings import Settings

# PENDING-SETTING defaults: each is `[api] <name>` once added to the settings.
DEFAULT_CORS_ORIGINS: tuple[str, ...] = ()  # browser origins allowed (CORS); empty: CORS off
DEFAULT_METRICS_PUBLIC = False  # serve /metrics without the bearer key
DEFAULT_STALE_AFTER = 15.0  # seconds without a heartbeat before /v1/system says "stale"
DEFAULT_WORKERS = 1  # uvicorn worker processes for `tradingbrain api`
DEFAULT_FOLLOW_BLOCK = 5.0  # seconds one snapshot follower read may block
DEFAULT_RETRY_INITIAL = 0.1  # first pause after the store failed, doubling ...
DEFAULT_RETRY_MAX = 5.0  # ... up to this cap (seconds)
DEFAULT_QUERY_TIMEOUT = 10.0  # seconds a history query may take before 503
DEFAULT_HEALTH_TIMEOUT = 2.0  # seconds /healthz waits for the store and the database
DEFAULT_ACCESS_LOG = False  # uvicorn's per-request access log lines
DEFAULT_HISTORY_CACHE_ENTRIES = 128  # encoded history pages kept per process (0: none)
# The /v1/events WebSocket relay (docs/events.md).
DEFAULT_WS_SEND_QUEUE = 1000  # events waiting for one client before it is cut off (4408)
DEFAULT_WS_MAX_CLIENTS = 2000  # event streams one process serves; beyond: HTTP 503
DEFAULT_WS_HEARTBEAT_INTERVAL = 15.0  # seconds of silence before a heartbeat frame
DEFAULT_WS_AUTH_TIMEOUT = 5.0  # seconds to send {"op": "auth", ...} without a key (else 4401)
DEFAULT_WS_OUTAGE_GRACE = 3.0  # seconds the event log may fail before clients get 1013
DEFAULT_WS_PING_INTERVAL = 20.0  # uvicorn's protocol pings, every this many seconds ...
DEFAULT_WS_PING_TIMEOUT = 20.0  # ... and the wait for their pong before dropping the client
DEFAULT_WS_PERMESSAGE_DEFLATE = False  # compression: costly with many clients


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """Everything the API process needs to know besides the store and database settings."""

    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    metrics_public: bool = DEFAULT_METRICS_PUBLIC
    stale_after: float = DEFAULT_STALE_AFTER
    workers: int = DEFAULT_WORKERS
    follow_block: float = DEFAULT_FOLLOW_BLOCK
    retry_initial: float = DEFAULT_RETRY_INITIAL
    retry_max: float = DEFAULT_RETRY_MAX
    query_timeout: float = DEFAULT_QUERY_TIMEOUT
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT
    access_log: bool = DEFAULT_ACCESS_LOG
    history_cache_entries: int = DEFAULT_HISTORY_CACHE_ENTRIES
    ws_send_queue: int = DEFAULT_WS_SEND_QUEUE
    ws_max_clients: int = DEFAULT_WS_MAX_CLIENTS
    ws_heartbeat_interval: float = DEFAULT_WS_HEARTBEAT_INTERVAL
    ws_auth_timeout: float = DEFAULT_WS_AUTH_TIMEOUT
    ws_outage_grace: float = DEFAULT_WS_OUTAGE_GRACE
    ws_ping_interval: float = DEFAULT_WS_PING_INTERVAL
    ws_ping_timeout: float = DEFAULT_WS_PING_TIMEOUT
    ws_permessage_deflate: bool = DEFAULT_WS_PERMESSAGE_DEFLATE

    def __post_init__(self) -> None:
        checks = {
            "stale_after": 0.0 < self.stale_after <= 86_400.0,
            "workers": 1 <= self.workers <= 64,
            "follow_block": 0.0 < self.follow_block <= 60.0,
            "retry_initial": 0.0 < self.retry_initial <= self.retry_max,
            "retry_max": 0.0 < self.retry_max <= 3600.0,
            "query_timeout": 0.0 < self.query_timeout <= 3600.0,
            "health_timeout": 0.0 < self.health_timeout <= 60.0,
            "history_cache_entries": 0 <= self.history_cache_entries <= 100_000,
            "ws_send_queue": 1 <= self.ws_send_queue <= 1_000_000,
            "ws_max_clients": 1 <= self.ws_max_clients <= 100_000,
            "ws_heartbeat_interval": 0.0 < self.ws_heartbeat_interval <= 3600.0,
            "ws_auth_timeout": 0.0 < self.ws_auth_timeout <= 60.0,
            "ws_outage_grace": 0.0 <= self.ws_outage_grace <= 3600.0,
            "ws_ping_interval": 0.0 < self.ws_ping_interval <= 3600.0,
            "ws_ping_timeout": 0.0 < self.ws_ping_timeout <= 3600.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"api options out of range: {', '.join(bad)}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ApiOptions:
        """The options of ``settings.api``; missing keys take the defaults above."""
        api = settings.api
        values: dict[str, Any] = {"host": api.host, "port": api.port}
        for field in dataclasses.fields(cls):
            if field.name not in values and hasattr(api, field.name):
                values[field.name] = getattr(api, field.name)
        if "cors_origins" in values:
            values["cors_origins"] = tuple(values["cors_origins"])
        values.update(overrides)
        return cls(**values)

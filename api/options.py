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

"""The brain's heartbeat document, as the brain writes it and its readers judge it (the Data
API's /v1/system and /healthz, ``tradingbrain health``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.timeutil import read_iso, to_iso


def heartbeat_document(now: datetime, market_time: datetime | None) -> dict[str, Any]:
    """``at``: when it was written (wall clock); the brain's process and market time."""
    return {
        "at": to_iso(now),
        "pid": os.getpid(),
        "market_time": to_iso(market_time) if market_time is not None else None,
    }


def heartbeat_age(heartbeat: Any, now: datetime) -> float | None:
    """Seconds since the heartbeat was written; None when there is none or it is unreadable.
    A writer's clock ahead of ours counts as fresh (0)."""
    beat = read_iso(heartbeat.get("at")) if isinstance(heartbeat, Mapping) else None
    return None if beat is None else max(0.0, (now - beat).total_seconds())

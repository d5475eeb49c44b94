"""``/v1/system``: the brain's system snapshot, with its liveness told from its heartbeat.

- ``stopped``: the system snapshot says so (the brain wrote it on shutdown);
- ``stale``: no heartbeat, or the newest is older than ``stale_after`` seconds;
- ``running``: otherwise.

The uptime is counted from ``started_at`` while the brain is not stopped (null once stopped).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.heartbeat import heartbeat_age
from shared.timeutil import read_iso

RUNNING = "running"
STALE = "stale"
STOPPED = "stopped"

# The plan's fields of /v1/system, in its order, then what this API adds.
_PASSED_THROUGH = ("mode", "version", "started_at", "last_scan", "paused", "halted", "halt_reason")
_EXTRA = ("feed", "market_time")


def liveness(system: Mapping[str, Any], age: float | None, stale_after: float) -> str:
    if system.get("status") == STOPPED:
        return STOPPED
    if age is None or age > stale_after:
        return STALE
    return RUNNING


def system_view(
    system: Mapping[str, Any],
    heartbeat: Mapping[str, Any] | None,
    now: datetime,
    stale_after: float,
) -> dict[str, Any]:
    """The /v1/system document of a system snapshot and a heartbeat, at ``now``."""
    age = heartbeat_age(heartbeat, now)
    status = liveness(system, age, stale_after)
    started = read_iso(system.get("started_at"))
    uptime = None
    if status != STOPPED and started is not None:
        uptime = max(0, int((now - started).total_seconds()))
    view: dict[str, Any] = {"status": status, "uptime_seconds": uptime}
    for key in (*_PASSED_THROUGH, *_EXTRA):
        view[key] = system.get(key)
    view["mode"] = view["mode"] or "paper"
    view["paused"] = bool(view["paused"])
    view["halted"] = bool(view["halted"])
    view["heartbeat_at"] = (
        heartbeat.get("at") if heartbeat is not None and age is not None else None
    )
    view["heartbeat_age_seconds"] = None if age is None else round(age, 3)
    return view

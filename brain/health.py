"""``tradingbrain health``: is the brain alive? Its heartbeat, judged as the Data API judges it.

Meant for container health checks. It loads the settings, opens the configured store
read-only (one connection attempt: the health checker does the retrying), reads the
``heartbeat`` snapshot the brain rewrites every ``[brain] heartbeat_interval`` seconds, and
exits 0 when the newest beat is at most ``[api] stale_after`` seconds old, the limit after
which ``/v1/system`` says ``stale``. It exits 1 with a one-line reason when there is no
heartbeat, it is stale or unreadable, or the store does not answer in time.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.cli import Command
from shared.config import load_settings
from shared.heartbeat import heartbeat_age
from shared.logs import configure_logging
from shared.settings import Settings
from shared.store.base import SnapshotName, StoreError
from shared.store.factory import open_store
from shared.timeutil import utc_now

HEALTHY = 0
UNHEALTHY = 1
DEFAULT_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class HealthReport:
    healthy: bool
    reason: str

    @property
    def exit_code(self) -> int:
        return HEALTHY if self.healthy else UNHEALTHY


def judge_heartbeat(heartbeat: Any, now: datetime, stale_after: float) -> HealthReport:
    """Whether a heartbeat document (None: there is none) is at most ``stale_after`` s old."""
    if heartbeat is None:
        return HealthReport(False, "no heartbeat: the brain has not started, or not on this store")
    age = heartbeat_age(heartbeat, now)
    if age is None:
        return HealthReport(False, f"heartbeat unreadable: {heartbeat!r:.80}")
    if age > stale_after:
        return HealthReport(
            False, f"heartbeat stale: {age:.1f} s old (stale after {stale_after:g} s)"
        )
    return HealthReport(True, f"ok: heartbeat {age:.1f} s old")


async def check_heartbeat(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now
) -> HealthReport:
    """Read the brain's heartbeat from the configured store and judge it."""
    once = dataclasses.replace(settings.store, connect_attempts=1)
    try:
        store = await open_store(dataclasses.replace(settings, store=once), read_only=True)
    except StoreError as error:
        return HealthReport(False, f"store unavailable: {error}")
    try:
        snapshots = await store.snapshots.read()
    except StoreError as error:
        return HealthReport(False, f"store unavailable: {error}")
    finally:
        await store.close()
    found = snapshots.docs.get(SnapshotName.HEARTBEAT)
    return judge_heartbeat(found.data if found else None, clock(), settings.api.stale_after)


def _configure_health(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the store (default {DEFAULT_TIMEOUT:g})",
    )


def _run_health(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging("ERROR", secrets=settings.secrets)  # the one line below is the output
    try:
        report = asyncio.run(asyncio.wait_for(check_heartbeat(settings), args.timeout))
    except TimeoutError:
        report = HealthReport(False, f"store unavailable: no answer within {args.timeout:g} s")
    print(report.reason, file=sys.stdout if report.healthy else sys.stderr)
    return report.exit_code


health_command = Command(
    help="exit 0 when the brain's heartbeat is fresh, 1 when it is missing or stale",
    configure=_configure_health,
    run=_run_health,
)

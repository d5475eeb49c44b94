"""``tradingbrain health``: the brain's heartbeat, read from a real store, fresh or not."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from brain.health import HEALTHY, UNHEALTHY, check_heartbeat, judge_heartbeat
from brain.publisher import Heartbeat
from shared.config import load_settings
from shared.settings import Settings
from shared.store.base import SnapshotName
from shared.store.factory import open_store
from tests.support.services import free_port
from tests.test_cli import tradingbrain_script


def settings_in(workdir: Path, **env: str) -> dict[str, str]:
    return {"TB_STORE__SQLITE_PATH": str(workdir / "state.db"), **env}


async def beat(settings: Settings, *, market_time: datetime | None = None) -> datetime:
    """Write one heartbeat as the brain does; returns when (about) it was written."""
    store = await open_store(settings)
    try:
        heartbeat = Heartbeat(store.snapshots, 5.0, lambda: market_time)
        await store.snapshots.write({SnapshotName.HEARTBEAT: heartbeat.document()})
    finally:
        await store.close()
    return datetime.now(UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env=settings_in(tmp_path), dotenv_path=None)


async def test_a_fresh_heartbeat_is_healthy(settings: Settings) -> None:
    await beat(settings, market_time=datetime(2024, 8, 5, tzinfo=UTC))
    report = await check_heartbeat(settings)
    assert report.healthy
    assert report.exit_code == HEALTHY
    assert report.reason.startswith("ok: heartbeat ")


async def test_no_heartbeat_is_unhealthy(settings: Settings) -> None:
    report = await check_heartbeat(settings)  # the store file does not even exist yet
    assert not report.healthy
    assert report.exit_code == UNHEALTHY
    assert report.reason.startswith("no heartbeat")
    # A store the brain created but has not beaten in yet says the same.
    store = await open_store(settings)
    await store.close()
    assert (await check_heartbeat(settings)).reason.startswith("no heartbeat")


async def test_a_stale_heartbeat_is_unhealthy(settings: Settings) -> None:
    written = await beat(settings)
    stale_after = settings.api.stale_after

    def later(seconds: float) -> datetime:
        return written + timedelta(seconds=seconds)

    just_in_time = await check_heartbeat(settings, clock=lambda: later(stale_after - 1))
    assert just_in_time.healthy
    report = await check_heartbeat(settings, clock=lambda: later(stale_after + 30))
    assert not report.healthy
    assert report.reason.startswith("heartbeat stale: ")
    assert f"(stale after {stale_after:g} s)" in report.reason


def test_unreadable_heartbeats_are_unhealthy() -> None:
    now = datetime(2026, 2, 9, tzinfo=UTC)
    for document in ({}, {"at": "yesterday"}, {"at": 5}, ["at"]):
        report = judge_heartbeat(document, now, 15.0)
        assert not report.healthy
        assert report.reason.startswith("heartbeat unreadable"), document
    ahead = judge_heartbeat({"at": "2026-02-09T00:00:03Z"}, now, 15.0)  # a clock ahead of ours
    assert ahead.healthy


async def test_an_unreachable_store_is_unhealthy(tmp_path: Path) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    env = settings_in(tmp_path, TB_STORE__BACKEND="redis", REDIS_URL=nobody)
    report = await check_heartbeat(load_settings(env=env, dotenv_path=None))
    assert not report.healthy
    assert report.reason.startswith("store unavailable: ")


def run_health(workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", **settings_in(workdir)}
    return subprocess.run(
        [tradingbrain_script(), "health"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_exits_0_when_fresh_and_1_with_a_reason_otherwise(
    tmp_path: Path, settings: Settings
) -> None:
    missing = run_health(tmp_path)
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("no heartbeat")
    asyncio.run(beat(settings))
    fresh = run_health(tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("ok: heartbeat ")
    asyncio.run(_old_beat(settings))  # the same store, a beat from long ago
    old = run_health(tmp_path)
    assert old.returncode == 1
    assert old.stderr.startswith("heartbeat stale: ")


async def _old_beat(settings: Settings) -> None:
    store = await open_store(settings)
    try:
        await store.snapshots.write({SnapshotName.HEARTBEAT: {"at": "2024-08-05T00:00:00Z"}})
    finally:
        await store.close()

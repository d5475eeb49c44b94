"""The event log across the process boundary: a writer process and a reader process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.settings import StoreSettings
from tests.conftest import open_test_store

ROOT = Path(__file__).resolve().parents[1]
EVENT_COUNT = 2000


def worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.store_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def worker_env(backend: str, settings: StoreSettings, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TB_")}
    env.update(
        TB_STORE__BACKEND=backend,
        TB_STORE__SQLITE_PATH=settings.sqlite_path,
        TB_STORE__KEY_PREFIX=settings.key_prefix,
        TB_STORE__POLL_INTERVAL="0.01",
        REDIS_URL=redis_url,
    )
    return env


@pytest.mark.real_redis
async def test_a_reader_process_gets_every_event_of_a_writer_process_in_order(
    backend: str, store_settings: StoreSettings, real_redis_url: str
) -> None:
    # Create the SQLite schema first: the reader opens the file read-only, as the API does.
    store = await open_test_store(backend, store_settings, real_redis_url)
    await store.close()
    env = worker_env(backend, store_settings, real_redis_url)

    reader = worker(env, "read", str(EVENT_COUNT))
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    writer = worker(env, "write", "1", str(EVENT_COUNT))

    _, writer_err = writer.communicate(timeout=60)
    assert writer.returncode == 0, writer_err
    reader_out, reader_err = reader.communicate(timeout=60)
    assert reader.returncode == 0, reader_err
    assert reader_out.split() == [str(n) for n in range(1, EVENT_COUNT + 1)]

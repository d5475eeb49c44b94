"""`tradingbrain keygen` and `tradingbrain api`: no key, no start; several workers, one set of
metrics (Prometheus multiprocess mode)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.cli import main
from shared.settings import StoreSettings
from tests.api import brain_state
from tests.api.conftest import API_KEY, AUTH
from tests.api.helpers import wait_for_status
from tests.conftest import open_test_store
from tests.support.services import free_port


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if (name.startswith("TB_") and not name.startswith("TB_TEST_")) or name == "API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env here
    return tmp_path


def test_keygen_prints_a_strong_random_key(capsys: pytest.CaptureFixture[str]) -> None:
    keys = set()
    for _ in range(3):
        assert main(["keygen"]) == 0
        key = capsys.readouterr().out.strip()
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key), key  # 32 random bytes, base64url
        keys.add(key)
    assert len(keys) == 3


def test_api_refuses_to_start_without_a_key(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["api", "--port", str(free_port())]) == 2
    error = capsys.readouterr().err
    assert "no API key" in error
    assert "tradingbrain keygen" in error


def tradingbrain() -> str:
    script = shutil.which("tradingbrain", path=os.path.dirname(sys.executable))
    assert script is not None, "the tradingbrain console script is not installed"
    return script


async def test_api_with_two_workers_serves_and_sums_metrics(
    store_settings: StoreSettings, tmp_path: Path
) -> None:
    brain = await open_test_store("sqlite", store_settings, None)
    await brain_state.publish_state(brain)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        "API_KEY": f"{API_KEY},another-key-for-rotation",
        "TB_STORE__BACKEND": "sqlite",
        "TB_STORE__SQLITE_PATH": store_settings.sqlite_path,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'history.db'}",
    }
    log = tmp_path / "api.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [tradingbrain(), "api", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=10
        ) as client:

            async def get(path: str) -> httpx.Response:
                try:
                    return await client.get(path)
                except httpx.TransportError:
                    return httpx.Response(599)

            await wait_for_status(lambda: get("/v1/portfolio"), 200, "the API", timeout=30)
            # Fresh connections, so the kernel spreads them over both workers.
            for _ in range(40):
                async with httpx.AsyncClient(base_url=client.base_url, headers=AUTH) as one:
                    assert (await one.get("/v1/portfolio")).status_code == 200
            # Each scrape, whichever worker answers it, counts every worker's requests.
            for _ in range(10):
                async with httpx.AsyncClient(base_url=client.base_url, headers=AUTH) as one:
                    text = (await one.get("/metrics")).text
                match = re.search(
                    r'^tradingbrain_api_request_duration_seconds_count\{method="GET",route="/v1/portfolio",'
                    r'status="200"\} (\S+)$',
                    text,
                    re.M,
                )
                assert match is not None, text
                assert float(match.group(1)) == 41  # the first 200 above, then 40
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        await brain.close()
    output_text = log.read_text()
    assert len(re.findall(r"Started server process", output_text)) == 2, output_text
    assert API_KEY not in output_text
    assert "Traceback" not in output_text, output_text


def test_api_disabled_by_settings_does_not_start(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TB_API__ENABLED", "false")
    assert main(["api"]) == 0
    assert "disabled" in capsys.readouterr().err


def test_api_refuses_a_back_off_starting_above_its_cap(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    def run(*args: object, **kwargs: object) -> None:
        raise AssertionError("uvicorn started")

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("API_KEY", API_KEY)
    monkeypatch.setenv("TB_API__RETRY_INITIAL", "10")
    monkeypatch.setenv("TB_API__RETRY_MAX", "1")
    assert main(["api"]) == 2
    error = capsys.readouterr().err
    assert "api.retry_initial = 10.0" in error
    assert "api.retry_max = 1.0" in error

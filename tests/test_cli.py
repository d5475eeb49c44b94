"""The tradingbrain console script: plugin discovery, `config`, and error handling."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from shared import cli
from shared.cli import main
from shared.settings import Settings

SECRET_ENV = {
    "API_KEY": "cli-key-one-abcdef,cli-key-two-ghijkl",
    "REDIS_URL": "redis://:cli-redis-pass@cache:6379/0",
    "DATABASE_URL": "postgresql+asyncpg://tb:cli-db-pass@db/tb",
    "TELEGRAM_BOT_TOKEN": "42:cli-telegram-token",
    "ANTHROPIC_API_KEY": "sk-ant-cli-secret",
}
SECRET_FRAGMENTS = [
    "cli-key-one",
    "cli-key-two",
    "cli-redis-pass",
    "cli-db-pass",
    "cli-telegram-token",
    "sk-ant-cli-secret",
]


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TB_*/secret variables from the developer's shell, and a cwd without a .env file."""
    for name in list(os.environ):
        if name.startswith("TB_") or name in {*SECRET_ENV, "TELEGRAM_CHAT_ID"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tradingbrain_script() -> str:
    script = shutil.which("tradingbrain", path=os.path.dirname(sys.executable))
    assert script is not None, "the tradingbrain console script is not installed"
    return script


def run_script(
    *args: str, cwd: Path, extra_env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", **extra_env}
    return subprocess.run(
        [tradingbrain_script(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_installed_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "config" in out
    assert "migrate" in out


def test_no_subcommand_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: tradingbrain" in capsys.readouterr().err


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "frobnicate" in capsys.readouterr().err


def test_config_prints_effective_settings(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TB_API__PORT", "9001")
    monkeypatch.setenv("TB_TELEGRAM__NOTIFICATIONS__SCAN_COMPLETE", "on")
    assert main(["config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["api"]["port"] == 9001
    assert shown["telegram"]["notifications"]["scan_complete"] is True
    assert shown["market"]["symbols"][0] == "BTC/USDT"
    assert set(shown) == {field.name for field in dataclasses.fields(Settings)}
    assert set(shown["secrets"].values()) == {"unset"}


def test_config_never_prints_a_secret(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in out
    secrets = json.loads(out)["secrets"]
    assert secrets == {
        "api_keys": "set (2 keys)",
        "redis_url": "set",
        "database_url": "set",
        "telegram_bot_token": "set",
        "telegram_chat_id": "unset",
        "anthropic_api_key": "set",
    }


def test_config_reads_secrets_from_dotenv_in_cwd(
    isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (isolated_env / ".env").write_text("API_KEY=dotenv-key\n", encoding="utf-8")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "dotenv-key" not in out
    assert json.loads(out)["secrets"]["api_keys"] == "set (1 key)"


def test_config_check(isolated_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--check"]) == 0
    assert capsys.readouterr().out.strip() == "settings OK"


def test_config_check_reports_a_bad_setting(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TB_RISK__MAX_POSITIONS", "0")
    assert main(["config", "--check"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "settings error: risk.max_positions = 0 (from TB_RISK__MAX_POSITIONS) "
        "must be between 1 and 1000"
    )


def test_a_broken_plugin_only_fails_when_invoked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    points = [
        EntryPoint("config", "shared.cli:config_command", cli.COMMAND_GROUP),
        EntryPoint("broken", "tb_no_such_module_xyz:command", cli.COMMAND_GROUP),
        EntryPoint("wrong", "shared.cli:main", cli.COMMAND_GROUP),
    ]
    monkeypatch.setattr(cli, "entry_points", lambda group: [p for p in points if p.group == group])
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert "config" in help_text
    assert "broken" in help_text
    assert help_text.index("broken") < help_text.index("config") < help_text.index("wrong")

    assert main(["broken"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "broken" in err
    assert "tb_no_such_module_xyz" in err
    assert "Traceback" not in err

    assert main(["wrong"]) == 2
    assert "not a Command" in capsys.readouterr().err


def test_script_help_lists_commands(tmp_path: Path) -> None:
    result = run_script("--help", cwd=tmp_path, extra_env={})
    assert result.returncode == 0, result.stderr
    assert "config" in result.stdout
    assert "migrate" in result.stdout


def test_script_config_hides_secrets(tmp_path: Path) -> None:
    result = run_script("config", cwd=tmp_path, extra_env=SECRET_ENV)
    assert result.returncode == 0, result.stderr
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in result.stdout
        assert fragment not in result.stderr
    assert json.loads(result.stdout)["secrets"]["api_keys"] == "set (2 keys)"


def test_script_bad_override_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = run_script("config", cwd=tmp_path, extra_env={"TB_API__PORT": "not-a-port"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert "api.port" in result.stderr
    assert "TB_API__PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1

"""Loading settings: defaults, TB_CONFIG overlay, TB_* overrides, secrets, and every error."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared import config as config_module
from shared.config import SettingsError, load_settings
from shared.settings import Secret, Settings

REPO_DEFAULTS = Path(__file__).resolve().parents[1] / "config" / "settings.toml"

# The plan's nineteen switches and defaults, plus catalog additions (on: they are rare).
PLAN_SWITCHES = {
    "trade_executed": True,
    "stop_triggered": True,
    "risk_halt": True,
    "risk_resumed": True,
    "rollback": True,
    "strategy_deployed": True,
    "system_online": True,
    "system_shutdown": True,
    "system_error": True,
    "websocket_failed": True,
    "daily_summary": True,
    "weekly_report": True,
    "signal_generated": False,
    "signal_rejected": False,
    "scan_complete": False,
    "paper_test_started": False,
    "paper_test_completed": False,
    "orchestrator_cycle_started": False,
    "orchestrator_cycle_completed": False,
}
ADDED_SWITCHES = {"websocket_feed_recovered": True, "trading_paused": True, "trading_resumed": True}
NOTIFICATION_DEFAULTS = {**PLAN_SWITCHES, **ADDED_SWITCHES}

SECRET_ENV = {
    "API_KEY": "key-one-0123456789, key-two-9876543210",
    "REDIS_URL": "redis://:redis-pass-xyz@cache:6379/0",
    "DATABASE_URL": "postgresql+asyncpg://tb:db-pass-xyz@db/tb",
    "TELEGRAM_BOT_TOKEN": "123456:telegram-token-abc",
    "TELEGRAM_CHAT_ID": "chat-987654321",
    "ANTHROPIC_API_KEY": "sk-ant-secret-value",
}
SECRET_STRINGS = [
    "key-one-0123456789",
    "key-two-9876543210",
    "redis-pass-xyz",
    "db-pass-xyz",
    "telegram-token-abc",
    "chat-987654321",
    "sk-ant-secret-value",
]


def load(env: dict[str, str] | None = None, dotenv_path: Path | None = None) -> Settings:
    return load_settings(env=env or {}, dotenv_path=dotenv_path)


def load_error(env: dict[str, str], dotenv_path: Path | None = None) -> str:
    with pytest.raises(SettingsError) as caught:
        load(env, dotenv_path)
    message = str(caught.value)
    assert message.startswith("settings error: ")
    assert "\n" not in message
    return message


def overlay(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "overlay.toml"
    path.write_text(text, encoding="utf-8")
    return {"TB_CONFIG": str(path)}


# --- defaults -------------------------------------------------------------------------------


def test_defaults_equal_the_shipped_toml() -> None:
    toml = tomllib.loads(REPO_DEFAULTS.read_text(encoding="utf-8"))
    settings = load()

    def plain(value: object) -> object:  # lists load as tuples (frozen)
        return list(value) if isinstance(value, tuple) else value

    for section in ("api", "risk", "store", "database", "outbox", "paper", "strategy", "brain"):
        loaded = {k: plain(v) for k, v in dataclasses.asdict(getattr(settings, section)).items()}
        assert loaded == toml[section], section
    assert settings.market.symbols == tuple(toml["market"]["symbols"])
    assert settings.market.timeframe == toml["market"]["timeframe"]
    notifications = dataclasses.asdict(settings.telegram.notifications)
    assert notifications == toml["telegram"]["notifications"]


def test_default_values_spot_check() -> None:
    settings = load()
    assert settings.api.enabled is True
    assert settings.api.host == "0.0.0.0"  # noqa: S104 - the container default
    assert settings.api.port == 8080
    assert settings.risk.max_position_pct == 0.15
    assert settings.risk.max_positions == 5
    assert settings.market.symbols[:2] == ("BTC/USDT", "ETH/USDT")
    assert len(settings.market.symbols) == 6
    assert settings.market.timeframe == "5m"
    assert settings.store.backend == "sqlite"
    assert settings.store.poll_interval == 0.02
    assert isinstance(settings.store.connect_retry_delay, float)
    assert settings.database.sqlite_path == "var/history.db"
    assert settings.outbox.batch_size == 500
    assert isinstance(settings.outbox.retry_max, float)


def test_the_plans_telegram_switches_and_the_additions() -> None:
    notifications = dataclasses.asdict(load().telegram.notifications)
    assert notifications == NOTIFICATION_DEFAULTS
    assert len(PLAN_SWITCHES) == 19


def test_no_secrets_without_env_or_dotenv() -> None:
    secrets = load().secrets
    assert secrets.api_keys == ()
    assert secrets.redis_url is None
    assert secrets.anthropic_api_key is None


def test_packaged_defaults_win_over_the_repo_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A built wheel carries config/settings.toml as shared/defaults.toml; that copy is used."""
    packaged = REPO_DEFAULTS.read_text(encoding="utf-8").replace("port = 8080", "port = 8181")
    (tmp_path / "defaults.toml").write_text(packaged, encoding="utf-8")
    monkeypatch.setattr(config_module, "resources", SimpleNamespace(files=lambda _: tmp_path))
    assert load().api.port == 8181
    (tmp_path / "defaults.toml").write_text(packaged.replace("8181", "0"), encoding="utf-8")
    message = load_error({})
    assert message.startswith("settings error: api.port = 0 (from built-in defaults (")


# --- TB_CONFIG overlay ----------------------------------------------------------------------


def test_overlay_changes_one_key_and_keeps_the_rest(tmp_path: Path) -> None:
    settings = load(overlay(tmp_path, "[risk]\nmax_positions = 9\n"))
    defaults = load()
    assert settings.risk.max_positions == 9
    assert settings.risk == dataclasses.replace(defaults.risk, max_positions=9)
    assert settings.api == defaults.api
    assert settings.telegram == defaults.telegram


def test_overlay_nested_table_merges(tmp_path: Path) -> None:
    settings = load(overlay(tmp_path, "[telegram.notifications]\nscan_complete = true\n"))
    expected = {**NOTIFICATION_DEFAULTS, "scan_complete": True}
    assert dataclasses.asdict(settings.telegram.notifications) == expected


def test_env_override_wins_over_overlay(tmp_path: Path) -> None:
    env = {**overlay(tmp_path, "[api]\nport = 9000\n"), "TB_API__PORT": "9100"}
    assert load(env).api.port == 9100


# --- env overrides --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "section", "key", "expected"),
    [
        ("TB_API__PORT", "9000", "api", "port", 9000),
        ("TB_API__ENABLED", "off", "api", "enabled", False),
        ("TB_API__ENABLED", "No", "api", "enabled", False),
        ("TB_API__HOST", "127.0.0.1", "api", "host", "127.0.0.1"),
        ("TB_RISK__MAX_POSITION_PCT", "0.25", "risk", "max_position_pct", 0.25),
        ("TB_RISK__MAX_POSITION_PCT", "1", "risk", "max_position_pct", 1.0),
        (
            "TB_MARKET__SYMBOLS",
            "BTC/USDT, ETH/USDT,,",
            "market",
            "symbols",
            ("BTC/USDT", "ETH/USDT"),
        ),
        (
            "TB_MARKET__SYMBOLS",
            '["ADA/USDT","SOL/USDT"]',
            "market",
            "symbols",
            ("ADA/USDT", "SOL/USDT"),
        ),
        ("TB_MARKET__TIMEFRAME", "1h", "market", "timeframe", "1h"),
        ("TB_STORE__BACKEND", "redis", "store", "backend", "redis"),
        ("TB_Store__Key_Prefix", "mine", "store", "key_prefix", "mine"),
    ],
)
def test_env_override(name: str, text: str, section: str, key: str, expected: object) -> None:
    value = getattr(getattr(load({name: text}), section), key)
    assert value == expected
    assert type(value) is type(expected)


def test_nested_env_override() -> None:
    settings = load({"TB_TELEGRAM__NOTIFICATIONS__SCAN_COMPLETE": "true"})
    assert settings.telegram.notifications.scan_complete is True
    assert settings.telegram.notifications.signal_generated is False


def test_test_suite_variables_are_not_settings() -> None:
    assert load({"TB_TEST_REQUIRE_SERVICES": "1", "TB_TEST_ANYTHING": "x"}) == load()


# --- errors ---------------------------------------------------------------------------------


def test_unknown_key_in_file(tmp_path: Path) -> None:
    env = overlay(tmp_path, "[api]\nprot = 9000\n")
    assert load_error(env) == f"settings error: unknown key api.prot in {env['TB_CONFIG']}"


def test_unknown_nested_key_in_file(tmp_path: Path) -> None:
    message = load_error(overlay(tmp_path, "[telegram.notifications]\nscan_completed = true\n"))
    assert "unknown key telegram.notifications.scan_completed" in message
    assert "overlay.toml" in message


def test_unknown_section_in_file(tmp_path: Path) -> None:
    message = load_error(overlay(tmp_path, "[nope]\nx = 1\n"))
    assert "unknown key nope in" in message


@pytest.mark.parametrize("text", ['[secrets]\napi_keys = ["k"]\n', '[api]\napi_key = "k"\n'])
def test_secrets_are_never_read_from_toml(tmp_path: Path, text: str) -> None:
    message = load_error(overlay(tmp_path, text))
    assert "unknown key " in message
    assert '"k"' not in message


def test_wrong_type_in_file(tmp_path: Path) -> None:
    env = overlay(tmp_path, '[risk]\nmax_positions = "five"\n')
    assert load_error(env) == (
        f'settings error: risk.max_positions = "five" (from {env["TB_CONFIG"]}) must be an integer'
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[api]\nenabled = 1\n", "api.enabled = 1 (from {path}) must be true or false"),
        ("[api]\nport = 80.0\n", "api.port = 80.0 (from {path}) must be an integer"),
        ("[api]\nport = true\n", "api.port = true (from {path}) must be an integer"),
        ("[risk]\nmax_position_pct = true\n", "must be a number"),
        ("[risk]\nmax_position_pct = nan\n", "must be a finite number"),
        (
            '[market]\nsymbols = "BTC/USDT"\n',
            'market.symbols = "BTC/USDT" (from {path}) must be a list',
        ),
        (
            '[market]\nsymbols = ["BTC/USDT", 5]\n',
            "market.symbols[1] = 5 (from {path}) must be a string",
        ),
        ("[market]\nsymbols = []\n", "market.symbols = [] (from {path}) must not be empty"),
        ('[api]\nhost = "  "\n', 'api.host = "  " (from {path}) must not be empty'),
        ("api = 5\n", "api = 5 (from {path}) must be a table"),
        ("[risk]\nmax_position_pct = 1.5\n", "must be between 0.0 and 1.0"),
        ('[market]\ntimeframe = "2m"\n', 'market.timeframe = "2m" (from {path}) must be one of'),
    ],
)
def test_invalid_value_in_file(tmp_path: Path, text: str, problem: str) -> None:
    env = overlay(tmp_path, text)
    assert problem.format(path=env["TB_CONFIG"]) in load_error(env)


def test_out_of_range_env_override_names_key_and_variable() -> None:
    assert load_error({"TB_API__PORT": "70000"}) == (
        "settings error: api.port = 70000 (from TB_API__PORT) must be between 1 and 65535"
    )


def test_bad_literal_env_override() -> None:
    message = load_error({"TB_STORE__BACKEND": "postgres"})
    assert message.startswith('settings error: store.backend = "postgres" (from TB_STORE__BACKEND)')
    assert '"sqlite"' in message
    assert '"redis"' in message


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("TB_API__PORT", "eighty", "must be an integer"),
        ("TB_API__PORT", "80.5", "must be an integer"),
        ("TB_API__ENABLED", "maybe", "must be true or false"),
        ("TB_RISK__MAX_DRAWDOWN_PCT", "lots", "must be a number"),
        ("TB_MARKET__SYMBOLS", " , ", "must not be empty"),
        ("TB_MARKET__SYMBOLS", "[1, 2]", "must be a string"),
        ("TB_TELEGRAM__NOTIFICATIONS__SCAN_COMPLETE", "yes please", "must be true or false"),
    ],
)
def test_bad_env_override_names_the_variable(name: str, text: str, problem: str) -> None:
    message = load_error({name: text})
    assert f"(from {name})" in message
    assert message.endswith(problem)


@pytest.mark.parametrize(
    "name",
    ["TB_API__PROT", "TB_NOPE__X", "TB_API", "TB_TELEGRAM__NOTIFICATIONS", "TB_API__PORT__X"],
)
def test_unknown_tb_variable(name: str) -> None:
    message = load_error({name: "1"})
    assert name in message


def test_secrets_cannot_be_set_as_tb_variables() -> None:
    assert "TB_SECRETS__API_KEYS" in load_error({"TB_SECRETS__API_KEYS": "k"})


def test_missing_tb_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    message = load_error({"TB_CONFIG": str(missing)})
    assert str(missing) in message
    assert "does not exist" in message


def test_unreadable_tb_config_file(tmp_path: Path) -> None:
    message = load_error({"TB_CONFIG": str(tmp_path)})  # a directory cannot be read as a file
    assert str(tmp_path) in message


def test_invalid_toml_in_tb_config(tmp_path: Path) -> None:
    env = overlay(tmp_path, "[api\nport = \n")
    message = load_error(env)
    assert env["TB_CONFIG"] in message
    assert "not valid TOML" in message


# --- secrets --------------------------------------------------------------------------------


def test_secrets_from_env() -> None:
    secrets = load(SECRET_ENV).secrets
    assert secrets.api_keys == (Secret("key-one-0123456789"), Secret("key-two-9876543210"))
    assert secrets.redis_url == Secret(SECRET_ENV["REDIS_URL"])
    assert secrets.database_url == Secret(SECRET_ENV["DATABASE_URL"])
    assert secrets.telegram_bot_token == Secret(SECRET_ENV["TELEGRAM_BOT_TOKEN"])
    assert secrets.telegram_chat_id == Secret(SECRET_ENV["TELEGRAM_CHAT_ID"])
    assert secrets.anthropic_api_key == Secret(SECRET_ENV["ANTHROPIC_API_KEY"])


def test_api_key_rotation_list_drops_blanks() -> None:
    keys = load({"API_KEY": " old-key ,, new-key , "}).secrets.api_keys
    assert [key.get() for key in keys] == ["old-key", "new-key"]


def test_empty_anthropic_key_is_none() -> None:
    assert load({"ANTHROPIC_API_KEY": ""}).secrets.anthropic_api_key is None


def test_secrets_from_dotenv_file_env_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "API_KEY=file-key-1,file-key-2\nTELEGRAM_BOT_TOKEN=file-token\nREDIS_URL=redis://file\n",
        encoding="utf-8",
    )
    secrets = load({"TELEGRAM_BOT_TOKEN": "env-token"}, dotenv_path=dotenv).secrets
    assert [key.get() for key in secrets.api_keys] == ["file-key-1", "file-key-2"]
    assert secrets.telegram_bot_token == Secret("env-token")
    assert secrets.redis_url == Secret("redis://file")
    assert secrets.database_url is None


def test_dotenv_file_is_ignored_when_path_is_none_or_missing(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("API_KEY=file-key\n", encoding="utf-8")
    assert load(dotenv_path=None).secrets.api_keys == ()
    assert load(dotenv_path=tmp_path / "absent.env").secrets.api_keys == ()


def test_dotenv_file_does_not_set_tb_overrides(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TB_API__PORT=9999\n", encoding="utf-8")
    assert load(dotenv_path=dotenv).api.port == 8080


def test_repr_and_str_never_show_a_secret() -> None:
    settings = load(SECRET_ENV)
    for text in (repr(settings), str(settings), repr(settings.secrets)):
        for secret in SECRET_STRINGS:
            assert secret not in text


def test_settings_are_frozen() -> None:
    settings = load()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.api.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.risk = settings.risk  # type: ignore[misc]


def test_every_setting_is_documented() -> None:
    """docs/configuration.md names every key of every section."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    settings = load_settings(env={}, dotenv_path=None)
    for section in dataclasses.fields(settings):
        if section.name == "secrets":
            continue
        value = getattr(settings, section.name)
        if section.name == "telegram":
            value, heading = value.notifications, "[telegram.notifications]"
        else:
            heading = f"[{section.name}]"
        assert heading in docs
        for key in dataclasses.fields(value):
            assert f"`{key.name}`" in docs, f"{heading} {key.name} is not documented"

"""Load ``Settings``: shipped defaults, an optional TB_CONFIG file, TB_* env overrides, secrets.

Order, later winning: config/settings.toml (every default lives there), the TOML file named by
TB_CONFIG (only the keys it changes), then ``TB_<SECTION>__<KEY>`` environment variables (each
``__`` is one level). Secrets never come from TOML: they are read from the environment, then
from a .env file. Anything unknown or invalid is a ``SettingsError`` naming the key and its origin.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from shared._typed_config import (
    Origins,
    SettingsError,
    build,
    is_table,
    merge_layer,
    parse_text,
    setting_type,
)
from shared.settings import Secret, Secrets, Settings

__all__ = ["SettingsError", "load_settings"]

_ENV_PREFIX = "TB_"
_CONFIG_FILE_VAR = "TB_CONFIG"
_TEST_SUITE_PREFIX = "TB_TEST_"  # the test suite's own variables, not settings
_SECRETS_FIELD = "secrets"
_REPO_DEFAULTS = Path(__file__).resolve().parents[1] / "config" / "settings.toml"


def load_settings(
    env: Mapping[str, str] | None = None, dotenv_path: Path | None = Path(".env")
) -> Settings:
    """The effective settings. ``env`` defaults to ``os.environ``; ``dotenv_path=None`` skips .env.

    Raises SettingsError with one message naming the first bad key and where it came from.
    """
    env = os.environ if env is None else env
    defaults_text, defaults_origin = _defaults()
    origins = Origins(defaults_origin)
    tree: dict[str, Any] = {}
    merge_layer(tree, _parse_toml(defaults_text, defaults_origin), defaults_origin, origins)
    if config_path := env.get(_CONFIG_FILE_VAR):
        merge_layer(tree, _read_toml_file(Path(config_path)), config_path, origins)
    _apply_env_overrides(tree, env, origins)
    secrets = load_secrets(env, dotenv_path)
    return build(Settings, tree, origins, provided={_SECRETS_FIELD: secrets})


def _defaults() -> tuple[str, str]:
    """The defaults' text and how errors name it: packaged in a wheel, else the repo's file."""
    packaged = resources.files("shared") / "defaults.toml"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8"), f"built-in defaults ({packaged})"
    return _REPO_DEFAULTS.read_text(encoding="utf-8"), "config/settings.toml"


def _read_toml_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{_CONFIG_FILE_VAR} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{_CONFIG_FILE_VAR} file {path} cannot be read: {error}") from None
    return _parse_toml(text, str(path))


def _parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{origin} is not valid TOML: {error}") from None


def _apply_env_overrides(tree: dict[str, Any], env: Mapping[str, str], origins: Origins) -> None:
    for name in sorted(env):  # sorted: the same environment always gives the same first error
        if not _is_setting_variable(name):
            continue
        path = name[len(_ENV_PREFIX) :].lower().split("__")
        key = ".".join(path)
        setting = setting_type(Settings, path, excluded=frozenset({_SECRETS_FIELD}))
        if setting is None:
            raise SettingsError(f"{name} does not name a setting (there is no key {key})")
        if is_table(setting):
            raise SettingsError(f"{name} names the table {key}, not a setting: set its keys")
        _set_path(tree, path, parse_text(setting, env[name]))
        origins.record(key, name)


def _is_setting_variable(name: str) -> bool:
    return (
        name.startswith(_ENV_PREFIX)
        and name != _CONFIG_FILE_VAR
        and not name.startswith(_TEST_SUITE_PREFIX)
    )


def _set_path(tree: dict[str, Any], path: list[str], value: object) -> None:
    table = tree
    for name in path[:-1]:
        if not isinstance(table.get(name), dict):
            table[name] = {}  # a file replaced this table with a scalar; the override wins
        table = table[name]
    table[path[-1]] = value


def load_secrets(env: Mapping[str, str], dotenv_path: Path | None) -> Secrets:
    """Secrets from ``env`` or, for names absent there, the .env file (when it exists).

    A variable present in ``env`` wins even when empty (as with python-dotenv's load_dotenv).
    Values are stripped; an empty value means unset.
    """
    from_file = _read_dotenv(dotenv_path)

    def text(name: str) -> str:
        value = env[name] if name in env else from_file.get(name)
        return (value or "").strip()

    def optional(name: str) -> Secret | None:
        value = text(name)
        return Secret(value) if value else None

    api_keys = tuple(Secret(key.strip()) for key in text("API_KEY").split(",") if key.strip())
    return Secrets(
        api_keys=api_keys,
        redis_url=optional("REDIS_URL"),
        database_url=optional("DATABASE_URL"),
        telegram_bot_token=optional("TELEGRAM_BOT_TOKEN"),
        telegram_chat_id=optional("TELEGRAM_CHAT_ID"),
        anthropic_api_key=optional("ANTHROPIC_API_KEY"),
    )


def _read_dotenv(dotenv_path: Path | None) -> dict[str, str | None]:
    if dotenv_path is None or not dotenv_path.is_file():
        return {}
    try:
        return dotenv_values(dotenv_path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{dotenv_path} cannot be read: {error}") from None

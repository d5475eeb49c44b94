"""The API reads ``settings.api`` as it is: each key's range is checked when the settings load,
and ``create_app`` refuses the one rule between keys (retry_initial <= retry_max)."""

from __future__ import annotations

import pytest

from api.app import check_api_settings, create_app
from shared.config import SettingsError, load_settings
from shared.settings import Settings
from tests.api.conftest import with_api


def test_the_shipped_api_settings_pass(base_settings: Settings) -> None:
    check_api_settings(base_settings.api)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stale_after", "0"),
        ("workers", "0"),
        ("follow_block", "61"),
        ("retry_max", "0"),
        ("query_timeout", "0"),
        ("health_timeout", "61"),
        ("history_cache_entries", "-1"),
        ("ws_send_queue", "0"),
        ("ws_max_clients", "0"),
        ("ws_auth_timeout", "0"),
        ("ws_outage_grace", "-1"),
    ],
)
def test_out_of_range_api_keys_are_refused_when_loading(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=rf"api\.{key} = .* must be between"):
        load_settings(env={f"TB_API__{key.upper()}": value}, dotenv_path=None)


def test_a_back_off_starting_above_its_cap_is_refused() -> None:
    settings = load_settings(
        env={"TB_API__RETRY_INITIAL": "10", "TB_API__RETRY_MAX": "1"}, dotenv_path=None
    )
    with pytest.raises(SettingsError, match=r"api\.retry_initial = 10\.0 .* api\.retry_max = 1\.0"):
        create_app(settings)


def test_a_back_off_starting_at_its_cap_is_fine(base_settings: Settings) -> None:
    check_api_settings(with_api(base_settings, retry_initial=2.0, retry_max=2.0).api)

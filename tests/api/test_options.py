"""ApiOptions: [api] settings where they exist, defaults otherwise, ranges checked."""

from __future__ import annotations

import dataclasses

import pytest

from api.options import DEFAULT_STALE_AFTER, ApiOptions
from shared.settings import Settings


def test_options_take_the_api_section_and_defaults(base_settings: Settings) -> None:
    options = ApiOptions.from_settings(base_settings)
    assert (options.host, options.port) == (base_settings.api.host, base_settings.api.port)
    assert options.stale_after == DEFAULT_STALE_AFTER
    assert options.cors_origins == ()
    assert options.metrics_public is False
    assert options.workers == 1


def test_options_follow_settings_keys_once_they_exist(base_settings: Settings) -> None:
    @dataclasses.dataclass(frozen=True)
    class FutureApiSettings:  # [api] with keys the lead may add
        enabled: bool
        host: str
        port: int
        stale_after: float
        cors_origins: list[str]

    api = FutureApiSettings(True, "127.0.0.1", 9000, 3.0, ["https://a.example"])
    settings = dataclasses.replace(base_settings, api=api)  # type: ignore[arg-type]
    options = ApiOptions.from_settings(settings, workers=2)
    assert options.port == 9000
    assert options.stale_after == 3.0
    assert options.cors_origins == ("https://a.example",)
    assert options.workers == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"stale_after": 0},
        {"workers": 0},
        {"follow_block": 61},
        {"retry_initial": 10, "retry_max": 1},
        {"history_cache_entries": -1},
    ],
)
def test_options_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="out of range"):
        ApiOptions(**bad)  # type: ignore[arg-type]

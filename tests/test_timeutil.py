from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.timeutil import parse_date, parse_iso, read_iso, to_iso, utc_now


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-09T03:10:00Z",
        "2026-02-09T05:10:00+02:00",
        "2026-02-09T03:10:00",
        "2026-02-09 03:10",
    ],
)
def test_parse_iso_gives_aware_utc(text: str) -> None:
    assert parse_iso(text) == datetime(2026, 2, 9, 3, 10, tzinfo=UTC)
    assert parse_iso(text).tzinfo is UTC


def test_to_iso_ends_with_z() -> None:
    assert to_iso(datetime(2026, 2, 9, 3, 10, tzinfo=UTC)) == "2026-02-09T03:10:00Z"
    assert to_iso(utc_now()).endswith("Z")


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", ""])
def test_bad_dates_raise_value_error_quoting_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_iso(text)
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_date(text)


def test_parse_date() -> None:
    assert parse_date("2026-02-08") == date(2026, 2, 8)


def test_read_iso_gives_none_for_anything_unreadable() -> None:
    assert read_iso("2024-08-05T15:30:00Z") == datetime(2024, 8, 5, 15, 30, tzinfo=UTC)
    for value in (None, 42, "", "yesterday", "9999-99-99T00:00:00Z", ["2024-08-05"]):
        assert read_iso(value) is None, value

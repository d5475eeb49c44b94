"""UTC time helpers: every timestamp in TradingBrain is an aware UTC datetime, ISO 8601 with Z."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_iso(moment: datetime) -> str:
    """ISO 8601 with a trailing Z, the wire format (for example 2026-02-09T03:10:00Z)."""
    text = to_utc(moment).isoformat()
    return text.removesuffix("+00:00") + "Z"


def parse_iso(text: str) -> datetime:
    """Parse ISO 8601 (a trailing Z, an offset, or naive meaning UTC) into aware UTC.

    Raises ValueError with the offending text when it is not a date-time.
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}") from None
    return to_utc(parsed)


def read_iso(value: object) -> datetime | None:
    """``parse_iso`` for a value read from a document someone else wrote: None unless it is
    a readable ISO 8601 text."""
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        return None


def parse_date(text: str) -> date:
    """Parse an ISO 8601 calendar date (YYYY-MM-DD)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 date: {text!r}") from None

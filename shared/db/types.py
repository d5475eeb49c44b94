"""Column types shared by every table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from shared.timeutil import to_utc


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in and out, whatever the database.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones and hands back naive values,
    which are UTC because only UTC is ever written. A naive value written is taken to be UTC
    (the project's convention, as in ``shared.timeutil.to_utc``).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime needs a datetime, got {type(value).__name__}")
        moment = to_utc(value)
        # SQLite would keep the "+00:00" suffix in the text, which breaks ordering against
        # values written without it; store naive UTC text there instead.
        if dialect.name == "sqlite":
            return moment.replace(tzinfo=None)
        return moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a raw value from a text() query on SQLite
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return to_utc(value)

"""JSON encoding shared by every writer and reader: orjson, UTC datetimes with Z."""

from __future__ import annotations

from typing import Any

import orjson

# Naive datetimes are UTC by convention; aware UTC ones are written with Z, not +00:00.
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: Any) -> bytes:
    """Encode to compact UTF-8 JSON. NaN and infinities become null (never invalid JSON)."""
    return orjson.dumps(value, option=_OPTIONS)


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    return orjson.loads(data)

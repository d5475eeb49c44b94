"""Assertions and waits shared by the Data API tests."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.support.services import async_wait_until

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
META_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def assert_meta(meta: dict[str, Any], *, paged: bool = False) -> None:
    expected = {"timestamp", "mode", "version"} | ({"next_cursor"} if paged else set())
    assert set(meta) == expected, meta
    assert META_TIMESTAMP.match(meta["timestamp"]), meta
    assert meta["mode"] == "paper"
    assert meta["version"]


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """The response is the error envelope with this status and code; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "meta"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    assert_meta(body["meta"])
    message: str = body["error"]["message"]
    return message


async def wait_for_status(
    get: Callable[[], Awaitable[httpx.Response]], status: int, what: str, timeout: float = 10
) -> httpx.Response:
    last: list[httpx.Response] = []

    async def answered() -> bool:
        response = await get()
        last[:] = [response]
        return response.status_code == status

    await async_wait_until(answered, timeout, what)
    return last[0]


async def wait_for_data(
    get: Callable[[], Awaitable[httpx.Response]],
    condition: Callable[[Any], bool],
    what: str,
    timeout: float = 10,
) -> Any:
    """Poll until the endpoint answers 200 with data meeting ``condition``; returns the data."""
    found: list[Any] = []

    async def holds() -> bool:
        response = await get()
        if response.status_code != 200:
            return False
        data = response.json()["data"]
        if condition(data):
            found[:] = [data]
            return True
        return False

    await async_wait_until(holds, timeout, what)
    return found[0]

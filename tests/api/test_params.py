"""Bad query parameters: 400 invalid_parameter, the message naming the parameter."""

from __future__ import annotations

import pytest

from api.params import Cursor
from shared.timeutil import parse_iso
from tests.api.conftest import Api
from tests.api.helpers import assert_error

BAD: list[tuple[str, str, str]] = [
    # (path, query string, the parameter the message must name first)
    ("/v1/trades", "limit=0", "limit"),
    ("/v1/trades", "limit=501", "limit"),
    ("/v1/trades", "limit=-1", "limit"),
    ("/v1/trades", "limit=abc", "limit"),
    ("/v1/trades", "limit=1.5", "limit"),
    ("/v1/trades", "limit=", "limit"),
    ("/v1/trades", "limit=" + "9" * 5000, "limit"),
    ("/v1/trades", "since=yesterday", "since"),
    ("/v1/trades", "until=2024-13-01T00:00:00Z", "until"),
    ("/v1/trades", "since=2024-08-02T00:00:00Z&until=2024-08-01T00:00:00Z", "since"),
    ("/v1/trades", "symbol=", "symbol"),
    ("/v1/trades", "symbol=BTC%00USDT", "symbol"),
    ("/v1/trades", "symbol=" + "X" * 40, "symbol"),
    ("/v1/trades", "cursor=not-a-cursor", "cursor"),
    ("/v1/trades", "cursor=%2F%2F%2F", "cursor"),
    ("/v1/trades", "action=BUY", "action"),  # trades take no action filter
    ("/v1/trades", "limit=5&limit=6", "limit"),
    ("/v1/trades", "page=2", "page"),
    ("/v1/signals", "action=HOLD", "action"),
    ("/v1/signals", "action=", "action"),
    ("/v1/signals", "limit=1000", "limit"),
    ("/v1/signals", "since=2024-08-01T25:00:00Z", "since"),
    ("/v1/performance", "since=2024-02-30", "since"),
    ("/v1/performance", "until=08/01/2024", "until"),
    ("/v1/performance", "since=2024-08-02&until=2024-08-01", "since"),
    ("/v1/performance", "limit=5", "limit"),
    ("/v1/portfolio", "fields=cash", "fields"),
    ("/v1/system", "verbose=1", "verbose"),
    ("/v1/ai/usage", "day=today", "day"),
    ("/v1/openapi.json", "format=yaml", "format"),
]


async def test_bad_parameters_are_refused_by_name(api: Api) -> None:
    for path, query, name in BAD:
        response = await api.get(f"{path}?{query}")
        message = assert_error(response, 400, "invalid_parameter")
        assert message.startswith(f"{name}: "), (path, query, message)


async def test_several_unknown_keys_are_all_named(api: Api) -> None:
    message = assert_error(await api.get("/v1/trades?zeta=1&alpha=2"), 400, "invalid_parameter")
    assert message.startswith("alpha, zeta: unknown query parameters")
    assert "cursor, limit, since, symbol, until" in message


async def test_good_edge_values_are_accepted(api: Api) -> None:
    for query in (
        "limit=1",
        "limit=500",
        "limit=050",
        "since=2024-08-01",  # a date is midnight UTC
        "since=2024-08-01T00:00:00%2B02:00",
        "since=2024-08-01T00:00:00.123456Z&until=2024-08-01T00:00:00.123456Z",
        "symbol=btc/usdt",
    ):
        response = await api.get(f"/v1/trades?{query}")
        assert response.status_code == 200, (query, response.text)
    assert (await api.get("/v1/signals?action=buy")).status_code == 200


@pytest.mark.parametrize("text", ["", "e30", "WzFd", "WyJ4IiwxXQ", "WyIyMDI0LTA4LTAxIiwiMSJd"])
def test_cursor_decoding_refuses_what_it_did_not_make(text: str) -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        Cursor.decode(text)


def test_cursor_round_trips() -> None:
    cursor = Cursor(parse_iso("2024-08-01T00:00:00.000123Z"), 42)
    assert Cursor.decode(cursor.encode()) == cursor

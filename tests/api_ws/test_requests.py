"""Bad requests are refused with 4400 and a reason naming the parameter; the protocol's pieces."""

from __future__ import annotations

import logging

import pytest
from starlette.datastructures import QueryParams

from api.events_auth import QueryTokenFilter
from api.events_protocol import (
    MAX_REASON_BYTES,
    CloseCode,
    ProtocolError,
    StreamRequest,
    close_reason,
)
from shared.events import EventName
from tests.api_ws.client import closed_with, open_stream
from tests.api_ws.conftest import Relay

REFUSED = {
    "events=trade_executed,bogus": "events: unknown event name 'bogus'",
    "events=heartbeat": "events: unknown event name 'heartbeat'",
    "events=": "events: give at least one value",
    "symbols=BTC%20USDT": "symbols: not a symbol: 'BTC USDT'",
    "last_event_id=abc": "last_event_id: not an event id (digits): 'abc'",
    "last_event_id=-1": "last_event_id: not an event id",
    "last_event_id=1&last_event_id=2": "last_event_id: given more than once",
    "since=2024-01-01": "since: unknown parameter",
}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_bad_parameters_close_with_4400_naming_them(relay: Relay) -> None:
    for query, reason in REFUSED.items():
        async with open_stream(f"{relay.ws()}?{query}") as ws:
            code, said = await closed_with(ws)
        assert code == CloseCode.BAD_REQUEST, query
        assert said.startswith(reason), (query, said)


def test_known_parameters_parse() -> None:
    request = StreamRequest.parse(
        QueryParams(
            "last_event_id=42&events=trade_executed, risk_halt&events=scan_complete"
            "&symbols=BTC/USDT,ETH/USDT"
        )
    )
    assert request.last_event_id == "42"
    names = {EventName.TRADE_EXECUTED, EventName.RISK_HALT, EventName.SCAN_COMPLETE}
    assert request.filter.names == frozenset(names)
    assert request.filter.symbols == frozenset({"BTC/USDT", "ETH/USDT"})
    assert StreamRequest.parse(QueryParams("")).filter.everything


def test_close_reasons_fit_a_close_frame() -> None:
    long = "events: unknown event name " + "é" * 200
    cut = close_reason(long)
    assert len(cut.encode()) <= MAX_REASON_BYTES
    assert cut.endswith("...")
    assert close_reason("short") == "short"
    error = ProtocolError(CloseCode.BAD_REQUEST, long)
    assert len(error.reason.encode()) <= MAX_REASON_BYTES


def test_query_tokens_are_masked_in_uvicorn_log_lines() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/v1/events?events=scan_complete&token=s3cret-value&x=1"),
        None,
    )
    QueryTokenFilter().filter(record)
    line = record.getMessage()
    assert "s3cret" not in line
    assert "token=***&x=1" in line
    assert "events=scan_complete" in line

"""/metrics content, and CORS for browser dashboards (preflights answered before auth)."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.store.base import Store
from tests.api import brain_state
from tests.api.conftest import Api, StartApi
from tests.api.helpers import wait_for_status

ORIGIN = "https://dashboard.example"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_requests_by_route_and_status(api: Api, store: Store) -> None:
    revision = await brain_state.publish_state(store)
    await wait_for_status(lambda: api.get("/v1/portfolio"), 200, "the snapshots")
    before = samples((await api.get("/metrics")).text)
    for _ in range(5):
        assert (await api.get("/v1/portfolio")).status_code == 200
    assert (await api.get("/v1/trades?limit=0")).status_code == 400
    async with httpx.AsyncClient(base_url=api.url) as anonymous:
        assert (await anonymous.get("/v1/positions")).status_code == 401
    assert (await api.get("/v1/no/such/route/12345")).status_code == 404

    response = await api.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)
    total = "tradingbrain_api_request_duration_seconds_count"  # the request count

    def delta(**labels: str) -> float:
        return value(after, total, **labels) - value(before, total, **labels)

    assert delta(route="/v1/portfolio", method="GET", status="200") == 5
    assert delta(route="/v1/trades", method="GET", status="400") == 1
    assert delta(route="/v1/positions", method="GET", status="401") == 1
    assert delta(route="<unmatched>", method="GET", status="404") == 1
    assert not any("12345" in str(key) for key in after)  # no label per unknown path
    count = value(
        after,
        "tradingbrain_api_request_duration_seconds_count",
        route="/v1/portfolio",
        method="GET",
        status="200",
    )
    assert count >= 5
    assert 0 <= value(after, "tradingbrain_api_brain_heartbeat_age_seconds") < 60
    assert value(after, "tradingbrain_api_snapshot_revision") == revision
    assert value(after, "tradingbrain_api_snapshot_revision_lag") == 0
    assert value(after, "tradingbrain_api_store_connected") == 1
    assert re.search(r"^tradingbrain_api_websocket_clients 0\.0$", response.text, re.M)
    assert "tradingbrain_api_events_relayed_total" in response.text


async def test_cors_preflight_is_answered_without_a_key(start_api: StartApi, store: Store) -> None:
    await brain_state.publish_state(store)
    async with (
        start_api(cors_origins=(ORIGIN,)) as api,
        httpx.AsyncClient(base_url=api.url) as browser,
    ):
        preflight = {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        }
        response = await browser.options("/v1/portfolio", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "GET" in response.headers["access-control-allow-methods"]
        assert "authorization" in response.headers["access-control-allow-headers"].lower()

        refused = await browser.options(
            "/v1/portfolio", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

        # The real request still needs the key; its answers (401 too) carry the CORS header.
        unauthorized = await browser.get("/v1/portfolio", headers={"Origin": ORIGIN})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["access-control-allow-origin"] == ORIGIN
        await wait_for_status(
            lambda: api.get("/v1/portfolio", headers={"Origin": ORIGIN}), 200, "portfolio"
        )
        allowed = await api.get("/v1/portfolio", headers={"Origin": ORIGIN})
        assert allowed.headers["access-control-allow-origin"] == ORIGIN


async def test_without_cors_origins_there_is_no_cors(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as browser:
        response = await browser.options(
            "/v1/portfolio",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
        )
        assert response.status_code == 401
        assert "access-control-allow-origin" not in response.headers

"""Bearer auth: every /v1 route refuses a missing or wrong key; /healthz is open."""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import Route

from api.auth import KeyChecker, bearer_token
from tests.api.conftest import API_KEY, SECOND_KEY, Api, StartApi
from tests.api.helpers import assert_error


def v1_paths(api: Api) -> list[str]:
    paths = [route.path for route in api.app.routes if isinstance(route, Route)]
    found = sorted(path for path in paths if path.startswith("/v1/"))
    assert len(found) >= 12, found  # the plan's eleven endpoints and the OpenAPI document
    return found


WRONG_HEADERS = {
    "wrong key": f"Bearer {API_KEY}x",
    "prefix of the key": f"Bearer {API_KEY[:-1]}",
    "basic scheme": f"Basic {API_KEY}",
    "no scheme": API_KEY,
    "empty bearer": "Bearer",
}


async def test_every_v1_route_refuses_a_missing_key(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as anonymous:
        for path in [*v1_paths(api), "/v1/not-a-route"]:
            response = await anonymous.get(path)
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == 'Bearer realm="tradingbrain"'


async def test_every_v1_route_refuses_a_wrong_key(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as client:
        for path in v1_paths(api):
            for what, header in WRONG_HEADERS.items():
                response = await client.get(path, headers={"Authorization": header})
                assert response.status_code == 401, (path, what)
                assert_error(response, 401, "unauthorized")
                assert response.headers["www-authenticate"].startswith("Bearer")
            response = await client.post(
                path, headers={"Authorization": WRONG_HEADERS["wrong key"]}
            )
            assert_error(response, 401, "unauthorized")  # auth comes before the method check


async def test_every_configured_key_is_accepted(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as client:
        for header in (f"Bearer {API_KEY}", f"bearer {SECOND_KEY}", f"Bearer   {SECOND_KEY}"):
            response = await client.get("/v1/openapi.json", headers={"Authorization": header})
            assert response.status_code == 200, header


async def test_healthz_needs_no_key_and_metrics_does(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as anonymous:
        assert (await anonymous.get("/healthz")).status_code == 200
        assert_error(await anonymous.get("/metrics"), 401, "unauthorized")
    assert (await api.get("/metrics")).status_code == 200


async def test_metrics_can_be_opened_by_setting(start_api: StartApi) -> None:
    async with start_api(metrics_public=True) as api, httpx.AsyncClient(base_url=api.url) as anon:
        response = await anon.get("/metrics")
        assert response.status_code == 200
        assert "# TYPE tradingbrain_api_request_duration_seconds histogram" in response.text
        assert_error(await anon.get("/v1/portfolio"), 401, "unauthorized")


def test_key_checker_compares_against_every_key() -> None:
    checker = KeyChecker(["alpha-key", "beta-key"])
    assert checker.check("alpha-key")
    assert checker.check(b"beta-key")
    for wrong in ("", None, "alpha", "alpha-key ", "gamma-key", "beta-keyx", "ALPHA-KEY"):
        assert not checker.check(wrong)
    assert checker.check_authorization(b"Bearer beta-key")
    assert not checker.check_authorization(b"Token beta-key")
    assert not checker.check_authorization(None)
    assert bearer_token(b"BEARER  abc ") == b"abc"
    with pytest.raises(ValueError, match="API key"):
        KeyChecker([])
    with pytest.raises(ValueError, match="API key"):
        KeyChecker([""])

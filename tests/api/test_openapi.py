"""/v1/openapi.json: a valid OpenAPI 3.1 document, kept honest by schemathesis against the
real server (no 5xx, every response as documented, bad input refused, auth enforced)."""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis
import jsonschema
import schemathesis
from hypothesis import HealthCheck
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Route

from shared.store.base import Store
from tests.api import brain_state
from tests.api.conftest import AUTH, Api
from tests.api.helpers import wait_for_status

EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 20}
# Schema-valid values the document cannot tell from good ones, which the API refuses on
# purpose: a cursor it did not hand out, and since after until.
REFUSED_ON_PURPOSE = ("cursor: ", "since: must not be after until")


def refused_on_purpose(response: Any) -> bool:
    if response.status_code != 400:
        return False
    message = response.json()["error"]["message"]
    return bool(message.startswith(REFUSED_ON_PURPOSE))


async def test_document_describes_every_route_and_its_schemas_are_valid(api: Api) -> None:
    response = await api.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1")
    # The WebSocket stream (docs/events.md) is not REST: its plain-HTTP route only says 426.
    routes = {route.path for route in api.app.routes if isinstance(route, Route)}
    assert routes - {"/v1/events"} == set(document["paths"])
    for name, schema in document["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema), name
    for path, item in document["paths"].items():
        responses = item["get"]["responses"]
        assert "200" in responses, path
        if path.startswith("/v1/"):
            assert "401" in responses, path
    # Units are said: percents outside /v1/risk, fractions inside.
    schemas = document["components"]["schemas"]
    assert "Percent" in schemas["Position"]["properties"]["unrealized_pnl_pct"]["description"]
    risk = schemas["Risk"]["properties"]["current"]["properties"]
    assert "Fraction" in risk["daily_pnl_pct"]["description"]
    # schemathesis refuses a document that is not valid OpenAPI.
    schemathesis.openapi.from_dict(document).validate()


def negates_headers(case: Any) -> bool:
    components = case.meta.components if case.meta is not None else {}
    header = components.get(ParameterLocation.HEADER)
    return header is not None and header.mode == GenerationMode.NEGATIVE


def fuzz(base_url: str) -> list[str]:
    """Run schemathesis over every operation in both generation modes; returns failures."""
    schema = schemathesis.openapi.from_url(f"{base_url}/v1/openapi.json", headers=AUTH)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, examples in EXAMPLES.items():
            strategy = operation.as_strategy(generation_mode=mode)

            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            @hypothesis.given(case=strategy)
            def check(case: Any) -> None:
                # A case whose negated part is its Authorization header keeps it as generated
                # (the key would make it a valid request); every other case sends the key.
                headers = None if negates_headers(case) else AUTH
                response = case.call(base_url=base_url, headers=headers)
                excluded = [positive_data_acceptance] if refused_on_purpose(response) else []
                case.validate_response(response, headers=headers, excluded_checks=excluded)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                continue  # nothing to negate (an operation without parameters)
            except Exception as error:
                failures.append(f"{operation.label} [{mode.value}]: {error}")
    # Every operation but the document itself, which schemathesis leaves out of a run.
    assert operations == 13, (operations, failures)
    return failures


async def test_schemathesis_finds_nothing_against_the_real_server(
    api: Api, store: Store, history: AsyncEngine
) -> None:
    await brain_state.insert_history(history, trade_count=120, signal_count=60, days=20)
    await brain_state.publish_state(store)
    await wait_for_status(lambda: api.get("/v1/benchmarks"), 200, "the snapshots")
    failures = await asyncio.to_thread(fuzz, api.url)
    assert not failures, "\n\n".join(failures)

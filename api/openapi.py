"""The OpenAPI 3.1 document of the Data API, served at /v1/openapi.json.

Written by hand from ``api.schemas`` (no framework generates it), and kept honest by the test
suite, which runs schemathesis against it through a real server.
"""

from __future__ import annotations

from typing import Any

from api import schemas
from api.schemas import Schema, ref

OPENAPI_PATH = "/v1/openapi.json"

_DESCRIPTION = """Read-only access to a running TradingBrain: its state (served from memory, kept
current by the store's change announcements) and its history (SQL).

Every `/v1` route needs `Authorization: Bearer <API_KEY>`. Every response is an envelope:
`{"data": ..., "meta": {"timestamp", "mode", "version"}}`, or `{"error": {"code", "message"},
"meta": ...}`. Lists are newest first; when more rows exist than `limit`, `meta.next_cursor`
is set and `?cursor=` fetches the next page. Units: outside `/v1/risk`, `*_pct` values are
percents (1.5 means 1.5 %); in `/v1/risk` they are fractions (0.006 means 0.6 %). Unknown
query parameters are refused (400 `invalid_parameter`)."""


def _parameter(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_SINCE = _parameter("since", schemas.moment(), "Only rows at or after this UTC date-time.")
_UNTIL = _parameter("until", schemas.moment(), "Only rows at or before this UTC date-time.")
_PAGE_PARAMETERS = [
    _parameter("limit", schemas.LIMIT, "Rows per page (default 50, at most 500)."),
    _SINCE,
    _UNTIL,
    _parameter("symbol", schemas.SYMBOL, "Only this market symbol."),
    _parameter("cursor", schemas.CURSOR, "Continue after the previous page."),
]


def _envelope(data: Schema, *, paged: bool = False) -> Schema:
    return {
        "type": "object",
        "properties": {"data": data, "meta": ref("PageMeta" if paged else "Meta")},
        "required": ["data", "meta"],
    }


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": {"$ref": "#/components/responses/InvalidParameter"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "500": {"$ref": "#/components/responses/InternalError"},
    "503": {"$ref": "#/components/responses/BrainUnavailable"},
}


def _get(
    summary: str,
    data: Schema,
    *,
    parameters: list[dict[str, Any]] | None = None,
    paged: bool = False,
    description: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": summary.lower().replace(" ", "_").replace("'", ""),
        "parameters": parameters or [],
        "responses": {"200": _json(_envelope(data, paged=paged), summary), **_ERRORS},
    }
    if description:
        operation["description"] = description
    return {"get": operation}


def _list(name: str) -> Schema:
    return {"type": "array", "items": ref(name)}


def _paths(metrics_public: bool) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "get": {
            "summary": "Prometheus metrics",
            "operationId": "metrics",
            "description": "Prometheus text exposition: request counts and latency by route "
            "and status, WebSocket clients, events relayed, brain heartbeat age, snapshot "
            "revision lag. Bearer auth unless the metrics_public setting opens it.",
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": {"$ref": "#/components/responses/Unauthorized"},
            },
        }
    }
    if metrics_public:
        metrics["get"]["security"] = []
        del metrics["get"]["responses"]["401"]
    return {
        "/v1/system": _get(
            "System",
            ref("System"),
            description="Health and system info; liveness from the brain's heartbeat.",
        ),
        "/v1/portfolio": _get("Portfolio", ref("Portfolio")),
        "/v1/positions": _get("Positions", _list("Position")),
        "/v1/trades": _get(
            "Trades",
            _list("Trade"),
            parameters=_PAGE_PARAMETERS,
            paged=True,
            description="Executed trades, both sides, newest first (by executed_at, then id).",
        ),
        "/v1/performance": _get(
            "Performance",
            _list("PerformanceDay"),
            parameters=[
                _parameter("since", {"type": "string", "format": "date"}, "First UTC day."),
                _parameter("until", {"type": "string", "format": "date"}, "Last UTC day."),
            ],
            description="Daily performance series, newest day first.",
        ),
        "/v1/risk": _get("Risk", ref("Risk"), description="Limits and use; *_pct are fractions."),
        "/v1/market": _get("Market", _list("MarketItem")),
        "/v1/signals": _get(
            "Signals",
            _list("Signal"),
            parameters=[
                *_PAGE_PARAMETERS,
                _parameter("action", schemas.ACTION, "Only this action."),
            ],
            paged=True,
            description="Generated signals, newest first (by created_at, then id).",
        ),
        "/v1/strategy": _get("Strategy", ref("Strategy")),
        "/v1/ai/usage": _get("AI usage", ref("AiUsage")),
        "/v1/benchmarks": _get("Benchmarks", ref("Benchmarks")),
        OPENAPI_PATH: {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": _json({"type": "object"}, "The OpenAPI 3.1 document"),
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Health check",
                "operationId": "healthz",
                "description": "For container checks, without auth: 200 when the store and the "
                "history database answer, 503 otherwise.",
                "security": [],
                "responses": {
                    "200": _json(_envelope(ref("Health")), "Healthy"),
                    "503": _json(_envelope(ref("Health")), "The store or the database is down"),
                },
            }
        },
        "/metrics": metrics,
    }


def _error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response = _json(ref("Error"), description)
    if headers:
        response["headers"] = headers
    return response


def build_openapi(version: str, *, metrics_public: bool = False) -> dict[str, Any]:
    """The document, for this API version and its metrics exposure."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "TradingBrain Data API", "version": version, "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(metrics_public),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of the keys in API_KEY (make one: tradingbrain keygen).",
                }
            },
            "schemas": schemas.COMPONENT_SCHEMAS,
            "responses": {
                "InvalidParameter": _error_response(
                    "invalid_parameter: a bad, unknown or repeated query parameter (named)"
                ),
                "Unauthorized": _error_response(
                    "unauthorized: missing or wrong API key",
                    {
                        "WWW-Authenticate": {
                            "schema": {"type": "string"},
                            "description": 'Bearer realm="tradingbrain"',
                        }
                    },
                ),
                "NotFound": _error_response("not_found: no such route"),
                "MethodNotAllowed": _error_response(
                    "method_not_allowed: only GET (and HEAD) are served",
                    {"Allow": {"schema": {"type": "string"}}},
                ),
                "InternalError": _error_response("internal_error: a bug; never a traceback"),
                "BrainUnavailable": _error_response(
                    "brain_unavailable: the snapshot is not published yet, or the history "
                    "database does not answer"
                ),
            },
        },
    }

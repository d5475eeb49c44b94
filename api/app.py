"""The Data API application: ``create_app(settings)`` builds it, uvicorn serves it.

Layers, outermost first: CORS (only when origins are configured, so browser preflights are
answered before anything asks for a key), request metrics, bearer auth, then Starlette's
routing with one exception handler per kind of failure, each answering in the error envelope.
``create_app_from_environment`` is the factory ``tradingbrain api`` hands uvicorn (one call
per worker process).
"""

from __future__ import annotations

import gc
import logging
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from api.auth import BearerAuthMiddleware, KeyChecker
from api.errors import ApiError, ErrorCode, internal_error
from api.metrics import ApiMetrics, MetricsMiddleware
from api.openapi import build_openapi
from api.responses import Envelope, MetaClock
from api.routes import build_routes
from api.runtime import ApiRuntime
from api.snapshots import SnapshotCache
from shared import jsonutil
from shared.config import SettingsError, load_settings
from shared.logs import configure_logging
from shared.settings import ApiSettings, Settings

log = logging.getLogger(__name__)

PACKAGE = "tradingbrain"
V1_PREFIX = "/v1"
METRICS_PATH = "/metrics"


def api_version() -> str:
    try:
        return package_version(PACKAGE)
    except PackageNotFoundError:
        return "0.0.0"


def check_api_settings(api: ApiSettings) -> None:
    """The ``[api]`` rule no single key's range can state: the back-off starts at most at its cap.

    Raises SettingsError naming both keys (``shared.settings`` checks each key's own range).
    """
    if api.retry_initial > api.retry_max:
        raise SettingsError(
            f"api.retry_initial = {api.retry_initial!r} must not exceed "
            f"api.retry_max = {api.retry_max!r} (the back-off doubles from the first to the cap)"
        )


def create_app(settings: Settings) -> Starlette:
    """The application for ``settings`` (its ``[api]`` section configures it).

    Raises SettingsError when ``check_api_settings`` refuses ``settings.api``, ValueError when
    no API key is configured.
    """
    api = settings.api
    check_api_settings(api)
    checker = KeyChecker([key.get() for key in settings.secrets.api_keys])
    version = api_version()
    cache = SnapshotCache()
    envelope = Envelope(MetaClock(version), lambda: cache.mode)
    document = build_openapi(version, metrics_public=api.metrics_public)
    runtime = ApiRuntime(
        settings,
        cache=cache,
        envelope=envelope,
        metrics=ApiMetrics(),
        checker=checker,
        openapi_document=jsonutil.dumps(document),
    )
    routes = [*build_routes(runtime), *runtime.events.routes()]

    def protected(path: str) -> bool:
        if path == V1_PREFIX or path.startswith(V1_PREFIX + "/"):
            return True
        return path == METRICS_PATH and not api.metrics_public

    middleware = []
    if api.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(api.cors_origins),
                allow_methods=["GET", "HEAD", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    middleware += [
        Middleware(
            MetricsMiddleware,
            metrics=runtime.metrics,
            paths=[path for route in routes if (path := getattr(route, "path", None))],
        ),
        Middleware(
            BearerAuthMiddleware, checker=checker, protected=protected, render=envelope.error
        ),
    ]
    handlers = ExceptionHandlers(envelope)
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ApiError: handlers.api_error,
            HTTPException: handlers.http_exception,
            Exception: handlers.crash,
        },
        lifespan=runtime.lifespan,
    )
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    return app


class ExceptionHandlers:
    """Every failure answered once, in the error envelope; never a traceback."""

    def __init__(self, envelope: Envelope) -> None:
        self._envelope = envelope

    async def api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return self._envelope.error(exc)

    async def http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            error = ApiError(ErrorCode.NOT_FOUND, f"no such route: {request.url.path}")
        elif exc.status_code == 405:
            methods = (exc.headers or {}).get("Allow", "GET, HEAD").split(",")
            allowed = ", ".join(sorted(method.strip() for method in methods))
            error = ApiError(
                ErrorCode.METHOD_NOT_ALLOWED,
                f"{request.method} is not allowed here (allowed: {allowed})",
                headers={"Allow": allowed},
            )
        else:  # Starlette raises no other HTTPException on our routes; keep its status
            error = ApiError(ErrorCode.INVALID_PARAMETER, exc.detail, status=exc.status_code)
        return self._envelope.error(error)

    async def crash(self, request: Request, exc: Exception) -> Response:
        # The traceback is logged once, by uvicorn, as Starlette re-raises after this answer.
        log.error("internal error on %s %s: %r", request.method, request.url.path, exc)
        return self._envelope.error(internal_error())


def create_app_from_environment() -> Starlette:
    """The uvicorn factory: settings from the environment, logging with secrets redacted."""
    settings = load_settings()
    configure_logging(secrets=settings.secrets)
    app = create_app(settings)
    # What is loaded by now lives as long as the process: keep it out of the cyclic GC's full
    # collections, which would otherwise pause the event loop for tens of ms (bench/ws.py).
    gc.collect()
    gc.freeze()
    return app

"""``tradingbrain api`` (serve the Data API under uvicorn) and ``tradingbrain keygen``.

The API refuses to start without a key in API_KEY. uvicorn gets the import string of the app
factory (``factory=True``), so ``--workers N`` starts N processes that each build their own
app, cache and follower. With several workers, Prometheus' multiprocess mode needs a directory
shared by the workers: one is made (and removed afterwards) unless PROMETHEUS_MULTIPROC_DIR is
set already. Settings other than host, port and workers come from the usual places
(config/settings.toml, TB_CONFIG, TB_* variables), which the workers inherit.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile

from api.events_ws import uvicorn_ws_settings
from shared.cli import Command
from shared.config import load_settings
from shared.logs import configure_logging

FACTORY = "api.app:create_app_from_environment"
KEY_BYTES = 32  # secrets.token_urlsafe(32): 256 random bits, 43 characters
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_NO_KEY = 2

NO_KEY_MESSAGE = (
    "tradingbrain api: no API key configured. Make one with `tradingbrain keygen` and set it "
    "as API_KEY in the environment or in .env (several keys, comma separated, allow rotation)."
)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _configure_api(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: [api] host)")
    parser.add_argument("--port", type=int, help="port to listen on (default: [api] port)")
    parser.add_argument(
        "--workers", type=_positive, help="worker processes (default: [api] workers)"
    )


def _run_api(arguments: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.api.enabled:
        print("tradingbrain api: disabled by the settings ([api] enabled = false)", file=sys.stderr)
        return 0
    if not settings.secrets.api_keys:
        print(NO_KEY_MESSAGE, file=sys.stderr)
        return _NO_KEY
    from api.app import check_api_settings  # the app's modules: only when serving

    api = settings.api
    check_api_settings(api)  # refused here once, not by every worker's factory
    host = arguments.host or api.host
    port = arguments.port or api.port
    workers = arguments.workers or api.workers
    configure_logging(secrets=settings.secrets)
    made_dir = None
    if workers > 1 and not os.environ.get(MULTIPROC_DIR_VARIABLE):
        made_dir = tempfile.mkdtemp(prefix="tradingbrain-metrics-")
        os.environ[MULTIPROC_DIR_VARIABLE] = made_dir
    try:
        import uvicorn  # after the multiprocess directory is set, before any worker starts

        uvicorn.run(
            FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,  # records go through the root handler and its secret redaction
            access_log=api.access_log,
            server_header=False,
            proxy_headers=False,
            **uvicorn_ws_settings(api),
        )
    finally:
        if made_dir is not None:
            os.environ.pop(MULTIPROC_DIR_VARIABLE, None)
            shutil.rmtree(made_dir, ignore_errors=True)
    return 0


def make_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def _configure_keygen(parser: argparse.ArgumentParser) -> None:
    """keygen takes no arguments."""


def _run_keygen(arguments: argparse.Namespace) -> int:
    print(make_key())
    return 0


api_command = Command(
    help="serve the read-only Data API (REST) under uvicorn",
    configure=_configure_api,
    run=_run_api,
)
keygen_command = Command(
    help="print a new random API key (for API_KEY)",
    configure=_configure_keygen,
    run=_run_keygen,
)

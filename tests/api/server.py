"""Running the Data API for real in tests: uvicorn on a free loopback port.

``run_server`` serves in a task of the test's own event loop (like uvicorn's tests/utils.py);
``ThreadedServer`` serves from a thread with a loop of its own, for synchronous clients
(schemathesis) that would otherwise block the loop serving them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp

from api.events_ws import uvicorn_ws_settings
from shared.config import load_settings
from tests.support.services import async_wait_until, free_port, wait_until

HOST = "127.0.0.1"
START_TIMEOUT = 15.0
# As `tradingbrain api` serves /v1/events: the shipped [api] ws_* settings.
WS_SETTINGS = uvicorn_ws_settings(load_settings(env={}, dotenv_path=None).api)


def _config(app: ASGIApp, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=HOST, port=port, log_config=None, lifespan="on", access_log=False, **WS_SETTINGS
    )


@contextlib.asynccontextmanager
async def run_server(app: ASGIApp, *, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(_config(app, port))
    task = asyncio.create_task(server.serve())
    try:
        await async_wait_until(lambda: server.started or task.done(), START_TIMEOUT, "uvicorn")
        if not server.started:
            await task
            raise RuntimeError("uvicorn exited without starting (see the log)")
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, START_TIMEOUT)


@contextlib.contextmanager
def threaded_server(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` from a thread with its own event loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(_config(app, port))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), START_TIMEOUT, "uvicorn")
        if not server.started:
            raise RuntimeError("uvicorn exited without starting (see the log)")
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)

"""docs/events.md stays true: its catalog table is the catalog's, and its Python client
example follows a stream across a server restart without losing or repeating an event."""

from __future__ import annotations

import asyncio
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from shared.events import CATALOG
from shared.settings import Settings
from shared.store.base import Store
from tests.api.conftest import API_KEY
from tests.api.server import run_server
from tests.api_ws.client import events, ws_url
from tests.support.services import async_wait_until, free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
_SCALARS = {int: "int", float: "float", str: "string", bool: "bool", type(None): "null"}


def _render(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return " \\| ".join(f'"{value}"' for value in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_render(arg) for arg in typing.get_args(hint))
    if origin is dict:
        return "object"
    if origin is list:
        return f"list of {_render(typing.get_args(hint)[0])}s"
    return _SCALARS[hint]


def catalog_table() -> str:
    lines = ["| event | data fields | symbol | when | what |", "|---|---|---|---|---|"]
    for name, spec in CATALOG.items():
        fields = ", ".join(f"`{key}`: {_render(hint)}" for key, hint in spec.fields.items())
        symbol = "yes" if spec.carries_symbol else ""
        lines.append(
            f"| `{name.value}` | {fields or '(none)'} | {symbol} | {spec.frequency} "
            f"| {spec.summary} |"
        )
    return "\n".join(lines)


def test_the_catalog_table_is_the_catalog() -> None:
    assert catalog_table() in DOC.read_text(), (
        "docs/events.md: regenerate the catalog table with python -m tests.api_ws.test_docs"
    )


def doc_client() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    (example,) = [block for block in blocks if "async def follow(" in block]
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(example, str(DOC), "exec"), namespace)  # noqa: S102 (our own document)
    return namespace


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_python_client_example_resumes_across_a_restart(
    api_settings: Settings, store: Store, history: AsyncEngine
) -> None:
    follow = doc_client()["follow"]
    handled: list[dict[str, Any]] = []
    port = free_port()

    def server() -> Any:
        return run_server(create_app(api_settings), port=port)

    async with server() as url:
        task = asyncio.create_task(follow(ws_url(url), API_KEY, handled.append, last_event_id="0"))
        await store.events.append(events(1, 20))
        await async_wait_until(lambda: len(handled) >= 20, 10, "the first events")
    await store.events.append(events(21, 20))  # while the API is down
    try:
        async with server():
            await store.events.append(events(41, 20))
            await async_wait_until(lambda: len(handled) >= 60, 15, "the events after")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [int(frame["id"]) for frame in handled] == list(range(1, 61))


if __name__ == "__main__":
    print(catalog_table())

"""``tradingbrain reset``: wipe the paper account, its SQL history and its store."""

from __future__ import annotations

from brain.ledger import Ledger
from shared.db.engine import create_engine, database_url, safe_url
from shared.db.migrate import upgrade
from shared.settings import Settings
from shared.store.factory import open_store


def describe_targets(settings: Settings) -> list[str]:
    store = settings.store
    where = store.sqlite_path if store.backend == "sqlite" else f"Redis keys {store.key_prefix}:*"
    return [
        f"SQL history at {safe_url(database_url(settings))}",
        f"events and snapshots in {where}",
    ]


async def reset(settings: Settings) -> None:
    sql = create_engine(database_url(settings))
    try:
        await upgrade(sql)
        await Ledger(sql).wipe()
    finally:
        await sql.dispose()
    store = await open_store(settings)
    try:
        await store.clear()
    finally:
        await store.close()

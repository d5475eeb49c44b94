"""Open the configured store backend: ``[store] backend`` picks SQLite (the embedded default)
or Redis (``REDIS_URL``, default the local server)."""

from __future__ import annotations

from shared.settings import Settings
from shared.store.base import Store

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


async def open_store(settings: Settings, *, read_only: bool = False) -> Store:
    """The store of ``settings``. ``read_only`` is for processes that must never write brain
    data (the API): SQLite opens the file read-only; Redis has no such mode, so it is kept by
    the API only ever calling read methods."""
    store_settings = settings.store
    if store_settings.backend == "sqlite":
        from shared.store.sqlite_backend import SQLiteStore

        return await SQLiteStore.open(store_settings, read_only=read_only)
    from shared.store.redis_backend import RedisStore

    secret = settings.secrets.redis_url
    url = secret.get() if secret is not None else DEFAULT_REDIS_URL
    return await RedisStore.connect(url, store_settings)

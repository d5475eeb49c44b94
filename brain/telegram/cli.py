"""``tradingbrain telegram``: the alert relay on its own, until SIGINT or SIGTERM.

It reads the same event log as the brain's built-in relay would (alerts only: commands act on
the brain, so only the brain serves them). Run one relay per consumer group: two would share
the events between them.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from brain.telegram.service import TelegramService, telegram_credentials
from shared.cli import Command, CommandError
from shared.config import load_settings
from shared.logs import configure_logging
from shared.settings import Settings
from shared.store.base import StoreUnavailable
from shared.store.factory import open_store


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(args.log_level, secrets=settings.secrets)
    if telegram_credentials(settings) is None:
        raise CommandError(
            "tradingbrain telegram: set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID "
            "(in the environment or .env)"
        )
    try:
        asyncio.run(_serve(settings))
    except StoreUnavailable as exc:
        raise CommandError(f"tradingbrain telegram: {exc}") from None
    return 0


async def _serve(settings: Settings) -> None:
    """Relay until SIGINT/SIGTERM; a second signal stops at once instead of draining."""
    store = await open_store(settings)
    try:
        service = TelegramService.from_settings(settings, store.events)  # credentials checked
        stop = asyncio.Event()
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stop.is_set() and main is not None:
                main.cancel()
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        try:
            await service.start()
            await stop.wait()
            await service.stop()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    finally:
        await store.close()


telegram_command = Command(
    help="relay the event log's alerts to Telegram on its own (alerts only: commands are "
    "served by the brain)",
    configure=_configure,
    run=_run,
)

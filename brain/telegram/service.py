"""Telegram in a process: the alert relay and, inside the brain, the command bot, each its own
task, so a slow or failing Telegram holds up neither the other nor trading.

The brain starts it when ``TELEGRAM_BOT_TOKEN`` and ``TELEGRAM_CHAT_ID`` are both set, and stops
it in two steps: commands first (before the engine stops, so none acts on a stopping brain),
the relay last (after the brain's final events reached the log, so ``system_shutdown`` goes out).
``tradingbrain telegram`` runs the relay alone (no controls: alerts only).
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import suppress

from telegram import Bot

from brain.telegram.commands import BrainControls, TelegramCommands, bot_file_url
from brain.telegram.relay import TelegramRelay
from shared.settings import Settings
from shared.store.base import EventLog

log = logging.getLogger(__name__)

_PREPARE_TIMEOUT = 5.0  # seconds start() may spend creating the consumer group
_STOP_MARGIN = 2.0  # beyond the drain: the relay's read in hand and closing its HTTP client


def telegram_credentials(settings: Settings) -> tuple[str, str] | None:
    """The bot token and chat id, or None unless both are set."""
    token, chat = settings.secrets.telegram_bot_token, settings.secrets.telegram_chat_id
    if token is None or chat is None:
        return None
    return token.get(), chat.get()


def configure_process() -> None:
    """What python-telegram-bot needs of the process it runs in."""
    # httpx logs every request's URL at INFO, and a Bot API URL holds the bot token.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # PTB 22 warns inside its own RetryAfter unless durations are opted in to timedelta.
    os.environ.setdefault("PTB_TIMEDELTA", "true")


class TelegramService:
    def __init__(
        self, relay: TelegramRelay | None, commands: TelegramCommands | None, *, grace: float
    ) -> None:
        """Without a relay the service is off: start and stop do nothing."""
        self._relay = relay
        self._commands = commands
        self._grace = grace
        self._relay_stop = asyncio.Event()
        self._commands_stop = asyncio.Event()
        self._relay_task: asyncio.Task[None] | None = None
        self._commands_task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._relay is not None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        events: EventLog,
        controls: BrainControls | None = None,
        *,
        enabled: bool = True,
    ) -> TelegramService:
        """The service of ``settings`` on ``events``; off unless ``enabled`` and Telegram is
        configured. With ``controls`` (the engine) it also serves commands."""
        credentials = telegram_credentials(settings)
        if credentials is None or not enabled:
            return cls(None, None, grace=0.0)
        token, chat_id = credentials
        config = settings.telegram
        bot = Bot(token, base_url=config.base_url, base_file_url=bot_file_url(config.base_url))
        relay = TelegramRelay(bot, chat_id, events, config)
        commands = None
        if controls is not None:
            commands = TelegramCommands(controls, token, chat_id, config)
        return cls(relay, commands, grace=config.drain_timeout + _STOP_MARGIN)

    async def start(self) -> None:
        """Create the consumer group now (so the brain's first events come after it), then
        start the tasks. Never raises: an unreachable store or Telegram is retried in them."""
        if self._relay is None:
            return
        configure_process()
        try:
            async with asyncio.timeout(_PREPARE_TIMEOUT):
                await self._relay.prepare()
        except Exception as exc:  # the brain starts regardless; the relay task tries again
            log.warning("the Telegram relay will create its consumer group later (%s)", exc)
        self._relay_task = asyncio.create_task(
            self._relay.run(self._relay_stop), name="telegram-relay"
        )
        if self._commands is not None:
            self._commands_task = asyncio.create_task(
                self._commands.run(self._commands_stop), name="telegram-commands"
            )

    async def stop_commands(self) -> None:
        """Stop answering commands (a command in hand may finish)."""
        self._commands_stop.set()
        await _finish(self._commands_task, self._grace)
        self._commands_task = None

    async def stop(self) -> None:
        """Stop commands, then the relay once it delivered what the log holds (bounded by
        ``[telegram] drain_timeout``)."""
        await self.stop_commands()
        self._relay_stop.set()
        await _finish(self._relay_task, self._grace)
        self._relay_task = None


async def _finish(task: asyncio.Task[None] | None, grace: float) -> None:
    if task is None:
        return
    done, _ = await asyncio.wait([task], timeout=grace)
    if not done:
        log.warning("%s did not stop within %.1fs; cancelling it", task.get_name(), grace)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    elif not task.cancelled() and task.exception() is not None:
        log.error("%s failed", task.get_name(), exc_info=task.exception())

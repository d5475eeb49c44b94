"""The Telegram relay: event log -> switch filter -> message -> Telegram -> acknowledgement.

It reads the event log as a consumer group, so it sees every event at least once across
restarts: an event is acknowledged only once Telegram accepted its message(s), or once the
relay decided not to send it (its switch is off, or Telegram refused it for good). A relay
killed in between gets the event back when it restarts under the same consumer name.

Telegram's answers decide what happens next: flood control (``RetryAfter``) waits as long as
Telegram asks, network errors retry with a doubling back-off, and a bad request (a message
Telegram will never take) is logged and acknowledged instead of blocking the queue forever.
The brain only appends to the log, so nothing here can delay trading.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from brain.telegram.messages import render
from shared.events import CATALOG, Event
from shared.settings import NotificationSettings, TelegramSettings
from shared.store.base import LOG_START, EventLog, StoreError

log = logging.getLogger(__name__)

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def switched_on(switches: NotificationSettings, event: Event) -> bool:
    """Whether ``[telegram.notifications]`` wants this event (an event without a switch: no)."""
    return bool(getattr(switches, CATALOG[event.name].telegram_switch, False))


def retry_after_seconds(error: RetryAfter) -> float:
    # PTB 22 warns on reading retry_after until PTB_TIMEDELTA opts in; accept either type.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(slots=True)
class _Delivery:
    """One event on its way: its messages (none when its switch is off) and how many Telegram
    has accepted, so a retry never sends a part twice."""

    event: Event
    messages: list[str]
    sent: int = 0


class TelegramRelay:
    def __init__(
        self,
        bot: Bot,
        chat_id: str,
        events: EventLog,
        config: TelegramSettings,
        *,
        batch: int = 50,
        block: float = 0.25,
    ) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._events = events
        self._group = events.group(
            config.consumer_group, config.consumer_name, min_idle=config.claim_idle
        )
        self._config = config
        self._batch = batch
        self._block = block  # also how long a stop may wait for the read in hand
        self._inbox: deque[_Delivery] = deque()
        self._acks: list[str] = []
        self._read_delay = config.retry_initial

    async def prepare(self) -> None:
        """Create the consumer group the first time, at the log's newest event: a new relay
        alerts from now on rather than replaying history. Later starts keep its position."""
        newest = (await self._events.bounds()).newest
        await self._group.create(start_after=newest or LOG_START)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then what the log already holds (the brain's
        ``system_shutdown``, say) for up to ``[telegram] drain_timeout`` seconds."""
        try:
            if not await self._until_done(self.prepare, "preparing the consumer group", stop):
                return
            if not await self._until_done(self._bot.initialize, "connecting to Telegram", stop):
                return
            log.info("Telegram relay delivering alerts as @%s", self._bot.username)
            while not stop.is_set():
                try:
                    if not self._inbox:
                        await self._fill(self._block, stop)
                    await self._work(stop)
                except Exception:  # a surprise must not end alerts for the brain's lifetime
                    log.exception("Telegram relay failed; starting over")
                    if await self._pause(self._config.retry_max, stop):
                        break
                    with suppress(Exception):
                        await self.prepare()  # a reset may have dropped the group
            await self._drain()
        finally:
            await self._bot.shutdown()

    async def _drain(self) -> None:
        forever = asyncio.Event()  # retries now end only with the drain's deadline
        try:
            async with asyncio.timeout(self._config.drain_timeout):
                while self._inbox or await self._fill(0.0, forever):
                    await self._work(forever)
                await self._flush_acks(forever)
        except TimeoutError:
            log.warning(
                "Telegram relay stopped with alerts undelivered; they go out on its next start"
            )

    async def _fill(self, block: float, stop: asyncio.Event) -> int:
        try:
            events = await self._group.read(count=self._batch, block=block)
        except StoreError as exc:
            log.warning("Telegram relay cannot read the event log (%s)", exc)
            if not await self._pause(self._read_delay, stop):
                with suppress(StoreError):
                    await self.prepare()  # a reset may have dropped the group
            self._read_delay = min(self._read_delay * 2, self._config.retry_max)
            return 0
        self._read_delay = self._config.retry_initial
        switches = self._config.notifications
        for event in events:
            messages = render(event) if switched_on(switches, event) else []
            self._inbox.append(_Delivery(event, messages))
        return len(events)

    async def _work(self, stop: asyncio.Event) -> None:
        """Send and acknowledge what was read, in order; return early when stopped."""
        while self._inbox:
            head = self._inbox[0]
            if head.messages and not await self._send(head, stop):
                return  # stopped: the event stays unacknowledged and comes back
            self._inbox.popleft()
            self._acks.append(head.event.id)
            # A sent alert is acknowledged at once (a crash would send it again); skipped
            # events are acknowledged together, so high-frequency ones cost one write a batch.
            if head.messages and not await self._flush_acks(stop):
                return
        await self._flush_acks(stop)

    async def _send(self, delivery: _Delivery, stop: asyncio.Event) -> bool:
        delay = self._config.retry_initial
        name = delivery.event.name.value
        while delivery.sent < len(delivery.messages):
            try:
                await self._bot.send_message(
                    self._chat_id,
                    delivery.messages[delivery.sent],
                    parse_mode=ParseMode.HTML,
                    link_preview_options=_NO_PREVIEW,
                )
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                log.warning("Telegram flood control: waiting %.1fs before the next alert", wait)
                if await self._pause(wait, stop):
                    return False
                continue
            except BadRequest as exc:  # before NetworkError: it is one, but retrying never helps
                log.error(
                    "Telegram refused the %s alert of event %s for good (%s); skipping it",
                    name,
                    delivery.event.id,
                    exc.message,
                )
            except TelegramError as exc:  # network errors, timeouts, a blocked bot, ...
                log.warning("sending the %s alert failed (%s); retrying in %.1fs", name, exc, delay)
                if await self._pause(delay, stop):
                    return False
                delay = min(delay * 2, self._config.retry_max)
                continue
            delivery.sent += 1
        return True

    async def _flush_acks(self, stop: asyncio.Event) -> bool:
        delay = self._config.retry_initial
        while self._acks:
            try:
                await self._group.ack(self._acks)
            except StoreError as exc:
                log.warning("acknowledging alerts failed (%s); retrying in %.1fs", exc, delay)
                if await self._pause(delay, stop):
                    return False
                delay = min(delay * 2, self._config.retry_max)
                continue
            self._acks.clear()
        return True

    async def _until_done(
        self, action: Callable[[], Awaitable[None]], what: str, stop: asyncio.Event
    ) -> bool:
        """Run ``action`` until it succeeds (True) or ``stop`` is set (False)."""
        delay = self._config.retry_initial
        while True:
            try:
                await action()
                return True
            except InvalidToken:  # its message holds the token: say what is wrong instead
                log.error("Telegram rejected the bot token (TELEGRAM_BOT_TOKEN)")
                delay = self._config.retry_max
            except (TelegramError, StoreError) as exc:
                log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            if await self._pause(delay, stop):
                return False
            delay = min(delay * 2, self._config.retry_max)

    @staticmethod
    async def _pause(seconds: float, stop: asyncio.Event) -> bool:
        """Wait ``seconds``; True when ``stop`` was set meanwhile."""
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

"""Operator commands over Telegram: /status, /positions, /pause, /resume, /resume_trading,
/closeall (after a confirmation) and /help, served by python-telegram-bot's Application with
long polling.

Only the configured chat is obeyed: every other chat's update is logged and dropped before any
handler sees it. Commands act on the brain itself (``BrainControls``, which the engine is), so
they are served only when the relay runs inside the brain process. Updates sent while the bot
was down are dropped at start: a stale /closeall must never fire hours later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import timedelta
from typing import Any, Protocol

from telegram import BotCommand, Chat, Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    TypeHandler,
)

from brain.models import Fill
from brain.telegram.messages import esc, money, percent, price, split_message, when
from shared.settings import TelegramSettings
from shared.store.base import SnapshotName
from shared.timeutil import parse_iso

log = logging.getLogger(__name__)

App = Application[Any, Any, Any, Any, Any, Any]
Context = ContextTypes.DEFAULT_TYPE

COMMANDS: Sequence[tuple[str, str]] = (
    ("status", "system and portfolio in a few lines"),
    ("positions", "the open positions"),
    ("pause", "stop opening new positions (exits and stops go on)"),
    ("resume", "open new positions again"),
    ("resume_trading", "clear a risk halt that needs an explicit resume"),
    ("closeall", "sell every position now (asks to confirm)"),
    ("help", "this list"),
)
CONFIRM = "confirm"


class BrainControls(Protocol):
    """What commands may do to the brain; ``brain.engine.TradingEngine`` is one."""

    async def pause(self) -> bool: ...
    async def resume(self) -> bool: ...
    async def resume_trading(self) -> bool: ...
    async def close_all(self) -> Sequence[Fill]: ...
    def snapshot_docs(self, *, status: str) -> dict[SnapshotName, Any]: ...


def bot_file_url(base_url: str) -> str:
    """The file endpoint that goes with a Bot API base URL (…/bot -> …/file/bot)."""
    root, found, _ = base_url.rpartition("/bot")
    return f"{root}/file/bot" if found else base_url


class TelegramCommands:
    def __init__(
        self, controls: BrainControls, token: str, chat_id: str, config: TelegramSettings
    ) -> None:
        self._controls = controls
        self._token = token
        self._chat_id = chat_id
        self._config = config

    async def run(self, stop: asyncio.Event) -> None:
        """Answer commands until ``stop`` is set; Telegram being unreachable at start only
        delays them (retried with back-off)."""
        delay = self._config.retry_initial
        while not stop.is_set():
            application = self._build()
            try:
                await self._start(application)
            except TelegramError as exc:
                await _close(application)
                problem = "the bot token was rejected" if isinstance(exc, InvalidToken) else exc
                log.warning(
                    "Telegram commands cannot start (%s); retrying in %.1fs", problem, delay
                )
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self._config.retry_max)
                continue
            try:
                await stop.wait()
            finally:
                await _close(application)

    def _build(self) -> App:
        application: App = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(self._config.base_url)
            .base_file_url(bot_file_url(self._config.base_url))
            .job_queue(None)
            .build()
        )
        application.add_handler(TypeHandler(Update, self._guard), group=-1)
        handlers = {
            "status": self._status,
            "positions": self._positions,
            "pause": self._pause,
            "resume": self._resume,
            "resume_trading": self._resume_trading,
            "closeall": self._close_all,
            "help": self._help,
            "start": self._help,  # what Telegram sends when a chat opens the bot
        }
        for name, callback in handlers.items():
            application.add_handler(CommandHandler(name, callback))
        application.add_error_handler(self._on_error)
        return application

    async def _start(self, application: App) -> None:
        await application.initialize()
        assert application.updater is not None
        timeout = timedelta(seconds=self._config.poll_timeout)
        await application.updater.start_polling(timeout=timeout, drop_pending_updates=True)
        await application.start()
        try:
            await application.bot.set_my_commands([BotCommand(n, d) for n, d in COMMANDS])
        except TelegramError as exc:  # only the menu in the chat app: commands still work
            log.warning("setting the command menu failed (%s)", exc)
        log.info("Telegram commands served as @%s", application.bot.username)

    # --- who may command ----------------------------------------------------------------------

    def _allowed(self, chat: Chat) -> bool:
        configured = self._chat_id.strip()
        if str(chat.id) == configured:
            return True
        return bool(chat.username) and f"@{chat.username}".lower() == configured.lower()

    async def _guard(self, update: Update, _context: Context) -> None:
        chat = update.effective_chat
        if chat is None or not self._allowed(chat):
            message = update.effective_message
            text = message.text if message is not None else None
            log.warning(
                "ignored an update from chat %s (not the configured chat): %.40r",
                chat.id if chat else "?",
                text,
            )
            raise ApplicationHandlerStop

    async def _on_error(self, _update: object, context: Context) -> None:
        log.error("a Telegram command failed", exc_info=context.error)

    # --- the commands -------------------------------------------------------------------------

    async def _help(self, update: Update, _context: Context) -> None:
        lines = ["🤖 <b>TradingBrain commands</b>"]
        lines += [f"/{name} – {esc(description)}" for name, description in COMMANDS]
        await _reply(update, "\n".join(lines))

    async def _status(self, update: Update, _context: Context) -> None:
        await _reply(update, status_text(self._controls.snapshot_docs(status="running")))

    async def _positions(self, update: Update, _context: Context) -> None:
        docs = self._controls.snapshot_docs(status="running")
        await _reply(update, positions_text(docs[SnapshotName.POSITIONS]))

    async def _pause(self, update: Update, _context: Context) -> None:
        changed = await self._controls.pause()
        await _reply(
            update,
            "⏸ Paused: no new positions; exits and stops go on. /resume to restart."
            if changed
            else "Trading was already paused.",
        )

    async def _resume(self, update: Update, _context: Context) -> None:
        changed = await self._controls.resume()
        await _reply(update, "▶️ Resumed: new positions may open." if changed else "Not paused.")

    async def _resume_trading(self, update: Update, _context: Context) -> None:
        cleared = await self._controls.resume_trading()
        await _reply(update, "✅ Risk halt cleared." if cleared else "Trading is not halted.")

    async def _close_all(self, update: Update, context: Context) -> None:
        if [arg.lower() for arg in context.args or ()] != [CONFIRM]:
            positions = self._controls.snapshot_docs(status="running")[SnapshotName.POSITIONS]
            if not positions:
                await _reply(update, "No open positions: nothing to close.")
                return
            await _reply(
                update,
                f"⚠️ This sells all {len(positions)} open positions now at the last price.\n"
                f"To go ahead, send <code>/closeall {CONFIRM}</code>",
            )
            return
        fills = await self._controls.close_all()
        await _reply(update, closed_text(fills))


# --- replies -----------------------------------------------------------------------------------


def status_text(docs: Mapping[SnapshotName, Any]) -> str:
    system, portfolio = docs[SnapshotName.SYSTEM], docs[SnapshotName.PORTFOLIO]
    if system.get("halted"):
        state = f"⛔ halted: {esc(system.get('halt_reason'))}"
    else:
        state = "⏸ paused" if system.get("paused") else "▶️ trading"
    last_scan = system.get("last_scan")
    return "\n".join(
        [
            f"🤖 <b>TradingBrain</b> · {esc(system.get('mode'))} · {esc(system.get('feed'))} feed",
            f"State: {state}",
            f"Portfolio <b>{money(portfolio['total_value'])} USDT</b>",
            f"Cash {money(portfolio['cash'])} · {esc(portfolio['position_count'])} positions",
            f"Unrealised P&amp;L {money(portfolio['unrealized_pnl'], signed=True)}"
            f" · realised {money(portfolio['realized_pnl'], signed=True)}",
            f"Last scan {when(parse_iso(last_scan)) if last_scan else 'none yet'}",
        ]
    )


def positions_text(positions: Sequence[Mapping[str, Any]]) -> str:
    if not positions:
        return "No open positions."
    lines = [f"📂 <b>{len(positions)} open positions</b>"]
    for p in positions:
        stop, target = p.get("stop_loss"), p.get("take_profit")
        lines += [
            "",
            f"<b>{esc(p['symbol'])}</b> {price(p['qty'])} @ {price(p['entry_price'])}",
            f"Now {price(p['current_price'])} · P&amp;L"
            f" {money(p['unrealized_pnl'], signed=True)} ({percent(p['unrealized_pnl_pct'])})",
            f"Stop {price(stop) if stop else '–'} · target {price(target) if target else '–'}",
        ]
    return "\n".join(lines)


def closed_text(fills: Sequence[Fill]) -> str:
    if not fills:
        return "No position was closed (none open, or no price for them yet)."
    lines = [f"🧯 <b>Closed {len(fills)} positions</b>"]
    for fill in fills:
        pnl = f" · P&amp;L {money(fill.pnl, signed=True)}" if fill.pnl is not None else ""
        lines.append(f"{esc(fill.symbol)} {price(fill.qty)} @ {price(fill.price)}{pnl}")
    return "\n".join(lines)


async def _reply(update: Update, text: str) -> None:
    message = update.effective_message
    if message is None:
        return
    for part in split_message(text):
        await message.reply_text(part, parse_mode=ParseMode.HTML)


async def _close(application: App) -> None:
    """Stop polling, let handlers in hand finish, release the HTTP clients; never raises."""
    try:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()
        await application.bot.shutdown()  # a no-op after shutdown; frees a half-initialised bot
    except Exception:
        log.exception("stopping the Telegram commands failed")

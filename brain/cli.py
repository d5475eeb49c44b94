"""The brain's commands: ``tradingbrain brain``, ``backtest`` and ``reset``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
import tempfile
from pathlib import Path

from brain.backtest import BacktestReport, run_backtest
from brain.feeds.base import FeedError
from brain.process import run_brain
from shared.cli import Command, CommandError
from shared.config import load_settings
from shared.logs import configure_logging
from shared.settings import Settings


def _configure_brain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--exit-at-end",
        action="store_true",
        help="stop when a replay runs out of candles (default: [market] replay_exit_at_end)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def _run_brain(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(args.log_level, secrets=settings.secrets)
    exit_at_end = True if args.exit_at_end else None
    try:
        asyncio.run(_serve(settings, exit_at_end))
    except FeedError as exc:
        raise CommandError(f"tradingbrain brain: {exc}") from None
    return 0


async def _serve(settings: Settings, exit_at_end: bool | None) -> None:
    """Run until SIGINT/SIGTERM; a second signal stops at once instead of gracefully."""
    stop = asyncio.Event()
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()  # the second signal: no more waiting
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        await run_brain(settings, stop, exit_at_end=exit_at_end)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


brain_command = Command(
    help="run the trading brain (the configured feed and store) until stopped",
    configure=_configure_brain,
    run=_run_brain,
)


def _configure_backtest(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, help="a folder of candle files (default: [market] replay_dir)"
    )
    parser.add_argument("--symbols", help="comma separated (default: [market] symbols)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_backtest(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging("WARNING", secrets=settings.secrets)
    market = settings.market
    if args.data is not None:
        market = dataclasses.replace(market, replay_dir=str(args.data))
    if args.symbols:
        symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
        market = dataclasses.replace(market, symbols=symbols)
    settings = dataclasses.replace(settings, market=market)
    with tempfile.TemporaryDirectory(prefix="tradingbrain-backtest-") as scratch:
        try:
            report = asyncio.run(
                run_backtest(settings, Path(scratch), progress=not args.no_progress)
            )
        except FeedError as exc:
            raise CommandError(f"tradingbrain backtest: {exc}") from None
    _print_report(report)
    return 0


def _print_report(report: BacktestReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Backtest", show_header=False)
    for label, value in report.rows():
        table.add_row(label, value)
    Console(file=sys.stdout).print(table)


backtest_command = Command(
    help="run the brain's own engine over candle files as fast as it can and print the results",
    configure=_configure_backtest,
    run=_run_backtest,
)


def _configure_reset(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _run_reset(args: argparse.Namespace) -> int:
    from brain.reset import describe_targets, reset

    settings = load_settings()
    configure_logging("WARNING", secrets=settings.secrets)
    print("This deletes the paper account and all history:")
    for target in describe_targets(settings):
        print(f"  - {target}")
    if not args.yes:
        answer = input("Type 'reset' to continue: ") if sys.stdin.isatty() else ""
        if answer.strip() != "reset":
            print("Nothing was deleted.")
            return 1
    asyncio.run(reset(settings))
    print("Reset done: the next start begins a fresh paper account.")
    return 0


reset_command = Command(
    help="wipe the paper account, its history and its events (asks for confirmation)",
    configure=_configure_reset,
    run=_run_reset,
)

"""The ``tradingbrain`` console script.

Subcommands are plugins: each installed package registers a ``Command`` under the entry-point
group ``tradingbrain.commands`` (see pyproject.toml), so ``tradingbrain --help`` lists exactly
what is installed and shared/ never imports brain/ or api/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points

from shared.config import SettingsError, load_settings
from shared.settings import Secret, Secrets, Settings

__all__ = ["COMMAND_GROUP", "Command", "config_command", "main"]

COMMAND_GROUP = "tradingbrain.commands"
_USAGE_ERROR = 2  # argparse's code for a bad command line; also used for bad settings


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: its help line, how it adds its arguments, and what it runs."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclasses.dataclass(frozen=True, slots=True)
class _Unavailable:
    """An installed command whose entry point failed to load; reported only when invoked."""

    reason: str


class CommandError(Exception):
    """A command cannot run as configured; its message is all the user sees (no traceback)."""


def main(argv: Sequence[str] | None = None) -> int:
    commands = _installed_commands()
    parser = _build_parser(commands)
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_:  # --help and usage errors: return the code, don't exit
        return exit_.code if isinstance(exit_.code, int) else _USAGE_ERROR
    if arguments.command is None:
        parser.print_help(sys.stderr)
        return _USAGE_ERROR
    command = commands[arguments.command]
    if isinstance(command, _Unavailable):
        print(f"tradingbrain: {arguments.command}: {command.reason}", file=sys.stderr)
        return _USAGE_ERROR
    try:
        return command.run(arguments)
    except (SettingsError, CommandError) as error:
        print(error, file=sys.stderr)
        return _USAGE_ERROR
    except KeyboardInterrupt:
        return 130


def _installed_commands() -> dict[str, Command | _Unavailable]:
    found = sorted(entry_points(group=COMMAND_GROUP), key=lambda point: point.name)
    return {point.name: _load(point) for point in found}


def _load(point: EntryPoint) -> Command | _Unavailable:
    # One broken plugin must not take the whole CLI (and the others' --help) down with it.
    try:
        loaded = point.load()
    except Exception as error:
        return _Unavailable(f"cannot load {point.value}: {type(error).__name__}: {error}")
    if not isinstance(loaded, Command):
        return _Unavailable(f"{point.value} is a {type(loaded).__name__}, not a Command")
    return loaded


def _build_parser(commands: dict[str, Command | _Unavailable]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradingbrain", description="TradingBrain: the paper-trading brain and its tools."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, command in commands.items():
        if isinstance(command, _Unavailable):
            subparsers.add_parser(name, help=f"(unavailable: {command.reason})")
            continue
        subparser = subparsers.add_parser(name, help=command.help, description=command.help)
        command.configure(subparser)
    return parser


def _configure_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check", action="store_true", help='only validate the settings; print "settings OK"'
    )


def _run_config(arguments: argparse.Namespace) -> int:
    settings = load_settings()
    if arguments.check:
        print("settings OK")
    else:
        print(json.dumps(settings_summary(settings), indent=2))
    return 0


def settings_summary(settings: Settings) -> dict[str, object]:
    """The effective settings as plain data; secrets only as "set"/"unset", never a value."""
    summary: dict[str, object] = {
        field.name: dataclasses.asdict(getattr(settings, field.name))
        for field in dataclasses.fields(settings)
        if field.name != "secrets"
    }
    summary["secrets"] = _secrets_summary(settings.secrets)
    return summary


def _secrets_summary(secrets: Secrets) -> dict[str, str]:
    count = len(secrets.api_keys)
    summary = {"api_keys": f"set ({count} key{'' if count == 1 else 's'})" if count else "unset"}
    for field in dataclasses.fields(secrets):
        value = getattr(secrets, field.name)
        if isinstance(value, Secret | None):
            summary[field.name] = "unset" if value is None else "set"
    return summary


config_command = Command(
    help="print the effective settings as JSON (secrets only as set/unset)",
    configure=_configure_config,
    run=_run_config,
)

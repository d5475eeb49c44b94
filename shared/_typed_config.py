"""Build frozen settings dataclasses from plain mappings (parsed TOML plus env overrides).

Generic: driven by ``typing.get_type_hints(cls, include_extras=True)``, so a new setting needs
only a dataclass field and a default in config/settings.toml. Every value carries where it came
from (a file path or an env var name), so each error names the dotted key and its origin.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, get_args, get_origin

from shared.settings import Between, NonEmpty

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

# Spellings accepted for booleans given as text (env overrides); compared lower-case.
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_SHOWN_VALUE_LIMIT = 80


class SettingsError(ValueError):
    """A setting is unknown, missing or invalid; the message says which and where from."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"settings error: {problem}")


class Origins:
    """Where each dotted key's value came from; a key not recorded inherits its parent's."""

    def __init__(self, fallback: str) -> None:
        self._by_key: dict[str, str] = {}
        self._fallback = fallback

    def record(self, key: str, origin: str) -> None:
        self._by_key[key] = origin

    def of(self, key: str) -> str:
        key = key.split("[", 1)[0]  # list elements come from wherever their list did
        while key:
            if key in self._by_key:
                return self._by_key[key]
            key = key.rpartition(".")[0]
        return self._fallback


def join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def merge_layer(
    base: dict[str, Any], layer: Mapping[str, Any], origin: str, origins: Origins, prefix: str = ""
) -> None:
    """Deep-merge ``layer`` into ``base`` in place: tables merge, anything else replaces."""
    for name, value in layer.items():
        key = join(prefix, name)
        origins.record(key, origin)
        if isinstance(value, Mapping) and isinstance(base.get(name), dict):
            merge_layer(base[name], value, origin, origins, key)
        else:
            base[name] = _copy_tables(value)
            if isinstance(value, Mapping):
                _record_all(value, origin, origins, key)


def _copy_tables(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {name: _copy_tables(item) for name, item in value.items()}
    return value


def _record_all(table: Mapping[str, Any], origin: str, origins: Origins, prefix: str) -> None:
    for name, value in table.items():
        origins.record(join(prefix, name), origin)
        if isinstance(value, Mapping):
            _record_all(value, origin, origins, join(prefix, name))


def setting_type(cls: type[DataclassInstance], path: list[str], excluded: frozenset[str]) -> Any:
    """The type (constraints stripped) of the field at ``path`` below ``cls``, or None.

    None for an unknown name, a path that goes through a non-table, and for top-level fields in
    ``excluded`` (set some other way, e.g. secrets). A table's type is a dataclass: see is_table.
    """
    current: Any = cls
    for depth, name in enumerate(path):
        if not is_table(current) or (depth == 0 and name in excluded):
            return None
        if name not in {field.name for field in dataclasses.fields(current)}:
            return None
        current = _strip_annotated(typing.get_type_hints(current, include_extras=True)[name])[0]
    return current


def is_table(setting: object) -> bool:
    """Whether a setting type is a table of settings (a dataclass) rather than a value."""
    return isinstance(setting, type) and dataclasses.is_dataclass(setting)


def parse_text(hint: Any, text: str) -> Any:
    """Turn an env var's text into the value TOML would have given for a field of ``hint``.

    Text that does not parse is returned unchanged, so ``build`` reports it with the same
    message as a wrong value in a file (naming the key, the env var and the expected type).
    """
    base = _strip_annotated(hint)[0]
    stripped = text.strip()
    if base is bool:
        lowered = stripped.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else text
    if base is int or base is float:
        try:
            return base(stripped)
        except ValueError:
            return text
    if get_origin(base) is tuple:
        return _parse_list(stripped)
    return text


def _parse_list(text: str) -> Any:
    if text.startswith("["):  # a TOML (or JSON) array: ["a", "b"]
        try:
            return tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError:
            return text
    return [item.strip() for item in text.split(",") if item.strip()]


def build(
    cls: type[T],
    data: object,
    origins: Origins,
    prefix: str = "",
    provided: Mapping[str, object] | None = None,
) -> T:
    """Validate ``data`` against ``cls`` (recursively) and construct it.

    ``provided`` holds field values set some other way; their names in ``data`` are unknown keys.
    """
    provided = provided or {}
    if not isinstance(data, Mapping):
        raise _invalid(prefix, data, origins, "must be a table")
    hints = typing.get_type_hints(cls, include_extras=True)
    wanted = [field.name for field in dataclasses.fields(cls) if field.name not in provided]
    for name in data:
        if name not in wanted:
            key = join(prefix, name)
            raise SettingsError(f"unknown key {key} in {origins.of(key)}")
    values = dict(provided)
    for name in wanted:
        key = join(prefix, name)
        if name not in data:
            raise SettingsError(f"missing key {key} (not set in {origins.of(key)})")
        values[name] = _convert(hints[name], data[name], key, origins)
    return cls(**values)


def _convert(hint: Any, value: object, key: str, origins: Origins) -> Any:
    base, constraints = _strip_annotated(hint)
    result = _convert_base(base, value, key, origins)
    for constraint in constraints:
        problem = _violation(constraint, result)
        if problem:
            raise _invalid(key, value, origins, problem)
    return result


def _convert_base(base: Any, value: object, key: str, origins: Origins) -> Any:  # noqa: PLR0911
    if is_table(base):
        return build(base, value, origins, key)
    if base is bool:
        return _expect(isinstance(value, bool), value, key, origins, "must be true or false")
    if base is int:
        is_int = isinstance(value, int) and not isinstance(value, bool)
        return _expect(is_int, value, key, origins, "must be an integer")
    if base is float:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        _expect(is_number, value, key, origins, "must be a number")
        number = float(typing.cast(float, value))
        return _expect(math.isfinite(number), number, key, origins, "must be a finite number")
    if base is str:
        return _expect(isinstance(value, str), value, key, origins, "must be a string")
    if get_origin(base) is Literal:
        choices = get_args(base)
        known = any(type(value) is type(choice) and value == choice for choice in choices)
        return _expect(known, value, key, origins, f"must be one of {_show(list(choices))}")
    if get_origin(base) is tuple and len(get_args(base)) == 2 and get_args(base)[1] is Ellipsis:
        if not isinstance(value, list | tuple):
            raise _invalid(key, value, origins, "must be a list")
        item_type = get_args(base)[0]
        return tuple(
            _convert(item_type, item, f"{key}[{index}]", origins)
            for index, item in enumerate(value)
        )
    raise TypeError(f"setting {key} has a type the loader does not support: {base!r}")


def _violation(constraint: object, value: Any) -> str | None:
    if isinstance(constraint, Between):
        low, high = constraint.low, constraint.high
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                return f"must be between {low} and {high}"
            return f"must be at least {low}" if low is not None else f"must be at most {high}"
    if isinstance(constraint, NonEmpty):
        empty = value.strip() == "" if isinstance(value, str) else len(value) == 0
        if empty:
            return "must not be empty"
    return None


def _expect(ok: bool, value: Any, key: str, origins: Origins, problem: str) -> Any:
    if not ok:
        raise _invalid(key, value, origins, problem)
    return value


def _invalid(key: str, value: object, origins: Origins, problem: str) -> SettingsError:
    return SettingsError(f"{key or 'settings'} = {_show(value)} (from {origins.of(key)}) {problem}")


def _show(value: object) -> str:
    """A value as it would be written in TOML/JSON, shortened so one message stays one line."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _SHOWN_VALUE_LIMIT:
        return text[: _SHOWN_VALUE_LIMIT - 3] + "..."
    return text


def _strip_annotated(hint: Any) -> tuple[Any, tuple[object, ...]]:
    if get_origin(hint) is Annotated:
        return hint.__origin__, tuple(hint.__metadata__)
    return hint, ()

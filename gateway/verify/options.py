"""Reading a `verify` mapping: typed getters that name the key when the value is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.durations import parse_duration


class VerifyConfigError(ValueError):
    """A `verify` mapping the engine cannot run (lint reports the same problems first)."""


def mapping(spec: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise VerifyConfigError(f"{where}.{key}: expected a mapping")
    return value


def text(spec: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise VerifyConfigError(f"{where}.{key}: expected a string")
    return value


def required_text(spec: Mapping[str, Any], key: str, where: str) -> str:
    value = text(spec, key, where)
    if not value:
        raise VerifyConfigError(f"{where}: missing required key '{key}'")
    return value


def choice(spec: Mapping[str, Any], key: str, where: str, options: tuple[str, ...]) -> str:
    """The value of `key`, one of `options`; the first option is the default."""
    value = text(spec, key, where, options[0])
    if value not in options:
        raise VerifyConfigError(f"{where}.{key}: {value!r} is not one of {', '.join(options)}")
    return value


def flag(spec: Mapping[str, Any], key: str, where: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise VerifyConfigError(f"{where}.{key}: expected true or false")
    return value


def duration(spec: Mapping[str, Any], key: str, where: str, default: str) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise VerifyConfigError(f"{where}.{key}: expected a duration like 5m")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise VerifyConfigError(f"{where}.{key}: {exc}") from None


def secret_value(spec: Mapping[str, Any], key: str, where: str) -> Any:
    """The secret as written (a string, a SecretRef or a list): resolved per request, not here."""
    value = spec.get(key)
    if value is None or value == "" or value == []:
        raise VerifyConfigError(f"{where}: missing required key '{key}'")
    return value


def reject_unknown(spec: Mapping[str, Any], where: str, allowed: frozenset[str]) -> None:
    unknown = sorted(str(k) for k in spec if k not in allowed)
    if unknown:
        raise VerifyConfigError(
            f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})"
        )

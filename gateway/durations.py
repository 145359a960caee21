"""Durations (``30s``, ``5m``, ``-24h``) and sizes (``1MiB``) as written in the YAML files."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^(?P<sign>-?)(?P<num>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d)$")
_SIZE_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "KiB": 1024, "MiB": 1024**2}
_SIZE = re.compile(r"^(?P<num>[0-9]+) ?(?P<unit>B|KiB|MiB|KB|MB)$")


def _match(text: str) -> re.Match[str]:
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: expected a number and a unit, like 30s, 5m, 1h"
        )
    return match


def parse_signed_duration(value: str | float) -> float:
    """Seconds in a duration that may be negative: ``-24h`` -> -86400.0."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _match(str(value))
    seconds = float(match["num"]) * _UNITS[match["unit"]]
    return -seconds if match["sign"] else seconds


def parse_duration(value: str | float) -> float:
    """Seconds in a non-negative duration: ``5m`` -> 300.0; a bare number is seconds."""
    seconds = parse_signed_duration(value)
    if seconds < 0:
        raise ValueError(f"{value!r} is negative: expected a duration like 30s")
    return seconds


def is_duration(value: object, *, signed: bool = False) -> bool:
    if not isinstance(value, str):
        return False
    match = _DURATION.match(value.strip())
    return match is not None and (signed or not match["sign"])


def parse_size(value: str | int) -> int:
    """Bytes in a size: ``1MiB`` -> 1048576; a bare integer is bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value).strip())
    if match is None:
        raise ValueError(f"{value!r} is not a size: expected bytes or a unit, like 512KiB or 1MiB")
    return int(match["num"]) * _SIZE_UNITS[match["unit"]]

"""Jinja2 filters available to every expression in the YAML files.

They are pure functions of their arguments: no I/O, no clock, no environment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.durations import parse_signed_duration

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_JUNK = re.compile(r"[\s().\-/]")


def zone_or_utc(name: str | None) -> Any:
    """The IANA time zone `name`, or UTC when none is given or it is unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def to_datetime(value: Any, zone: str | None = None) -> datetime:
    """Parse an ISO 8601 string or epoch seconds (or milliseconds) into an aware datetime.
    A time written without an offset is read in the IANA time zone `zone` (UTC by default)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone_or_utc(zone))
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"{value!r} is not a time the calendar can hold") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone_or_utc(zone))
    raise ValueError(f"cannot read a date and time from {value!r}")


def localtime(value: Any, zone: str | None = None) -> datetime:
    """The moment in the IANA time zone `zone` (UTC when none or unknown)."""
    return to_datetime(value).astimezone(zone_or_utc(zone))


def strftime(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return to_datetime(value).strftime(fmt)


def isoformat(value: Any) -> str:
    return to_datetime(value).isoformat()


def shift(value: Any, offset: str) -> datetime:
    """Move a moment by a signed duration: ``start | shift('-24h')``."""
    return to_datetime(value) + timedelta(seconds=parse_signed_duration(offset))


def e164(value: Any, default_country_code: str = "") -> str:
    """Normalise a phone number to E.164 (+14155550123); '' when it cannot be one."""
    text = _PHONE_JUNK.sub("", str(value or ""))
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and default_country_code:
        text = "+" + default_country_code.lstrip("+") + text.lstrip("0")
    return text if _E164.match(text) else ""


def sha256(value: Any) -> str:
    data = value if isinstance(value, bytes) else str(value).encode()
    return hashlib.sha256(data).hexdigest()


FILTERS: dict[str, Callable[..., Any]] = {
    "datetime": to_datetime,
    "localtime": localtime,
    "strftime": strftime,
    "isoformat": isoformat,
    "shift": shift,
    "e164": e164,
    "sha256": sha256,
}

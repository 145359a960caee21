"""`shift_times`: a declared example moved in time, so that it happens now.

Examples are written once, with fixed times that fall into the past: a booking of last June
schedules no reminder. `gateway simulate --at FIELD=DURATION` sets FIELD (a dotted path in the
example's body) to now plus DURATION and moves every other ISO 8601 time in the body by as
much, so that the example keeps its own order and spacing (a booking's end stays 30 minutes
after its start). The shifted example is then signed as any other.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.errors import UsageError

_TIME = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?P<fraction>\.\d+)?)?(?P<zone>Z|[+-]\d\d:?\d\d)?$"
)


def _parsed(text: str) -> datetime | None:
    if not _TIME.match(text):
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _written(moment: datetime, like: str) -> str:
    """`moment` written as `like` was: its precision, and Z or its offset."""
    match = _TIME.match(like)
    assert match is not None
    fraction = match["fraction"]
    spec = "seconds" if not fraction else "milliseconds" if len(fraction) <= 4 else "microseconds"
    zone = match["zone"]
    if zone is None:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=spec)
    if zone == "Z":
        return moment.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")
    original = datetime.fromisoformat(like)
    return moment.astimezone(original.tzinfo).isoformat(timespec=spec)


def _moved(value: Any, delta: timedelta) -> Any:
    if isinstance(value, str):
        moment = _parsed(value)
        return value if moment is None else _written(moment + delta, value)
    if isinstance(value, Mapping):
        return {key: _moved(item, delta) for key, item in value.items()}
    if isinstance(value, list):
        return [_moved(item, delta) for item in value]
    return value


def shift_times(example: Mapping[str, Any], field: str, moment: datetime) -> dict[str, Any]:
    """A copy of `example` whose body's times moved so that `field` is `moment`."""
    body = example.get("body")
    value: Any = body
    for key in field.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    anchor = _parsed(value) if isinstance(value, str) else None
    if anchor is None:
        raise UsageError(f"the example's body has no ISO 8601 time at '{field}'")
    shifted = copy.deepcopy(dict(example))
    shifted["body"] = _moved(body, moment - anchor)
    return shifted

"""The freshness check: where the timestamp is, how it is written, and how much skew is
tolerated.

A timestamp is read from a header, a key of a pairs-format signature header, or a value in the
JSON body (``body_path``). It is written as a Unix time (``format: unix``, in ``unit`` s or ms)
or as an RFC 3339 / ISO 8601 date-time with its offset (``format: iso8601``: Zendesk, Twitch).
Whatever the format, the text exactly as sent is what the signed template's ``{timestamp}``
stands for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from gateway.verify import options
from gateway.verify.body_values import BodyDocument, BodyField
from gateway.verify.options import VerifyConfigError
from gateway.verify.verifier import VerificationFailed

_KEYS = frozenset({"header", "param", "body_path", "format", "unit", "tolerance", "direction"})
_SCALE = {"s": 1.0, "ms": 1000.0}
# Enough digits for milliseconds far into the future; longer text is not a timestamp.
_MAX_DIGITS = 16
# RFC 3339: a full date, a time with seconds, up to nanoseconds, and an offset (Z or +hh:mm).
# A time without an offset names no instant, so it is refused.
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))"
)


class TimestampRule:
    """Reads the timestamp text exactly as sent and rejects it when stale (or, for direction
    ``both``, too far in the future)."""

    __slots__ = ("_body", "_iso", "_scale", "_tolerance", "both_ways", "header", "param")

    def __init__(self, spec: Mapping[str, Any], where: str = "verify.timestamp") -> None:
        options.reject_unknown(spec, where, _KEYS)
        self.header = (options.text(spec, "header", where) or "").lower() or None
        self.param = options.text(spec, "param", where) or None
        path = options.text(spec, "body_path", where) or None
        self._body = BodyField(path, f"{where}.body_path") if path else None
        if sum(source is not None for source in (self.header, self.param, self._body)) != 1:
            raise VerifyConfigError(f"{where}: give one of 'header', 'param' or 'body_path'")
        self._iso = options.choice(spec, "format", where, ("unix", "iso8601")) == "iso8601"
        if self._iso and "unit" in spec:
            raise VerifyConfigError(f"{where}.unit: applies to format: unix only")
        unit = options.choice(spec, "unit", where, ("s", "ms"))
        self._scale = 1.0 if self._iso else _SCALE[unit]
        self._tolerance = options.duration(spec, "tolerance", where, "5m") * self._scale
        self.both_ways = options.choice(spec, "direction", where, ("both", "past")) == "both"

    @property
    def reads_body(self) -> bool:
        return self._body is not None

    def accept(
        self,
        headers: Mapping[str, str],
        from_signature: str | None,
        now: float,
        document: BodyDocument | None = None,
    ) -> str:
        """The timestamp text as sent, once it is known to be fresh."""
        if self.header is not None:
            text = headers.get(self.header)
            if text is None:
                raise VerificationFailed(f"missing header {self.header}")
        elif self._body is not None:
            if document is None:  # the message always passes the body when one is read
                raise VerificationFailed("missing timestamp")
            text = self._body.read(document)
        else:
            text = from_signature
            if text is None:
                raise VerificationFailed(f"missing timestamp {self.param} in signature header")
        sent = _instant(text) if self._iso else _number(text)
        current = now * self._scale
        if sent < current - self._tolerance:
            raise VerificationFailed("timestamp outside tolerance")
        if self.both_ways and sent > current + self._tolerance:
            raise VerificationFailed("timestamp outside tolerance")
        return text


def _number(text: str) -> int:
    if not (0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()):
        raise VerificationFailed("timestamp is not a number")
    return int(text)


def _instant(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 date-time; anything else is refused."""
    match = _RFC3339.fullmatch(text) if text.isascii() else None
    if match is None:
        raise VerificationFailed("timestamp is not an RFC 3339 date-time")
    year, month, day, hour, minute, second, fraction, utc, sign, zh, zm = match.groups()
    try:
        offset = timedelta(hours=int(zh), minutes=int(zm)) if not utc else timedelta(0)
        zone = timezone(-offset if sign == "-" else offset)
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError:  # month 13, 25 o'clock, an offset of a day or more
        raise VerificationFailed("timestamp is not an RFC 3339 date-time") from None
    return moment.timestamp() + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)

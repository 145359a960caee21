"""The freshness check: where the timestamp is, its unit, and how much skew is tolerated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.verify import options
from gateway.verify.options import VerifyConfigError
from gateway.verify.verifier import VerificationFailed

_KEYS = frozenset({"header", "param", "unit", "tolerance", "direction"})
_SCALE = {"s": 1.0, "ms": 1000.0}
# Enough digits for milliseconds far into the future; longer text is not a timestamp.
_MAX_DIGITS = 16


class TimestampRule:
    """Reads the timestamp text exactly as sent and rejects it when stale (or, for direction
    ``both``, too far in the future). The comparison runs in the declared unit."""

    __slots__ = ("_scale", "_tolerance", "both_ways", "header", "param")

    def __init__(self, spec: Mapping[str, Any], where: str = "verify.timestamp") -> None:
        options.reject_unknown(spec, where, _KEYS)
        self.header = (options.text(spec, "header", where) or "").lower() or None
        self.param = options.text(spec, "param", where) or None
        if (self.header is None) == (self.param is None):
            raise VerifyConfigError(f"{where}: give either 'header' or 'param'")
        unit = options.choice(spec, "unit", where, ("s", "ms"))
        self._scale = _SCALE[unit]
        self._tolerance = options.duration(spec, "tolerance", where, "5m") * self._scale
        self.both_ways = options.choice(spec, "direction", where, ("both", "past")) == "both"

    def accept(self, headers: Mapping[str, str], from_signature: str | None, now: float) -> str:
        """The timestamp text as sent, once it is known to be fresh."""
        if self.header is not None:
            text = headers.get(self.header)
            if text is None:
                raise VerificationFailed(f"missing header {self.header}")
        else:
            text = from_signature
            if text is None:
                raise VerificationFailed(f"missing timestamp {self.param} in signature header")
        if not (0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()):
            raise VerificationFailed("timestamp is not a number")
        sent = int(text)
        current = now * self._scale
        if sent < current - self._tolerance:
            raise VerificationFailed("timestamp outside tolerance")
        if self.both_ways and sent > current + self._tolerance:
            raise VerificationFailed("timestamp outside tolerance")
        return text

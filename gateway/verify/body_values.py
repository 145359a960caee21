"""Signed values that sit in the JSON body, not in headers (Mailgun's ``signature.token``,
Linear's ``webhookTimestamp``): a dotted path to one string or integer, read as text.

The body is parsed at most once per request (`BodyDocument`), and only when a scheme declares a
value in it; the pipeline parses it again after verification, as for any other scheme.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.verify.options import VerifyConfigError
from gateway.verify.verifier import VerificationFailed

# Longer text is not a timestamp, token or signature any provider sends.
MAX_VALUE_LENGTH = 1024


class BodyField:
    """One value at a dotted path (``signature.token``); no ``[*]``: it names one value."""

    __slots__ = ("_steps", "path")

    def __init__(self, path: str, where: str) -> None:
        steps = tuple(path.split("."))
        if not path or any(not step or "[" in step or "]" in step for step in steps):
            raise VerifyConfigError(
                f"{where}: {path!r} is not a dotted path to one value, like signature.token"
            )
        self.path = path
        self._steps = steps

    def read(self, document: BodyDocument) -> str:
        """The value as text: a string as it is, an integer in decimal; anything else (a
        missing key, an object, a float, true) is refused."""
        value: Any = document.parsed()
        for step in self._steps:
            if not isinstance(value, dict) or step not in value:
                raise VerificationFailed(f"body has no {self.path}")
            value = value[step]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise VerificationFailed(f"body value {self.path} is not a string or an integer")
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_VALUE_LENGTH:
            raise VerificationFailed(f"body value {self.path} is too long")
        return text


class BodyDocument:
    """A request body parsed as JSON on first use, once."""

    __slots__ = ("_body", "_parsed", "_ready")

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._parsed: Any = None
        self._ready = False

    def parsed(self) -> Any:
        if not self._ready:
            try:
                self._parsed = json.loads(self._body)
            except (ValueError, RecursionError):  # bad UTF-8, bad JSON, huge numbers, depth
                raise VerificationFailed("body is not JSON") from None
            self._ready = True
        return self._parsed

"""Strict decoders for signatures and keys, and header text back to the bytes on the wire.

Every decoder returns None instead of raising, so callers turn a bad value into one
`VerificationFailed` with their own reason.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

Decoder = Callable[[str], "bytes | None"]


def decode_hex(value: str) -> bytes | None:
    """Hex digits, either case, nothing else (no spaces, no 0x)."""
    if not value.isascii():
        return None
    try:
        return binascii.a2b_hex(value)
    except binascii.Error:
        return None


def decode_base64(value: str) -> bytes | None:
    """Standard base64 with its padding; any other character is an error."""
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return None


def decode_base64_unpadded(value: str) -> bytes | None:
    """Base64 where the padding may be left off (secrets and keys pasted by people)."""
    value = value.strip()
    return decode_base64(value + "=" * (-len(value) % 4))


DECODERS: dict[str, Decoder] = {"hex": decode_hex, "base64": decode_base64}


def wire_bytes(value: str) -> bytes:
    """The bytes a header value arrived as.

    ASGI servers hand headers over as bytes and Starlette decodes them as latin-1, so encoding
    as latin-1 restores them exactly. Text latin-1 cannot hold was decoded some other way; UTF-8
    is the best guess for it.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def text_bytes(value: str) -> bytes:
    """Text from the config or a decoded body/URL as UTF-8 (never raises)."""
    return value.encode("utf-8", "surrogatepass")

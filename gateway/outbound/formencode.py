"""Form encoding of nested values, the way Stripe reads them: ``metadata[order]=42``,
``items[0][price]=price_1``; booleans as true/false; None left out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode


def scalar(value: Any) -> str:
    """A scalar as form and query strings write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(key, text) pairs for a nested value; `prefix` names the value itself."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            pairs.extend(flatten(item, f"{prefix}[{key}]" if prefix else str(key)))
        return pairs
    if isinstance(value, list | tuple):
        pairs = []
        for index, item in enumerate(value):
            pairs.extend(flatten(item, f"{prefix}[{index}]"))
        return pairs
    return [(prefix, scalar(value))]


def form_encode(value: Mapping[str, Any]) -> bytes:
    """An application/x-www-form-urlencoded body for a mapping of nested values."""
    return urlencode(flatten(value)).encode("ascii")

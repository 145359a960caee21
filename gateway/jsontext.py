"""JSON from bytes, fast: orjson, with the standard library for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(body: bytes | str) -> Any:
    """JSON from bytes: orjson, or the standard library for what orjson refuses but JSON
    readers commonly accept (NaN, lone surrogates, integers beyond 64 bits, UTF-16)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)

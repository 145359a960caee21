"""Identifiers the gateway mints: time-ordered, unique across processes, URL-safe."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """``prefix_`` + 12 hex digits of milliseconds + 20 hex digits of randomness: unique across
    processes and sorted by creation time (all in C: this runs on every request)."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"

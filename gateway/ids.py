"""Identifiers the gateway mints: time-ordered, unique across processes, URL-safe."""

from __future__ import annotations

import os
import random
import time

# Seeded from the OS, and again in every forked child, so that processes never share a
# sequence. Ids must be unique, not secret: nothing is authorised by knowing one.
_random = random.Random()  # noqa: S311
os.register_at_fork(after_in_child=_random.seed)


def new_id(prefix: str) -> str:
    """``prefix_`` + 12 hex digits of milliseconds + 20 hex digits of randomness: unique across
    processes and sorted by creation time. This runs for every event: no system call."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{_random.getrandbits(80):020x}"

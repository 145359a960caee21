"""Server-side commands (placeholder while the server is built)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register(sub: Any, add_config_args: Callable[[argparse.ArgumentParser], None]) -> None:
    return None

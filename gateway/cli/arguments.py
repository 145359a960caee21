"""What several commands share: the --integrations and --db arguments, durations, and finding
the integration an argument names."""

from __future__ import annotations

import argparse
import os
from typing import Any

from gateway.config.model import Config, Integration
from gateway.durations import parse_duration
from gateway.errors import UsageError

DEFAULT_DB = "sqlite:///var/gateway.db"
Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def integrations_default() -> str:
    return os.environ.get("GATEWAY_INTEGRATIONS_DIR", "integrations.d")


def db_default() -> str:
    return os.environ.get("GATEWAY_DATABASE_URL", DEFAULT_DB)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--integrations",
        default=integrations_default(),
        metavar="DIR",
        help="folder of YAML files (default: $GATEWAY_INTEGRATIONS_DIR, then integrations.d)",
    )
    parser.add_argument(
        "--db",
        default=db_default(),
        metavar="URL",
        help=f"storage URL (default: $GATEWAY_DATABASE_URL, then {DEFAULT_DB})",
    )


def duration(text: str) -> float:
    """An argparse type: `5m`, `30d`, ... in seconds."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def named_integration(config: Config, name: str) -> Integration:
    integration = config.integrations.get(name)
    if integration is None:
        known = ", ".join(sorted(config.integrations))
        raise UsageError(f"no integration '{name}' (known: {known})")
    return integration

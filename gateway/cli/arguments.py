"""What several commands share: the --integrations and --db arguments, durations, and finding
the integration an argument names."""

from __future__ import annotations

import argparse
import datetime
import os
from typing import Any

from gateway.config.model import Config, Integration
from gateway.durations import parse_duration
from gateway.errors import UsageError
from gateway.store.entities import EventQuery

DEFAULT_DB = "sqlite:///var/gateway.db"
DEFAULT_PORT = 8000
Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def integrations_default() -> str:
    return os.environ.get("GATEWAY_INTEGRATIONS_DIR", "integrations.d")


def db_default() -> str:
    return os.environ.get("GATEWAY_DATABASE_URL", DEFAULT_DB)


def port_default() -> str:
    """`serve`'s port: $GATEWAY_PORT, then $PORT (what platforms and `make run PORT=` set)."""
    return os.environ.get("GATEWAY_PORT") or os.environ.get("PORT") or str(DEFAULT_PORT)


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: expected 1 to 65535")
    return int(text)


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


def parse_time(text: str | None) -> float | None:
    """An option's ISO 8601 time (UTC when it names no offset) in epoch seconds; None for none."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"{text!r} is not a time: expected ISO 8601, like 2026-11-24T10:00Z"
        ) from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)).timestamp()


def shown_time(stamp: float) -> str:
    """Epoch seconds as the CLI prints them: ISO 8601 in UTC, to the second."""
    return datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not (text.isascii() and text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def named_integration(config: Config, name: str) -> Integration:
    integration = config.integrations.get(name)
    if integration is None:
        known = ", ".join(sorted(config.integrations))
        raise UsageError(f"no integration '{name}' (known: {known})")
    return integration


def event_query(args: argparse.Namespace, limit: int) -> EventQuery:
    """The events `--status/--integration/--tenant/--since/--until` select."""
    return EventQuery(
        status=args.status,
        integration=args.integration,
        tenant=args.tenant,
        since=parse_time(args.since),
        until=parse_time(args.until),
        limit=limit,
    )

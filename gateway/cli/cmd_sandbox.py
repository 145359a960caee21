"""``gateway sandbox``: run the provider sandbox in the foreground (for demos and manual tests)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gateway.cli.arguments import Subparsers, port_number
from gateway.logs import configure_logging
from gateway.resources import sandbox_responses
from gateway.sandbox.server import DEFAULT_PORT, LOOPBACK, run_sandbox

DEFAULT_RESPONSES = "sandbox/responses.yaml"


def _responses_default() -> str | None:
    configured = os.environ.get("GATEWAY_SANDBOX_RESPONSES")
    if configured:
        return configured
    return DEFAULT_RESPONSES if Path(DEFAULT_RESPONSES).is_file() else str(sandbox_responses())


def cmd_sandbox(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    run_sandbox(  # a bad rules file or a host that is not loopback: a UsageError
        args.host,
        args.port,
        args.responses,
        default_status=args.default_status,
        log_level=args.log_level,
    )
    return 0


def register(sub: Subparsers) -> argparse.ArgumentParser:
    """Register ``sandbox --host --port --responses FILE`` on the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "sandbox", help="run the provider sandbox: records requests, answers from declared rules"
    )
    p.add_argument("--host", default=LOOPBACK, help="a loopback address (default: 127.0.0.1)")
    p.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"default: {DEFAULT_PORT}"
    )
    p.add_argument(
        "--responses",
        default=_responses_default(),
        metavar="FILE",
        help=f"YAML rules (default: $GATEWAY_SANDBOX_RESPONSES, then {DEFAULT_RESPONSES})",
    )
    p.add_argument(
        "--default-status",
        type=int,
        default=200,
        metavar="STATUS",
        help="status for requests no rule matches (default: 200 with {})",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=cmd_sandbox)
    return p

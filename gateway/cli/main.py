"""The `gateway` command. Errors become exit codes here, at the edge, and nowhere else.

Each command lives in its own `cmd_<name>.py` with a `register(subparsers)`; a command raises
what went wrong and `main` decides, by the exception's class (see `gateway.errors`):

- `ConfigError` (exit 1): its diagnostics, printed once, as `gateway lint` prints them;
- any other `GatewayError` (its `exit_code`: 2 for usage and credential errors): one line,
  ``gateway <command>: message``, on standard error;
- Ctrl-C: exit 130, quietly.

Anything else is a bug, and its traceback is wanted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from gateway.cli import (
    cmd_credentials,
    cmd_demo,
    cmd_erase,
    cmd_events,
    cmd_health,
    cmd_lint,
    cmd_operations,
    cmd_sandbox,
    cmd_serve,
    cmd_simulate,
    cmd_sync,
)
from gateway.diagnostics import render
from gateway.errors import ConfigError, GatewayError

COMMANDS = (  # in the order `gateway --help` lists them
    cmd_lint,
    cmd_serve,
    cmd_simulate,
    cmd_credentials,
    cmd_events,
    cmd_operations,  # jobs, replay
    cmd_health,
    cmd_sync,
    cmd_erase,
    cmd_sandbox,
    cmd_demo,
)


def package_version() -> str:
    """The installed distribution's version (a checkout run without installing: unknown)."""
    try:
        return version("yaml-gateway")
    except PackageNotFoundError:
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line and exit 2, like every usage error (`--help` shows usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gateway", description="A declarative integration gateway driven by YAML."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        files = len({d.path for d in exc.diagnostics})
        print(render(exc.diagnostics, "text", files), file=sys.stderr)
        return exc.exit_code
    except GatewayError as exc:
        print(f"gateway {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code

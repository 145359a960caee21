"""The `gateway` command. Errors become exit codes here, at the edge, and nowhere else."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from gateway.config.lint import lint
from gateway.diagnostics import render
from gateway.errors import UsageError

DEFAULT_DB = "sqlite:///var/gateway.db"


def _integrations_default() -> str:
    return os.environ.get("GATEWAY_INTEGRATIONS_DIR", "integrations.d")


def _db_default() -> str:
    return os.environ.get("GATEWAY_DATABASE_URL", DEFAULT_DB)


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--integrations",
        default=_integrations_default(),
        metavar="DIR",
        help="folder of YAML files (default: $GATEWAY_INTEGRATIONS_DIR, then integrations.d)",
    )
    parser.add_argument(
        "--db",
        default=_db_default(),
        metavar="URL",
        help=f"storage URL (default: $GATEWAY_DATABASE_URL, then {DEFAULT_DB})",
    )


def cmd_lint(args: argparse.Namespace) -> int:
    paths = args.paths or [_integrations_default()]
    environ = dict(os.environ) if args.check_env else None
    result = lint(paths, environ=environ)
    print(render(result.diagnostics, args.format, result.files))
    failing = result.diagnostics if args.strict else result.errors
    return 1 if failing else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="A declarative integration gateway driven by YAML."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("lint", help="check YAML files: schema, expressions, references, examples")
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or folders (default: integrations.d)"
    )
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    p.add_argument(
        "--check-env", action="store_true", help="warn about ${NAME} references that are unset"
    )
    p.set_defaults(func=cmd_lint)

    from gateway.cli.server_commands import (
        register,  # the server-side commands: serve, simulate, ...
    )

    register(sub, _add_config_args)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"gateway {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code

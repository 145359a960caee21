"""`gateway lint`: check YAML files (schema, expressions, references, examples) as CI would."""

from __future__ import annotations

import argparse
import os

from gateway.cli.arguments import Subparsers, integrations_default
from gateway.config.lint import lint
from gateway.diagnostics import render


def cmd_lint(args: argparse.Namespace) -> int:
    paths = args.paths or [integrations_default()]
    environ = dict(os.environ) if args.check_env else None
    result = lint(paths, environ=environ)
    print(render(result.diagnostics, args.format, result.files))
    failing = result.diagnostics if args.strict else result.errors
    return 1 if failing else 0


def register(sub: Subparsers) -> None:
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

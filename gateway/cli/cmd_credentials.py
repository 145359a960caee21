"""`gateway credentials`: per-tenant secrets, encrypted at rest (set, list, delete, rotate)."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import getpass
import os
import sys

from gateway.cli.arguments import Subparsers, add_config_args, named_integration
from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.credentials.secrets import Cipher
from gateway.errors import UsageError
from gateway.store import open_store


def cmd_credentials(args: argparse.Namespace) -> int:
    return asyncio.run(_credentials(args))


async def _credentials(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    store = open_store(args.db, create=args.action == "set")
    await store.open()
    try:
        if args.action == "list":
            for tenant, owner, name, updated in await store.list_credentials(args.tenant):
                print(f"{tenant}\t{owner}\t{name}\tupdated {_time(updated)}")
            return 0
        if args.action == "delete":
            removed = await store.delete_credential(args.tenant, args.integration, args.name)
            print("deleted" if removed else "no such credential")
            return 0 if removed else 1
        cipher = Cipher(settings.secret_keys)
        if args.action == "rotate":
            rows = await store.all_credential_tokens()
            await store.replace_credential_tokens(
                [(t, i, n, cipher.rotate(token)) for t, i, n, token in rows]
            )
            print(f"re-encrypted {len(rows)} credential(s) with the first key")
            return 0
        config = load_config(args.integrations, os.environ)
        integration = named_integration(config, args.integration)
        names = set(integration.secret_names)
        if args.name not in names:
            listed = ", ".join(sorted(names)) or "none"
            raise UsageError(
                f"{args.integration} reads no secret named {args.name} (its secrets: {listed})"
            )
        value = _read_value()
        await store.set_credential(args.tenant, args.integration, args.name, cipher.encrypt(value))
        print(f"stored {args.name} for tenant {args.tenant} ({args.integration})")
        return 0
    finally:
        await store.close()


def _read_value() -> str:
    tty = sys.stdin.isatty()
    value = getpass.getpass("value (not echoed): ") if tty else sys.stdin.read()
    value = value.rstrip("\r\n")
    if not value:
        raise UsageError("no value given on standard input")
    return value


def _time(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("credentials", help="per-tenant secrets, encrypted at rest")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = actions.add_parser("set", help="store a secret (the value is read from standard input)")
    s.add_argument("tenant")
    s.add_argument("integration")
    s.add_argument("name", help="the secret's name, as in ${secret:NAME}")
    add_config_args(s)
    s = actions.add_parser("list", help="names and times, never values")
    s.add_argument("--tenant", default=None)
    add_config_args(s)
    s = actions.add_parser("delete")
    s.add_argument("tenant")
    s.add_argument("integration")
    s.add_argument("name")
    add_config_args(s)
    s = actions.add_parser("rotate", help="re-encrypt every credential with the first key")
    add_config_args(s)
    p.set_defaults(func=cmd_credentials)

"""`gateway credentials`: per-tenant secrets, encrypted at rest (set, list, delete, rotate)."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import getpass
import os
import sys

from gateway.cli.arguments import Subparsers, add_config_args, named_integration
from gateway.config.model import DEFAULT_TENANT, load_config
from gateway.config.settings import Settings
from gateway.credentials.secrets import Cipher
from gateway.errors import UsageError
from gateway.store import open_store


def cmd_credentials(args: argparse.Namespace) -> int:
    return asyncio.run(_credentials(args))


async def _credentials(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    if args.action == "set":
        return await _set(args, settings)
    store = open_store(args.db, create=False)
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
        rows = await store.all_credential_tokens()
        await store.replace_credential_tokens(
            [(t, i, n, cipher.rotate(token)) for t, i, n, token in rows]
        )
        print(f"re-encrypted {len(rows)} credential(s) with the first key")
        return 0
    finally:
        await store.close()


async def _set(args: argparse.Namespace, settings: Settings) -> int:
    cipher = Cipher(settings.secret_keys)
    config = load_config(args.integrations, os.environ)
    integration = named_integration(config, args.integration)
    names = set(integration.secret_names)
    if args.name not in names:
        listed = ", ".join(sorted(names)) or "none"
        raise UsageError(
            f"{args.integration} reads no secret named {args.name} (its secrets: {listed})"
        )
    known = args.new_tenant or args.tenant in config.tenants or args.tenant == DEFAULT_TENANT
    if not known and not await _holds_credentials(args.db, args.tenant):
        declared = ", ".join(sorted(config.tenants)) or "none"
        raise UsageError(
            f"no tenant '{args.tenant}': it is not declared (declared: {declared}) and holds no"
            " credentials; check the name, or give --new-tenant to create it"
        )
    value = _read_value()
    store = open_store(args.db)
    await store.open()
    try:
        await store.set_credential(args.tenant, args.integration, args.name, cipher.encrypt(value))
    finally:
        await store.close()
    print(f"stored {args.name} for tenant {args.tenant} ({args.integration})")
    return 0


async def _holds_credentials(db: str, tenant: str) -> bool:
    try:
        store = open_store(db, create=False)
    except UsageError:  # no database yet: no tenant holds anything
        return False
    await store.open()
    try:
        return bool(await store.list_credentials(tenant))
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
    s.add_argument(
        "--new-tenant",
        action="store_true",
        help="create TENANT: one not declared in the integrations folder and holding no"
        " credentials yet (without it such a name is refused as a likely typo)",
    )
    add_config_args(s)
    s = actions.add_parser("list", help="names and times, never values")
    s.add_argument("--tenant", default=None)
    add_config_args(s)
    s = actions.add_parser("delete", help="remove one stored secret of a tenant")
    s.add_argument("tenant")
    s.add_argument("integration")
    s.add_argument("name")
    add_config_args(s)
    s = actions.add_parser("rotate", help="re-encrypt every credential with the first key")
    add_config_args(s)
    p.set_defaults(func=cmd_credentials)

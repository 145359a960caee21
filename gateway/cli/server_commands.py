"""The commands that run the server or use its storage: serve, simulate, credentials."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.config.envsubst import secret_names
from gateway.config.model import DEFAULT_TENANT, Config, load_config
from gateway.config.settings import Settings
from gateway.config.signing import SigningError, signed_example
from gateway.credentials.secrets import Cipher, SecretLookup
from gateway.diagnostics import render
from gateway.durations import parse_duration
from gateway.errors import ConfigError, CredentialError, UsageError
from gateway.store import open_store

GC_YOUNG_THRESHOLD = 50_000
AddConfigArgs = Callable[[argparse.ArgumentParser], None]


def _config(args: argparse.Namespace) -> Config:
    try:
        config = load_config(args.integrations, os.environ)
    except ConfigError as exc:
        print(
            render(exc.diagnostics, "text", len({d.path for d in exc.diagnostics})), file=sys.stderr
        )
        raise SystemExit(1) from exc
    return config


def _seconds(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def tune_gc() -> None:
    """Garbage collection for a server that allocates for every request it holds.

    The config, compiled templates and schemas, and every module live as long as the process:
    frozen, they are left out of every later collection (a full one walked them all). And a
    young-generation collection walks every object of every request still in flight, so
    after 700 allocations (the default) it ran every few requests; reference counting frees
    nearly all of a request's objects anyway, and cycles wait a little longer instead.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.logs import configure_logging, init_sentry
    from gateway.web.application import create_app

    configure_logging(args.log_level)
    config = _config(args)
    settings = Settings.from_env(os.environ)
    if settings.sentry_dsn:
        init_sentry(settings.sentry_dsn)
    store = open_store(args.db)
    asyncio.run(_check_store(store))  # an unreachable database is one line here, not a trace
    app = create_app(
        config,
        store,
        settings,
        os.environ,
        role=args.role,
        job_lease=args.job_lease,
        retention=args.retention,
    )
    tune_gc()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        proxy_headers=False,
        server_header=False,
    )
    return 0


async def _check_store(store: Any) -> None:
    try:
        await store.open()
    finally:  # a store that failed half-way must not keep the process alive
        await store.close()


def _integration(config: Config, name: str) -> Any:
    integration = config.integrations.get(name)
    if integration is None:
        known = ", ".join(sorted(config.integrations))
        raise UsageError(f"no integration '{name}' (known: {known})")
    return integration


def cmd_simulate(args: argparse.Namespace) -> int:
    import httpx

    config = _config(args)
    integration = _integration(config, args.integration)
    if integration.webhook is None:
        raise UsageError(f"integration '{args.integration}' does not receive webhooks")
    example = integration.example(args.example)
    if example is None:
        known = ", ".join(sorted(integration.spec.get("examples") or {})) or "none"
        raise UsageError(f"{args.integration} has no example '{args.example}' (examples: {known})")
    base = args.url.rstrip("/")
    path = f"/webhooks/{args.integration}" + (f"/{args.tenant}" if args.tenant else "")
    secrets = SecretLookup(args.integration, asyncio.run(_tenant_values(args)), os.environ)
    try:
        request = signed_example(
            integration,
            example,
            base + path,
            secrets,
            public_url=os.environ.get("GATEWAY_PUBLIC_URL"),
            private_key=_private_key(args),
        )
    except SigningError as exc:
        raise UsageError(str(exc)) from exc
    response = httpx.request(
        request.method, request.url, headers=request.headers, content=request.body, timeout=30
    )
    print(f"{request.method} {request.url} -> {response.status_code}")
    print(response.text)
    return 0 if response.is_success else 1


def _private_key(args: argparse.Namespace) -> bytes | None:
    if not args.private_key:
        return None
    try:
        return Path(args.private_key).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.private_key}: cannot read ({exc.strerror})") from exc


async def _tenant_values(args: argparse.Namespace) -> dict[tuple[str, str], str]:
    if not args.tenant or args.tenant == DEFAULT_TENANT:
        return {}
    settings = Settings.from_env(os.environ)
    if not settings.secret_keys:
        return {}
    cipher = Cipher(settings.secret_keys)
    store = open_store(args.db)
    await store.open()
    try:
        rows = await store.credential_tokens(args.tenant)
    finally:
        await store.close()
    return {(integration, name): cipher.decrypt(token) for integration, name, token in rows}


def cmd_credentials(args: argparse.Namespace) -> int:
    return asyncio.run(_credentials(args))


async def _credentials(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    store = open_store(args.db)
    await store.open()
    try:
        if args.action == "list":
            for tenant, integration, name, updated in await store.list_credentials(args.tenant):
                print(f"{tenant}\t{integration}\t{name}\tupdated {_time(updated)}")
            return 0
        if args.action == "delete":
            removed = await store.delete_credential(args.tenant, args.integration, args.name)
            print("deleted" if removed else "no such credential")
            return 0 if removed else 1
        try:
            cipher = Cipher(settings.secret_keys)
        except CredentialError as exc:
            raise UsageError(str(exc)) from exc
        if args.action == "rotate":
            rows = await store.all_credential_tokens()
            await store.replace_credential_tokens(
                [(t, i, n, cipher.rotate(token)) for t, i, n, token in rows]
            )
            print(f"re-encrypted {len(rows)} credential(s) with the first key")
            return 0
        config = _config(args)
        integration = _integration(config, args.integration)
        names = secret_names(integration.spec)
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
    import datetime

    return datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register(sub: Any, add_config_args: AddConfigArgs) -> None:
    p = sub.add_parser("serve", help="run the gateway (HTTP server)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--role",
        choices=("all", "ingest", "worker"),
        default="all",
        help="ingest: webhooks only; worker: dispatch and run jobs; all: both (default)",
    )
    p.add_argument(
        "--job-lease",
        type=_seconds,
        default=120.0,
        metavar="DURATION",
        help="a job whose worker died is run again after this long (default 2m)",
    )
    p.add_argument(
        "--retention",
        type=_seconds,
        default=30 * 86400.0,
        metavar="DURATION",
        help="keep finished events and jobs this long; also the dedup window (default 30d)",
    )
    add_config_args(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "simulate", help="sign a declared example and POST it, as the provider would"
    )
    p.add_argument("integration")
    p.add_argument("example")
    p.add_argument("--tenant", default=None)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the gateway's base URL")
    p.add_argument(
        "--private-key", metavar="PEM", help="ecdsa/ed25519: the private key to sign with"
    )
    add_config_args(p)
    p.set_defaults(func=cmd_simulate)

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

    from gateway.cli import cmd_demo as demo
    from gateway.cli import cmd_operations as operations
    from gateway.cli import cmd_sync as sync_commands
    from gateway.cli.cmd_sandbox import add_sandbox_command

    operations.register(sub, add_config_args)
    sync_commands.register(sub, add_config_args)
    add_sandbox_command(sub)
    demo.register(sub)

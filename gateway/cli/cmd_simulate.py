"""`gateway simulate`: sign a declared example as the provider would, and POST it; with
``--sync SYNC``, the webhook one of that sync's example records stands for (``as_webhook``);
or, with ``--function``, sign and post an in-call function call (Retell's shape: name, call,
args) and print the answer."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import secrets as random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.cli.arguments import Subparsers, add_config_args, named_integration
from gateway.config.example_times import shift_times
from gateway.config.model import DEFAULT_TENANT, Config, Integration, load_config
from gateway.config.settings import Settings
from gateway.config.signing import signed_example
from gateway.credentials.secrets import Cipher, SecretLookup
from gateway.durations import parse_signed_duration
from gateway.errors import UsageError
from gateway.store import open_store


def cmd_simulate(args: argparse.Namespace) -> int:
    import httpx

    config = load_config(args.integrations, os.environ)
    integration = named_integration(config, args.integration)
    if integration.webhook is None:
        raise UsageError(f"integration '{args.integration}' does not receive webhooks")
    base = args.url.rstrip("/")
    tenant_part = f"/{args.tenant}" if args.tenant else ""
    if args.function and args.sync:
        raise UsageError("give --function or --sync, not both")
    if args.function:
        if args.example:
            raise UsageError("give an example or --function, not both")
        example: Mapping[str, Any] = _function_call(integration, args)
        path = f"/functions/{args.integration}/{args.function}{tenant_part}"
    elif args.sync:
        if not args.example:
            raise UsageError(f"name an example record of sync '{args.sync}' to send")
        example = _sync_webhook(config, integration, args)
        path = f"/webhooks/{args.integration}{tenant_part}"
    else:
        if not args.example:
            raise UsageError("name an example to send, or a function with --function")
        found = integration.example(args.example)
        if found is None:
            known = ", ".join(sorted(integration.examples)) or "none"
            raise UsageError(
                f"{args.integration} has no example '{args.example}' (examples: {known})"
            )
        example = shift_times(found, *args.at) if args.at else found
        path = f"/webhooks/{args.integration}{tenant_part}"
    secrets = SecretLookup(args.integration, asyncio.run(_tenant_values(args)), os.environ)
    request = signed_example(
        integration,
        example,
        base + path,
        secrets,
        public_url=os.environ.get("GATEWAY_PUBLIC_URL"),
        private_key=_private_key(args),
    )
    try:
        response = httpx.request(
            request.method, request.url, headers=request.headers, content=request.body, timeout=30
        )
    except httpx.TransportError as exc:
        # Exit 2, like any argument naming nothing usable: 1 says the gateway answered non-2xx.
        raise UsageError(f"cannot reach {base}: {exc or type(exc).__name__}") from exc
    print(f"{request.method} {request.url} -> {response.status_code}")
    print(response.text)
    return 0 if response.is_success else 1


def _at(text: str) -> tuple[str, datetime.datetime]:
    """An argparse type: ``payload.startTime=24h1m`` -> (the field, now + 24h1m)."""
    field, equals, offset = text.partition("=")
    if not (field and equals):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FIELD=DURATION, like payload.startTime=25h"
        )
    parts = re.findall(r"-?[0-9.]+[a-z]+", offset)
    if "".join(parts) != offset or not parts:
        parts = [offset]  # not a sum of durations: let the parser say why
    seconds = sum(_offset(part) for part in parts)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return field, now + datetime.timedelta(seconds=seconds)


def _offset(text: str) -> float:
    try:
        return parse_signed_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _sync_webhook(config: Config, integration: Integration, args: argparse.Namespace) -> Any:
    """The webhook a sync's example record stands for, as the sync would deliver it now (the
    record moved in time first, with --at)."""
    spec = integration.syncs.get(args.sync)
    if spec is None:
        known = ", ".join(sorted(integration.syncs)) or "none"
        raise UsageError(f"{integration.name} has no sync '{args.sync}' (syncs: {known})")
    if spec.as_webhook is None or integration.webhook is None:
        raise UsageError(f"sync {spec.label} has no as_webhook: its records are not webhooks")
    record = spec.examples.get(args.example)
    if record is None:
        known = ", ".join(sorted(spec.examples)) or "none"
        raise UsageError(f"sync {spec.label} has no example '{args.example}' (examples: {known})")
    if args.at:
        record = shift_times({"body": record}, *args.at)["body"]
    tenant = args.tenant or DEFAULT_TENANT
    delivery = spec.as_webhook.deliver(
        integration.webhook.pipeline,
        record,
        integration=integration.name,
        tenant=tenant,
        tenant_vars=config.tenant_variables(tenant),
        now=datetime.datetime.now(datetime.UTC),
    )
    if delivery is None:
        raise UsageError(
            f"sync {spec.label} delivers no webhook for '{args.example}' now: its as_webhook.when"
            " does not hold (move the record in time with --at)"
        )
    if delivery.failures:
        failure = delivery.failures[0]
        raise UsageError(
            f"sync {spec.label}, '{args.example}': {failure.where()}: {failure.reason}"
        )
    return {
        "headers": {"Content-Type": "application/json", **delivery.headers},
        "body": delivery.payload,
    }


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{option} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object")
    return value


def _function_call(integration: Integration, args: argparse.Namespace) -> dict[str, Any]:
    """The request a voice agent makes to call the function: {name, call, args}."""
    if args.function not in integration.functions:
        known = ", ".join(sorted(integration.functions)) or "none"
        raise UsageError(
            f"{integration.name} has no function '{args.function}' (functions: {known})"
        )
    call = {
        "call_id": "sim_" + random.token_hex(8),
        "call_type": "phone_call",
        "direction": "inbound",
        "from_number": "+15555550100",
        "to_number": "+15555550199",
        "transcript": "",
        **_json_object(args.call, "--call"),
    }
    body = {"name": args.function, "call": call, "args": _json_object(args.args, "--args")}
    return {"headers": {"Content-Type": "application/json"}, "body": body}


def _private_key(args: argparse.Namespace) -> bytes | None:
    if not args.private_key:
        return None
    try:
        return Path(args.private_key).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.private_key}: cannot read ({exc.strerror})") from exc


async def _tenant_values(args: argparse.Namespace) -> dict[tuple[str, str], str]:
    """The tenant's stored credentials, decrypted: they sign instead of the environment's."""
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


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "simulate",
        help="sign a declared example (or an in-call function call) and POST it, as the"
        " provider would",
    )
    p.add_argument("integration")
    p.add_argument("example", nargs="?", default=None)
    p.add_argument("--function", metavar="NAME", help="call this in-call function instead")
    p.add_argument(
        "--sync",
        metavar="SYNC",
        help="EXAMPLE is a record of this sync's examples: send the webhook it stands for"
        " (as_webhook), as the sync would deliver it now",
    )
    p.add_argument("--args", default="{}", help="the function's arguments (a JSON object)")
    p.add_argument(
        "--call", default="{}", help="fields of the call object (JSON), over a made-up call"
    )
    p.add_argument("--tenant", default=None)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the gateway's base URL")
    p.add_argument(
        "--private-key",
        metavar="PEM",
        help="ecdsa/ed25519 and jwt ES*/RS*/PS*: the private key to sign with",
    )
    p.add_argument(
        "--at",
        type=_at,
        metavar="FIELD=DURATION",
        help="move the example in time: FIELD of its body (a dotted path, e.g. payload.startTime)"
        " becomes now plus DURATION (24h1m, -5m, ...), and every other time in the body moves"
        " by as much",
    )
    add_config_args(p)
    p.set_defaults(func=cmd_simulate)

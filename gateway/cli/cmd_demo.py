"""`gateway demo`: the gateway and the provider sandbox together, to watch a scenario happen.

Every shipped integration points at the sandbox; demo secrets are written to var/demo.env so
that `gateway simulate` in a second shell signs with the same ones. Requests the providers
receive are printed as they arrive.

Once the gateway is up, the demo plays a phone call: it signs and posts the voice agent's
`book_appointment` function call (Retell's shape) to the gateway, prints the agent's answer,
and then posts the BOOKING_CREATED that Cal.com would send for the booking the sandbox took,
so the booking's confirmation SMS and email go out through the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import os
import secrets as random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.cli.arguments import DEFAULT_PORT, Subparsers, port_default, port_number
from gateway.config.model import Config
from gateway.config.signing import signed_example
from gateway.credentials.secrets import SecretLookup
from gateway.processing.worker import JOB_HEADER
from gateway.resources import sandbox_responses
from gateway.sandbox.recording import RecordedRequest
from gateway.sandbox.server import SandboxHandle, running_sandbox
from gateway.store import open_store
from gateway.store.entities import Job

RULES = sandbox_responses()
PROVIDERS = (
    "retell", "calcom", "stripe", "twilio", "sendgrid", "whatsapp", "google_calendar", "outlook",
    "segment", "sentry",
)  # fmt: skip
SECRETS = (
    "STRIPE_WEBHOOK_SECRET", "STRIPE_API_KEY", "TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY",
    "CALCOM_API_KEY", "CALCOM_WEBHOOK_SECRET", "RETELL_API_KEY", "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "SEGMENT_WRITE_KEY", "SEGMENT_SHARED_SECRET",
    "SENTRY_CLIENT_SECRET", "GOOGLE_CALENDAR_CHANNEL_TOKEN", "OUTLOOK_CLIENT_STATE",
    "GOOGLE_CLIENT_SECRET", "GOOGLE_REFRESH_TOKEN", "OUTLOOK_CLIENT_SECRET",
)  # fmt: skip


def _sendgrid_keys(folder: Path) -> str:
    """A P-256 key pair standing in for SendGrid's: the private half signs simulated events."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    (folder / "demo-sendgrid.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(public).decode()


def demo_environment(sandbox: SandboxHandle, folder: Path) -> dict[str, str]:
    env = {name: f"demo-{name.lower().replace('_', '-')}" for name in SECRETS}
    env.update(
        TWILIO_ACCOUNT_SID="ACdemo0000000000000000000000000000",
        TWILIO_FROM_NUMBER="+15005550006",
        SENDGRID_FROM_EMAIL="bookings@demo.example",
        WHATSAPP_PHONE_NUMBER_ID="100000000000001",
        SENDGRID_WEBHOOK_PUBLIC_KEY=_sendgrid_keys(folder),
        GOOGLE_OAUTH_TOKEN_URL=sandbox.url_for("google_oauth/token"),
        OUTLOOK_LOGIN_URL=sandbox.url_for("microsoft_login"),
        OUTLOOK_TENANT_ID="demo",
        GOOGLE_CLIENT_ID="demo-google-client",
        OUTLOOK_CLIENT_ID="demo-outlook-client",
        GATEWAY_ADMIN_TOKEN="demo-admin-token",  # noqa: S106 - the demo's own, printed
        **sandbox.base_urls(*PROVIDERS),
    )
    return env


def provider_line(request: RecordedRequest, job: Job | None) -> str:
    """One request a provider received, with the event, flow and action that made it."""
    body = request.body if len(request.body) <= 160 else request.body[:157] + "..."
    line = f"  provider <- {request.method} {request.path} -> {request.status}"
    if job is not None:
        line += f"  [event {job.event_id}, flow {job.flow}, action {job.action}, {job.id}]"
    return f"{line}\n      {body}" if body else line


def _watch(sandbox: SandboxHandle, db: str, stop: threading.Event) -> None:
    """Print what the providers receive, each request with the job that sent it (its
    X-Gateway-Job header), read from the demo's store on this thread's own loop."""
    loop = asyncio.new_event_loop()
    store = open_store(db)
    loop.run_until_complete(store.open())
    seen = 0
    try:
        while not stop.is_set():
            requests = sandbox.requests()
            for request in requests[seen:]:
                job_id = request.headers.get(JOB_HEADER.lower())
                job = loop.run_until_complete(store.get_job(job_id)) if job_id else None
                print(provider_line(request, job), flush=True)
            seen = len(requests)
            time.sleep(0.2)
    finally:
        loop.run_until_complete(store.close())
        loop.close()


CALLER = {"name": "Jane Doe", "email": "jane.doe@example.com", "phone": "+4915112345678"}
ZONE = "Europe/Berlin"


def _post_signed(config: Config, integration: str, url: str, body: dict[str, Any]) -> Any:
    """Sign `body` as the provider signs, with the demo's secrets, and POST it."""
    import httpx

    request = signed_example(
        config.integrations[integration],
        {"headers": {"Content-Type": "application/json"}, "body": body},
        url,
        SecretLookup(integration, {}, os.environ),
    )
    return httpx.request(
        request.method, request.url, headers=request.headers, content=request.body, timeout=30
    )


def _wait_up(url: str, stop: threading.Event, timeout: float = 30) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/livez", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def booking_created_body(config: Config, booked: dict[str, Any], uid: str) -> dict[str, Any]:
    """Cal.com's BOOKING_CREATED for a booking the sandbox took (its request's body): the
    shipped example with the booking's time, attendee and uid."""
    example = config.integrations["calcom"].example("booking_created")
    if example is None:  # pragma: no cover - the shipped file declares it
        raise LookupError("calcom has no example booking_created")
    body: dict[str, Any] = copy.deepcopy(dict(example["body"]))
    start = datetime.fromisoformat(str(booked["start"]).replace("Z", "+00:00"))
    attendee = booked.get("attendee") or {}
    payload = body["payload"]
    payload.update(
        uid=uid,
        bookingId=None,
        startTime=start.isoformat().replace("+00:00", "Z"),
        endTime=(start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
        metadata=booked.get("metadata") or {},
        additionalNotes="Booked by the voice agent during the call",
    )
    payload["attendees"][0].update(
        name=attendee.get("name", CALLER["name"]),
        email=attendee.get("email", CALLER["email"]),
        phoneNumber=attendee.get("phoneNumber", CALLER["phone"]),
        timeZone=attendee.get("timeZone", ZONE),
    )
    body["createdAt"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return body


def play_call(config: Config, sandbox: SandboxHandle, url: str, tenant: str = "demo") -> None:
    """A caller books by phone: the agent's book_appointment call, its answer, the booking."""
    start = (datetime.now(ZoneInfo(ZONE)) + timedelta(days=2)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    call_id = "demo_call_" + random.token_hex(6)
    body = {
        "name": "book_appointment",
        "call": {
            "call_id": call_id,
            "call_type": "phone_call",
            "direction": "inbound",
            "from_number": CALLER["phone"],
            "to_number": "+493012345678",
            "transcript": "User: I'd like a consultation the day after tomorrow at ten.",
        },
        "args": {**CALLER, "start": start.isoformat(), "timezone": ZONE},
    }
    path = f"/functions/retell/book_appointment/{tenant}"
    print(f"call    -> POST {path}  (Retell: {CALLER['name']} asks for {start.isoformat()})")
    answer = _post_signed(config, "retell", url + path, body)
    print(f"agent   <- {answer.status_code} {answer.text}", flush=True)
    made = [
        r
        for r in sandbox.requests("/calcom/v2/bookings", "POST")
        if isinstance(r.json, dict)
        and (r.json.get("metadata") or {}).get("retell_call_id") == call_id
    ]
    if not made or made[-1].status not in (200, 201):
        print("booking    none made", flush=True)
        return
    booked = made[-1].json
    uid = "demo" + random.token_hex(9)
    created = _post_signed(
        config,
        "calcom",
        f"{url}/webhooks/calcom/{tenant}",
        booking_created_body(config, booked, uid),
    )
    print(
        f"booking    {uid} at {booked['start']} for {booked['attendee']['name']}"
        f" (Cal.com's BOOKING_CREATED posted -> {created.status_code}); its confirmation follows",
        flush=True,
    )


def _play(config: Config, sandbox: SandboxHandle, url: str, stop: threading.Event) -> None:
    import httpx

    if not _wait_up(url, stop):
        print(f"call       not played: the gateway on {url} did not come up", flush=True)
        return
    try:
        play_call(config, sandbox, url)
    except (httpx.HTTPError, LookupError, ValueError, KeyError) as exc:
        print(f"call       could not be played: {exc}", flush=True)


def fresh_database(folder: Path) -> str:
    """The demo's database, new for every run: events of an earlier run would make every
    simulated webhook a duplicate."""
    for suffix in ("", "-wal", "-shm"):
        (folder / f"demo.db{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{folder / 'demo.db'}"


def cmd_demo(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.config.model import load_config
    from gateway.config.settings import Settings
    from gateway.logs import configure_logging
    from gateway.web.application import create_app

    configure_logging("warning")
    folder = Path("var")
    folder.mkdir(exist_ok=True)
    with running_sandbox(RULES) as sandbox:
        env = demo_environment(sandbox, folder)
        (folder / "demo.env").write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
        os.environ.update(env)
        config = load_config(args.integrations, os.environ)
        db = fresh_database(folder)
        store = open_store(db)
        app = create_app(config, store, Settings.from_env(os.environ), os.environ)
        url = f"http://{args.host}:{args.port}"
        print(
            f"gateway on {url}, provider sandbox on {sandbox.url}\n"
            "In a second shell, play the scenario:\n"
            "  set -a; . var/demo.env; set +a\n"
            f"  .venv/bin/gateway simulate retell call_analyzed_booking --tenant demo --url {url}\n"
            f"  .venv/bin/gateway simulate calcom booking_created --tenant demo --url {url} \\\n"
            "      --at payload.startTime=24h1m  # a booking tomorrow: its reminder in a minute\n"
            f"  .venv/bin/gateway simulate stripe checkout_session_completed --url {url}\n"
            f"  .venv/bin/gateway jobs --db sqlite:///var/demo.db\n"
            "What the providers receive is printed below, each with the event, flow and action"
            " that sent it.\nThe database is new for every run of the demo.\n"
            + (
                "First, a caller books by phone (the agent's book_appointment function):\n"
                if args.call
                else ""
            )
        )
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(sandbox, db, stop), daemon=True)
        watcher.start()
        if args.call:
            caller = threading.Thread(target=_play, args=(config, sandbox, url, stop), daemon=True)
            caller.start()
        try:
            uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        finally:
            stop.set()
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="the gateway wired to the provider sandbox, with demo secrets")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--port",
        type=port_number,
        default=port_default(),
        help=f"default: $GATEWAY_PORT, then $PORT, then {DEFAULT_PORT}",
    )
    p.add_argument("--integrations", default="integrations.d", metavar="DIR")
    p.add_argument(
        "--no-call",
        dest="call",
        action="store_false",
        help="do not play the phone call that books through book_appointment at the start",
    )
    p.set_defaults(func=cmd_demo)

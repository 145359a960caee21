"""The shipped Cal.com booking as a load: `BOOKING_CREATED` webhooks, signed as Cal.com signs
them, through the shipped flows (SMS and email confirmation, calendar mirror, reminder).

The integrations are the shipped `integrations.d`, copied with one change: the providers'
rate limits are raised, since the stand-in the bench calls is not the real account whose
limits they describe (Twilio's 10 a second would otherwise be all a run measures).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "integrations.d"
TEMPLATES = REPO / "templates"


def shipped(code: Path | None = None) -> tuple[Path, Path]:
    """(integrations.d, templates) of `code` (a checkout of another revision, which holds
    them: its flows and templates are the ones its code reads), else this repository's."""
    if code is not None and (code / "integrations.d").is_dir():
        return code / "integrations.d", code / "templates"
    return SHIPPED, TEMPLATES


TENANT = "demo"
PROVIDERS = ("calcom", "twilio", "sendgrid", "google_calendar", "whatsapp")
SECRETS = {
    "CALCOM_API_KEY": "cal_live_bench",
    "CALCOM_WEBHOOK_SECRET": "cal-bench-secret",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "TWILIO_AUTH_TOKEN": "twilio-bench-token",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "SENDGRID_API_KEY": "SG.bench",
    "SENDGRID_FROM_EMAIL": "bookings@praxis.example",
    "GOOGLE_CLIENT_ID": "google-client",
    "GOOGLE_CLIENT_SECRET": "google-secret",
    "GOOGLE_REFRESH_TOKEN": "google-refresh",
    "WHATSAPP_ACCESS_TOKEN": "wa-token",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
}
RAISED_LIMIT = {"per_second": 1_000_000, "concurrent": 256, "max_wait": "60s"}
# The jobs one booking makes: SMS, email and calendar now, the reminder scheduled for later.
JOBS_PER_BOOKING = 4
JOBS_RUN_NOW = 3


def integrations(folder: Path, code: Path | None = None) -> Path:
    """A copy of the shipped integrations with the rate limits raised (see the docstring)."""
    target = folder / "integrations"
    shutil.copytree(shipped(code)[0], target)
    for path in target.glob("*.yaml"):
        text = path.read_text()
        if "rate_limit:" not in text:
            continue
        documents = list(yaml.safe_load_all(text))
        for document in documents:
            api = (document or {}).get("api") or {}
            if "rate_limit" in api:
                api["rate_limit"] = dict(RAISED_LIMIT)
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return target


def environment(
    base_urls: dict[str, str], token_url: str, code: Path | None = None
) -> dict[str, str]:
    """Secrets and the stand-in's URLs (`base_urls`: provider -> base URL)."""
    env = dict(SECRETS)
    for name, url in base_urls.items():
        env[f"{name.upper()}_BASE_URL"] = url
    env["GOOGLE_OAUTH_TOKEN_URL"] = token_url
    env["GATEWAY_TEMPLATES_DIR"] = str(shipped(code)[1])
    return env


def _example() -> dict[str, Any]:
    for document in yaml.safe_load_all((SHIPPED / "calcom.yaml").read_text()):
        if document and document.get("kind") == "integration":
            found: dict[str, Any] = document["examples"]["booking_created"]["body"]
            return found
    raise RuntimeError("integrations.d/calcom.yaml has no booking_created example")


class Bookings:
    """Unique `BOOKING_CREATED` bodies (three days ahead, so the reminder is scheduled)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        template = copy.deepcopy(_example())
        start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        template["payload"]["startTime"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        template["payload"]["endTime"] = (start + timedelta(minutes=30)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        template["payload"]["uid"] = "@UID@"
        self._text = json.dumps(template, separators=(",", ":"))

    def body(self, n: int) -> bytes:
        return self._text.replace("@UID@", f"{self.tag}{n:08d}").encode()


def signature(body: bytes) -> str:
    """Cal.com's X-Cal-Signature-256: hex HMAC-SHA256 of the raw body."""
    secret = SECRETS["CALCOM_WEBHOOK_SECRET"].encode()
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def answer(method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """What the fast stand-in answers (status, headers, body), as the sandbox's rules do."""
    if path.endswith("/token"):
        token = {"access_token": "ya29.bench", "expires_in": 3600, "token_type": "Bearer"}
        return 200, {"content-type": "application/json"}, json.dumps(token).encode()
    if "/Messages.json" in path:
        return 201, {"content-type": "application/json"}, b'{"sid":"SMbench","status":"queued"}'
    if path.endswith("/mail/send"):
        return 202, {"x-message-id": "bench-message-id"}, b""
    if "/events" in path:
        return 200, {"content-type": "application/json"}, b'{"id":"bench","status":"confirmed"}'
    return 200, {"content-type": "application/json"}, b"{}"


def write_requests(path: Path, count: int, tag: str) -> int:
    """`count` lines ``<X-Cal-Signature-256>\\t<body>`` of unique bookings for wrk (see
    stripe_events.lua); returns the mean body size in bytes."""
    made = Bookings(tag)
    secret = SECRETS["CALCOM_WEBHOOK_SECRET"].encode()
    keyed = hmac.new(secret, b"", hashlib.sha256)
    total = 0
    with path.open("w", encoding="utf-8") as out:
        lines: list[str] = []
        for n in range(count):
            body = made.body(n)
            mac = keyed.copy()
            mac.update(body)
            lines.append(f"{mac.hexdigest()}\t{body.decode()}\n")
            total += len(body)
            if len(lines) >= 10_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
    return total // max(count, 1)

"""The function engine on a small integration of its own: conditions, emitted events run the
usual flows, a retry arriving while the first call still runs books nothing twice; lint's
checks of functions."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.config.lint import lint
from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.sandbox.app import SandboxApp, create_sandbox_app
from gateway.store import SQLiteStore
from gateway.web.application import create_app
from tests.helpers.app import ADMIN_TOKEN, admin

SECRET = "voice-secret"
VOICE = """\
kind: integration
name: voice
api:
  base_url: http://sandbox/desk
  endpoints:
    book: {method: POST, path: /book}
    lookup: {method: GET, path: "/people/{id}"}
    notify: {method: POST, path: /notify}
webhook:
  format: json
  verify:
    scheme: hmac
    algorithm: sha256
    secret: "${secret:VOICE_SECRET}"
    signature: {header: X-Sig}
    signed: "{body}"
  event:
    id: "{{ body.id }}"
    type: "{{ body.type }}"
functions:
  book:
    deadline: 3s
    idempotency: "{{ call.call_id }}"
    steps:
      - name: person
        condition: "{{ args.person_id | default('') != '' }}"
        call:
          endpoint: voice.lookup
          params: {id: "{{ args.person_id }}"}
      - name: booking
        call:
          endpoint: voice.book
          body:
            who: "{{ steps.person.body.name if steps.person.ok else args.name }}"
    respond:
      booked: "{{ steps.booking.body.ref }}"
      looked_up: "{{ not steps.person.skipped }}"
    fallback: {booked: null}
    emit:
      event: desk.booked
      data:
        ref: "{{ steps.booking.body.ref }}"
        call_id: "{{ call.call_id }}"
"""
FLOW = """\
kind: flow
name: tell-the-desk
event: desk.booked
actions:
  - name: notify
    call:
      endpoint: voice.notify
      body: {ref: "{{ event.data.ref }}", call: "{{ event.data.call_id }}"}
"""
RULES = [
    {"name": "book", "method": "POST", "path": "/desk/book", "delay": "300ms",
     "json": {"ref": "R-{{ seq }}"}},
    {"name": "lookup", "method": "GET", "path": "/desk/people/*",
     "json": {"name": "Person {{ wildcards[0] }}"}},
]  # fmt: skip


class Voice:
    def __init__(self, client: TestClient, sandbox: SandboxApp) -> None:
        self.client = client
        self.sandbox = sandbox

    def call(self, args: dict[str, str], call_id: str = "c1") -> httpx.Response:
        body = json.dumps({"name": "book", "call": {"call_id": call_id}, "args": args}).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return self.client.post("/functions/voice/book", content=body, headers={"x-sig": signature})

    def sent(self, path: str) -> list[object]:
        return [r.json for r in self.sandbox.sandbox.requests() if r.path == path]


def stored(voice: Voice, count: int) -> list[dict[str, str]]:
    """The stored calls once there are `count` (they are stored just after being answered)."""
    deadline = time.monotonic() + 10
    while True:
        found: list[dict[str, str]] = admin(voice.client, "/admin/api/functions/calls")["calls"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@pytest.fixture
def voice(tmp_path: Path) -> Iterator[Voice]:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "voice.yaml").write_text(VOICE)
    (folder / "flow.yaml").write_text(FLOW)
    environ = {"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN, "VOICE_SECRET": SECRET}
    sandbox = create_sandbox_app(RULES)
    app = create_app(
        load_config(folder, environ, templates_dir=tmp_path),
        SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}"),
        Settings.from_env(environ),
        environ,
        transport=httpx.ASGITransport(app=sandbox),
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Voice(client, sandbox)


def test_a_condition_skips_a_step_and_later_steps_read_earlier_results(voice: Voice) -> None:
    plain = voice.call({"name": "Ann"}, call_id="c1")
    looked_up = voice.call({"person_id": "7"}, call_id="c2")

    assert plain.json()["looked_up"] is False
    assert looked_up.json()["looked_up"] is True
    assert plain.json()["booked"].startswith("R-")  # what the sandbox answered
    assert looked_up.json()["booked"] not in (None, plain.json()["booked"])
    assert voice.sent("/desk/book") == [{"who": "Ann"}, {"who": "Person 7"}]


def test_the_emitted_event_runs_the_usual_flows(voice: Voice) -> None:
    assert voice.call({"name": "Ann"}).status_code == 200

    deadline = time.monotonic() + 10
    while not voice.sent("/desk/notify") and time.monotonic() < deadline:
        time.sleep(0.05)

    assert voice.sent("/desk/notify") == [{"ref": "R-1", "call": "c1"}]
    (event,) = admin(voice.client, "/admin/api/events")["events"]
    assert (event["integration"], event["type"]) == ("voice", "function.book")


def test_a_retry_while_the_first_call_runs_books_once(voice: Voice) -> None:
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(voice.call, {"name": "Ann"})
        time.sleep(0.1)  # the first is waiting for the booking (300 ms)
        again = pool.submit(voice.call, {"name": "Ann"})
        answers = [first.result().json(), again.result().json()]

    assert answers == [{"booked": "R-1", "looked_up": False}] * 2
    assert len(voice.sent("/desk/book")) == 1
    outcomes = [c["outcome"] for c in stored(voice, 2)]
    assert sorted(outcomes) == ["ok", "repeat"]


def test_the_admin_api_filters_calls_and_refuses_an_unknown_outcome(voice: Voice) -> None:
    voice.call({"name": "Ann"})
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    refused = voice.client.get("/admin/api/functions/calls?outcome=nope", headers=headers)
    stored(voice, 1)
    found = admin(voice.client, "/admin/api/functions/calls?outcome=ok&function=book")
    none = admin(voice.client, "/admin/api/functions/calls?outcome=fallback")

    assert refused.status_code == 400
    assert [c["function"] for c in found["calls"]] == ["book"]
    assert none["calls"] == []


def _lint(tmp_path: Path, text: str) -> list[str]:
    folder = tmp_path / "lint"
    folder.mkdir(exist_ok=True)
    (folder / "voice.yaml").write_text(text)
    return [d.rule for d in lint([str(folder)]).diagnostics]


def test_lint_accepts_the_fixture(tmp_path: Path) -> None:
    assert _lint(tmp_path, VOICE) == []


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (('booked: "{{ steps.booking.body.ref }}"', 'booked: "{{ step.booking }}"'),
         "jinja-undefined-var"),
        (("fallback: {booked: null}", 'fallback: "{{ steps.booking }}"'), "jinja-undefined-var"),
        (("endpoint: voice.book", "endpoint: voice.bok"), "ref-endpoint"),
        (('params: {id: "{{ args.person_id }}"}', "params: {}"), "ref-param"),
        (("- name: booking", "- name: person"), "duplicate-name"),
        (("deadline: 3s", "deadline: soon"), "invalid-duration"),
    ],
)  # fmt: skip
def test_lint_reports_broken_functions(tmp_path: Path, change: tuple[str, str], rule: str) -> None:
    assert change[0] in VOICE
    assert rule in _lint(tmp_path, VOICE.replace(*change))


def test_lint_refuses_functions_without_verification(tmp_path: Path) -> None:
    text = VOICE.replace("webhook:\n", "hooks_removed:\n").split("hooks_removed:")[0]
    text += "functions:" + VOICE.split("functions:")[1]
    text = text.replace("    emit:\n      event: desk.booked\n", "    emitx:\n").split(
        "    emitx:"
    )[0]

    assert "function-unverified" in _lint(tmp_path, text)

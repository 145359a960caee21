"""The shipped Retell functions, called as Retell calls them (signed by Retell's SDK), against
the provider sandbox standing in for Cal.com."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import retell.lib.webhook_auth as retell_auth
from starlette.testclient import TestClient

from gateway.cli.main import main
from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.resources import sandbox_responses
from gateway.sandbox.app import SandboxApp, create_sandbox_app
from gateway.sandbox.loading import load_rules
from gateway.store import SQLiteStore
from gateway.web.application import create_app
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN, admin

RETELL_KEY = "key_retell_test"
ENVIRON = {
    "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
    "RETELL_API_KEY": RETELL_KEY,
    "CALCOM_API_KEY": "cal_test",
    "CALCOM_BASE_URL": "http://sandbox/calcom",
}
CALL = {
    "call_id": "call_7f3a",
    "call_type": "phone_call",
    "direction": "inbound",
    "from_number": "+4915112345678",
    "to_number": "+493012345678",
    "transcript": "Agent: Praxis Weber, how can I help?\nUser: I'd like an appointment.",
}


class Gateway:
    def __init__(self, client: TestClient, sandbox: SandboxApp) -> None:
        self.client = client
        self.sandbox = sandbox

    def call(
        self, function: str, args: dict[str, Any], *, key: str = RETELL_KEY, tenant: str = "demo"
    ) -> httpx.Response:
        body = json.dumps({"name": function, "call": CALL, "args": args})
        signature = retell_auth.symmetric["sign"](body, key)
        return self.client.post(
            f"/functions/retell/{function}/{tenant}",
            content=body,
            headers={"content-type": "application/json", "x-retell-signature": signature},
        )

    def requests(self, path: str, method: str) -> list[Any]:
        return [r for r in self.sandbox.sandbox.requests() if r.path == path and r.method == method]


def stored_calls(gateway: Gateway, count: int, query: str = "") -> list[Any]:
    """The stored calls once there are `count` (they are stored just after being answered)."""
    deadline = time.monotonic() + 10
    while True:
        found: list[Any] = admin(gateway.client, f"/admin/api/functions/calls{query}")["calls"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def gateway_for(folder: Path, tmp_path: Path) -> Iterator[Gateway]:
    sandbox = create_sandbox_app(load_rules(sandbox_responses()))
    config = load_config(folder, ENVIRON)
    store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
    app = create_app(
        config,
        store,
        Settings.from_env(ENVIRON),
        ENVIRON,
        transport=httpx.ASGITransport(app=sandbox, root_path=""),
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Gateway(client, sandbox)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    yield from gateway_for(REPO / "integrations.d", tmp_path)


def test_availability_is_answered_from_the_sandbox_as_text_to_read_aloud(
    gateway: Gateway,
) -> None:
    response = gateway.call("check_availability", {"date": "2025-06-12"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == (
        "The first free times are Thursday 12 June at 09:00, Thursday 12 June at 09:30,"
        " Thursday 12 June at 10:00."
    )
    (asked,) = gateway.requests("/calcom/v2/slots", "GET")
    assert dict(asked.query) == {
        "eventTypeId": "1234567",  # the demo tenant's
        "start": "2025-06-12",
        "end": "2025-06-12",
        "timeZone": "Europe/Berlin",
    }
    (call,) = stored_calls(gateway, 1)
    assert (call["function"], call["outcome"], call["tenant"]) == (
        "check_availability",
        "ok",
        "demo",
    )
    assert json.loads(call["steps"])[0]["outcome"] == "ok"
    assert json.loads(call["request"])["args"] == {"date": "2025-06-12"}


def test_a_retried_booking_is_made_once_and_answered_the_same(gateway: Gateway) -> None:
    args = {"start": "2025-06-12T10:00:00+02:00", "name": "Jane Doe", "email": "jane@example.com"}

    first = gateway.call("book_appointment", args)
    again = gateway.call("book_appointment", args)

    assert first.status_code == again.status_code == 200
    assert first.text == "Booked for Thursday 12 June at 10:00."
    assert again.text == first.text
    (booked,) = gateway.requests("/calcom/v2/bookings", "POST")
    assert json.loads(booked.body)["start"] == "2025-06-12T08:00:00Z"
    assert json.loads(booked.body)["attendee"] == {
        "name": "Jane Doe",
        "email": "jane@example.com",
        "timeZone": "Europe/Berlin",
        "phoneNumber": "+4915112345678",
    }
    calls = stored_calls(gateway, 2, "?function=book_appointment")
    assert [c["outcome"] for c in calls] == ["repeat", "ok"]


def test_the_callers_language_is_booked_as_the_attendees(gateway: Gateway) -> None:
    # Cal.com sends it back in BOOKING_CREATED: the confirmations are in it
    args = {"start": "2025-06-13T10:00:00+02:00", "name": "Jana Schmidt", "language": "de"}
    assert gateway.call("book_appointment", args).status_code == 200
    (booked,) = gateway.requests("/calcom/v2/bookings", "POST")
    assert json.loads(booked.body)["attendee"]["language"] == "de"


def test_a_taken_slot_is_answered_not_booked_with_the_nearest_free_times(
    gateway: Gateway,
) -> None:
    gateway.sandbox.sandbox.add_rules(
        [
            {
                "name": "slot-taken",
                "method": "POST",
                "path": "/calcom/v2/bookings",
                "status": 400,
                "json": {
                    "status": "error",
                    "error": {
                        "code": "BadRequestException",
                        "message": "User either already has booking at this time or is not"
                        " available",
                    },
                },
            }
        ]
    )

    response = gateway.call(
        "book_appointment", {"start": "2025-06-12T10:15:00+02:00", "name": "Jane Doe"}
    )

    assert response.status_code == 200
    assert response.text == (
        "Not booked: that time is no longer free. The nearest free times are"
        " Thursday 12 June at 10:00, Thursday 12 June at 10:30, Thursday 12 June at 09:30."
    )
    (call,) = stored_calls(gateway, 1)
    steps = json.loads(call["steps"])
    assert [(s["name"], s["outcome"], s.get("status")) for s in steps] == [
        ("booking", "accepted", 400),
        ("alternatives", "ok", 200),
    ]


def test_calcom_down_is_answered_with_the_fallback(gateway: Gateway) -> None:
    gateway.sandbox.sandbox.add_rules(
        [{"name": "down", "path": "/calcom/**", "status": 503, "json": {"error": "down"}}]
    )

    response = gateway.call("check_availability", {"date": "2025-06-12"})

    assert response.status_code == 200
    assert response.text.startswith("I cannot see the calendar right now.")
    (call,) = stored_calls(gateway, 1)
    assert call["outcome"] == "fallback"
    assert json.loads(call["steps"])[0]["status"] == 503


def test_a_slow_calcom_is_answered_with_the_fallback_within_the_deadline(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    for path in (REPO / "integrations.d").glob("*.yaml"):
        text = path.read_text()
        if path.name == "retell.yaml":  # the same function, with a deadline a test can wait
            text = text.replace("    deadline: 5s\n", "    deadline: 400ms\n", 1)
        (folder / path.name).write_text(text)
    for gateway in gateway_for(folder, tmp_path):
        gateway.sandbox.sandbox.add_rules(
            [{"name": "slow", "path": "/calcom/v2/slots", "delay": "5s", "json": {}}]
        )
        started = time.monotonic()
        response = gateway.call("check_availability", {"date": "2025-06-12"})
        took = time.monotonic() - started

        assert response.status_code == 200
        assert response.text.startswith("I cannot see the calendar right now.")
        assert 0.4 <= took < 2.0
        (call,) = stored_calls(gateway, 1)
        assert call["outcome"] == "timeout"
        assert 400 <= call["duration_ms"] < 2000


def test_a_forged_call_is_refused_and_nothing_is_called(gateway: Gateway) -> None:
    forged = gateway.call("check_availability", {"date": "2025-06-12"}, key="not-the-key")
    unsigned = gateway.client.post(
        "/functions/retell/check_availability/demo", json={"name": "check_availability"}
    )

    assert forged.status_code == unsigned.status_code == 401
    assert forged.json()["error"]["code"] == "invalid_signature"
    assert gateway.requests("/calcom/v2/slots", "GET") == []
    assert admin(gateway.client, "/admin/api/functions/calls")["calls"] == []


def test_unknown_functions_and_tenants_are_not_found(gateway: Gateway) -> None:
    assert gateway.call("no_such_function", {}).status_code == 404
    assert gateway.call("check_availability", {}, tenant="nobody").status_code == 404
    assert gateway.client.get("/functions/retell/check_availability").status_code == 405


def test_calls_are_counted_and_timed_on_the_metrics_page(gateway: Gateway) -> None:
    gateway.call("check_availability", {"date": "2025-06-12"})
    gateway.call("check_availability", {"date": "2025-06-12"}, key="forged")

    page = gateway.client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).text

    assert (
        'gateway_function_calls_total{function="check_availability",integration="retell",'
        'outcome="ok"} 1.0'
    ) in page
    assert 'outcome="rejected"} 1.0' in page
    assert (
        'gateway_function_duration_seconds_count{function="check_availability",'
        'integration="retell"} 1.0'
    ) in page


def test_cancel_finds_the_callers_next_booking_by_number(gateway: Gateway) -> None:
    gateway.sandbox.sandbox.add_rules(
        [
            {
                "name": "upcoming",
                "method": "GET",
                "path": "/calcom/v2/bookings",
                "json": {
                    "status": "success",
                    "data": [
                        {
                            "uid": "later",
                            "start": "2025-06-20T08:00:00.000Z",
                            "attendees": [{"name": "Jane", "phoneNumber": "+4915112345678"}],
                        },
                        {
                            "uid": "someone-else",
                            "start": "2025-06-11T08:00:00.000Z",
                            "attendees": [{"name": "Max", "phoneNumber": "+4917600000000"}],
                        },
                        {
                            "uid": "next",
                            "start": "2025-06-13T08:00:00.000Z",
                            "attendees": [{"name": "Jane", "phoneNumber": "+4915112345678"}],
                        },
                    ],
                },
            }
        ]
    )

    response = gateway.call("cancel_appointment", {})

    assert response.text == "Cancelled."
    (cancelled,) = gateway.requests("/calcom/v2/bookings/next/cancel", "POST")
    assert json.loads(cancelled.body) == {"cancellationReason": "Cancelled by phone"}


def test_reschedule_by_booking_uid(gateway: Gateway) -> None:
    response = gateway.call(
        "reschedule_appointment",
        {"booking_uid": "bk1", "new_start": "2025-06-13T14:00:00+02:00"},
    )

    assert response.text == "Moved to Friday 13 June at 14:00."
    (moved,) = gateway.requests("/calcom/v2/bookings/bk1/reschedule", "POST")
    assert json.loads(moved.body)["start"] == "2025-06-13T12:00:00Z"
    assert gateway.requests("/calcom/v2/bookings", "GET") == []  # no lookup by number


def test_simulate_signs_a_function_call_and_prints_the_answer(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    sent: list[httpx.Request] = []

    def request(method: str, url: str, *, timeout: float, **kwargs: Any) -> httpx.Response:
        assert timeout > 0  # the test client takes none
        response = gateway.client.request(method, url, **kwargs)
        sent.append(response.request)
        return response

    monkeypatch.setattr(httpx, "request", request)
    argv = ["simulate", "retell", "--function", "check_availability", "--tenant", "demo"]
    argv += ["--args", '{"date": "2025-06-13"}', "--url", "http://testserver"]
    argv += ["--integrations", str(REPO / "integrations.d")]

    assert main(argv) == 0

    out = capsys.readouterr().out
    assert "POST http://testserver/functions/retell/check_availability/demo -> 200" in out
    assert "The first free times are Friday 13 June at 09:00" in out
    (request_sent,) = sent
    body = json.loads(request_sent.content)
    assert body["name"] == "check_availability" and body["args"] == {"date": "2025-06-13"}
    assert body["call"]["call_id"].startswith("sim_")


def test_simulate_names_the_functions_there_are(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "simulate",
        "retell",
        "--function",
        "book",
        "--integrations",
        str(REPO / "integrations.d"),
    ]

    assert main(argv) == 2

    assert "retell has no function 'book' (functions: book_appointment," in capsys.readouterr().err

"""`gateway erase` and the people API, on data the real flows stored: a signed Cal.com booking
(its event, jobs and the SMS and email it sent through the sandbox), a STOP reply (an opt-out)
and a Retell in-call booking (a function call). After the erase, the person's email and phone
are nowhere in the SQLite file's bytes, its -wal and -shm included."""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import retell.lib.webhook_auth as retell_auth
from starlette.testclient import TestClient

from gateway.cli.main import main
from gateway.config.examples import OutgoingRequest
from gateway.config.model import Config, load_config
from gateway.config.settings import Settings
from gateway.config.signing import signed_example
from gateway.credentials.secrets import SecretLookup
from gateway.processing.dispatcher import ERASED_EVENT
from gateway.resources import sandbox_responses
from gateway.sandbox.app import create_sandbox_app
from gateway.sandbox.loading import load_rules
from gateway.store import NewEvent, SQLiteStore, open_store
from gateway.store.entities import Dispatch
from gateway.web.application import create_app
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN, admin
from tests.helpers.postgres import fresh_schema

SECRETS = {
    "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
    "RETELL_API_KEY": "key_retell",
    "CALCOM_API_KEY": "cal_live_test",
    "CALCOM_WEBHOOK_SECRET": "cal-secret",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "TWILIO_AUTH_TOKEN": "twilio-token",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "SENDGRID_API_KEY": "SG.erase",
    "SENDGRID_FROM_EMAIL": "bookings@praxis.example",
    "GOOGLE_CLIENT_ID": "google-client",
    "GOOGLE_CLIENT_SECRET": "google-secret",
    "GOOGLE_REFRESH_TOKEN": "google-refresh",
    "GOOGLE_OAUTH_TOKEN_URL": "http://sandbox/google_oauth/token",
    **{
        f"{name.upper()}_BASE_URL": f"http://sandbox/{name}"
        for name in ("retell", "calcom", "twilio", "sendgrid", "google_calendar")
    },
}
START = (datetime.now(UTC) + timedelta(days=3)).replace(hour=14, minute=0, second=0, microsecond=0)
JANE_EMAIL = "Jane.Doe@Example.com"
JANE_PHONE = "+1 (415) 555-0123"
BOB_EMAIL = "bob.roe@example.org"
BOB_PHONE = "+49 151 98765432"
# Jane's email and number in every form the flows stored them (lower case: compared so).
NEEDLES = (
    b"jane.doe@example.com",  # as typed (Jane.Doe@Example.com) and as sent
    b"+14155550123",  # E.164: the SMS, the opt-out, the Retell call
    b"%2b14155550123",  # the STOP reply's form body
    b"(415) 555-0123",  # as Cal.com passed it on
)


@dataclass
class Seeded:
    db: Path
    config: Config
    booking: OutgoingRequest  # Jane's booking as Cal.com signed it
    events: dict[str, str]  # what -> event id


def _app(config: Config, db: Path) -> TestClient:
    sandbox = create_sandbox_app(load_rules(sandbox_responses()))
    app = create_app(
        config,
        SQLiteStore(f"sqlite:///{db}"),
        Settings.from_env(SECRETS),
        SECRETS,
        transport=httpx.ASGITransport(app=sandbox, root_path=""),
    )
    return TestClient(app, raise_server_exceptions=False)


def _signed(config: Config, integration: str, example: str, **change: Any) -> OutgoingRequest:
    declared = config.integrations[integration].example(example)
    assert declared is not None
    return signed_example(
        config.integrations[integration],
        {**declared, **change},
        f"http://testserver/webhooks/{integration}/demo",
        SecretLookup(integration, {}, SECRETS),
    )


def _post(client: TestClient, request: OutgoingRequest) -> Any:
    response = client.request(
        request.method, request.url, headers=request.headers, content=request.body
    )
    assert response.status_code == 200, response.text
    return response


def _booking(config: Config, uid: str, name: str, email: str, phone: str) -> OutgoingRequest:
    declared = config.integrations["calcom"].example("booking_created")
    assert declared is not None
    body = copy.deepcopy(declared["body"])
    payload = body["payload"]
    payload["uid"] = uid
    payload["startTime"] = START.isoformat().replace("+00:00", "Z")
    payload["endTime"] = (START + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    payload["attendees"][0].update(
        email=email, phoneNumber=phone, timeZone="Europe/Berlin", name=name, firstName=name
    )
    payload["responses"].update(
        name={"label": "your_name", "value": name},
        email={"label": "email_address", "value": email},
        attendeePhoneNumber={"label": "phone_number", "value": phone},
    )
    payload["title"] = f"Consultation with {name}"
    return _signed(config, "calcom", "booking_created", body=body)


def _settled(client: TestClient, event_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        jobs = admin(client, f"/admin/api/events/{event_id}")["jobs"]
        if len(jobs) >= count and all(
            j["status"] in ("succeeded", "dead", "cancelled")
            or (j["status"] == "queued" and j["schedule_key"])
            for j in jobs
        ):
            return jobs
        time.sleep(0.05)
    raise AssertionError(f"the jobs of {event_id} did not settle: {jobs}")


def _latest_event(client: TestClient, integration: str) -> str:
    (newest,) = admin(client, f"/admin/api/events?integration={integration}&limit=1")["events"]
    return str(newest["id"])


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    config = load_config(REPO / "integrations.d", SECRETS)
    db = tmp_path / "gateway.db"
    events: dict[str, str] = {}
    booking = _booking(config, "uid-jane", "Jane Doe", JANE_EMAIL, JANE_PHONE)
    with _app(config, db) as client:
        events["booking"] = _post(client, booking).json()["event_id"]
        jobs = _settled(client, events["booking"], 4)
        assert {j["action"]: j["status"] for j in jobs} == {
            "sms-confirmation": "succeeded",
            "email-confirmation": "succeeded",
            "create-google-event": "succeeded",
            "schedule-reminder": "queued",
        }
        bob = _booking(config, "uid-bob", "Bob Roe", BOB_EMAIL, BOB_PHONE)
        events["bob"] = _post(client, bob).json()["event_id"]
        _settled(client, events["bob"], 4)

        form = dict(config.integrations["twilio"].example("incoming_sms")["form"])  # type: ignore[index]
        form.update(From="+14155550123", Body="STOP", MessageSid="SM" + "1" * 32)
        _post(client, _signed(config, "twilio", "incoming_sms", form=form))
        events["stop"] = _latest_event(client, "twilio")
        (opt_out,) = _settled(client, events["stop"], 1)
        assert (opt_out["action"], opt_out["status"]) == ("opt-out-sms", "succeeded")

        call = {
            "name": "book_appointment",
            "call": {"call_id": "call_jane", "from_number": "+14155550123"},
            "args": {"start": "2025-06-12T10:00:00+02:00", "name": "Jane Doe", "email": JANE_EMAIL},
        }
        body = json.dumps(call)
        answered = client.post(
            "/functions/retell/book_appointment/demo",
            content=body,
            headers={
                "content-type": "application/json",
                "x-retell-signature": retell_auth.symmetric["sign"](
                    body, SECRETS["RETELL_API_KEY"]
                ),
            },
        )
        assert answered.status_code == 200, answered.text
        deadline = time.monotonic() + 10
        while not admin(client, "/admin/api/functions/calls")["calls"]:
            assert time.monotonic() < deadline, "the function call was not stored"
            time.sleep(0.02)
    yield Seeded(db, config, booking, events)


def _people(client: TestClient, query: str) -> dict[str, Any]:
    found: dict[str, Any] = admin(client, f"/admin/api/people?{query}")
    return found


def _counts(found: dict[str, Any]) -> dict[str, int]:
    return {name: t["count"] for name, t in found["tables"].items() if t["count"]}


def _raw(db: Path) -> bytes:
    """The database's bytes as they are on disk: the file, its WAL and its shared memory."""
    parts = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists()).lower()


def _clinic_event(db: Path, body: bytes) -> None:
    """Jane's booking stored again for another tenant (clinic), dispatched already."""

    async def insert() -> None:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        try:
            await store.insert_events(
                [
                    NewEvent(
                        "evt_clinic_copy",
                        "calcom",
                        "clinic",
                        "k-clinic",
                        None,
                        "BOOKING_CREATED",
                        time.time(),
                        "{}",
                        body,
                    )
                ]
            )
            await store.commit_dispatches([Dispatch("evt_clinic_copy", "dispatched")])
        finally:
            await store.close()

    asyncio.run(insert())


def _event_body(db: Path, event_id: str) -> bytes:
    with sqlite3.connect(db) as connection:
        (body,) = connection.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
    connection.close()
    return bytes(body)


def test_erase_removes_the_person_from_every_table_and_the_files_bytes(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    db, url = seeded.db, f"sqlite:///{seeded.db}"
    jane = f"email={JANE_EMAIL}&phone=%2B14155550123"
    bob = f"email={BOB_EMAIL}&phone=4915198765432"
    booking_body = _event_body(db, seeded.events["booking"])
    _clinic_event(db, booking_body)
    with _app(seeded.config, db) as client:
        before = _people(client, jane)
        bob_before = _people(client, bob)
    assert _counts(before) == {
        "events": 3,  # the booking, the STOP reply, the clinic's copy
        "jobs": 5,  # the booking's four, the opt-out
        "job_attempts": 2,  # the sandbox's answers to the SMS and the email name her
        "messages": 2,  # the SMS and the email
        "opt_outs": 1,
        "function_calls": 1,
    }
    assert seeded.events["booking"] in before["tables"]["events"]["references"]
    assert before["tables"]["messages"]["erase"] == "deleted"
    assert "jane" not in json.dumps(before["tables"]).lower()  # references, never the data
    assert _counts(bob_before) == {"events": 1, "jobs": 4, "job_attempts": 2, "messages": 2}
    raw = _raw(db)
    assert [n for n in NEEDLES if n not in raw] == []

    # one tenant first: the clinic's copy stays
    assert (
        main(
            ["erase", "--email", JANE_EMAIL, "--phone", JANE_PHONE, "--tenant", "demo", "--db", url]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "erased email jane.doe@example.com and phone +14155550123 in tenant demo" in out
    for line in (
        "events: 2 redacted",
        "jobs: 5 redacted",
        "job_attempts: 2 redacted",
        "messages: 2 deleted",
        "opt_outs: 1 deleted",
        "function_calls: 1 redacted",
    ):
        assert line in out, out
    assert _event_body(db, "evt_clinic_copy") == booking_body

    # everywhere, while another connection holds the database open (as a server would): the
    # WAL and -shm files stay, and are read too
    holder = sqlite3.connect(db)
    try:
        holder.execute("SELECT count(*) FROM events").fetchone()
        assert (
            main(
                [
                    "erase",
                    "--phone",
                    "0014155550123",
                    "--email",
                    "JANE.DOE@example.COM",
                    "--db",
                    url,
                ]
            )
            == 0
        )
        assert "events: 1 redacted" in capsys.readouterr().out
        assert db.with_name(db.name + "-shm").exists()
        raw = _raw(db)
        assert [n for n in NEEDLES if n in raw] == []
        assert BOB_EMAIL.encode() in raw  # the other person is still there

        assert main(["erase", "--email", JANE_EMAIL, "--phone", JANE_PHONE, "--db", url]) == 0
        assert "nothing stored about email jane.doe@example.com" in capsys.readouterr().out
    finally:
        holder.close()

    with _app(seeded.config, db) as client:
        assert _people(client, jane)["total"] == 0
        assert _people(client, bob) == bob_before
        event = admin(client, f"/admin/api/events/{seeded.events['booking']}")
        assert json.loads(event["body"]) == {"erased": True}
        assert event["status"] == "dispatched"  # the audit trail stays
        reminder = [j for j in event["jobs"] if j["action"] == "schedule-reminder"]
        assert [j["status"] for j in reminder] == ["cancelled"]  # nothing left to remind with
        # Cal.com delivering the booking again is still a duplicate: nothing runs twice
        again = _post(client, seeded.booking).json()
        assert (again["status"], again["event_id"]) == ("duplicate", seeded.events["booking"])
        replay = client.post(
            f"/admin/api/events/{seeded.events['booking']}/replay",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert replay.status_code == 200
        deadline = time.monotonic() + 10
        while (replayed := admin(client, f"/admin/api/events/{seeded.events['booking']}"))[
            "status"
        ] == "pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # a replay of the erased event dispatches nothing: there is nothing left to map
        assert (replayed["status"], replayed["error"]) == ("ignored", ERASED_EVENT)
        assert len(replayed["jobs"]) == 4  # the first dispatch's, none added


def test_erase_needs_an_email_or_a_phone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    assert main(["erase", "--db", url]) == 2
    assert capsys.readouterr().err.strip() == (
        "gateway erase: name the person by email, phone or both"
    )
    assert main(["erase", "--phone", "call me", "--db", url]) == 2
    assert "is not a phone number" in capsys.readouterr().err
    assert main(["erase", "--email", "jane", "--db", url]) == 2
    assert "'jane' is not an email address" in capsys.readouterr().err


def test_dry_run_lists_and_changes_nothing(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{seeded.db}"
    assert main(["erase", "--email", JANE_EMAIL, "--dry-run", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "messages: 1 to be deleted" in out  # the email (the SMS went to her number)
    assert seeded.events["booking"] in out
    assert main(["erase", "--email", JANE_EMAIL, "--dry-run", "--db", url]) == 0
    assert capsys.readouterr().out == out


def test_the_people_api_needs_the_token_and_a_person(tmp_path: Path) -> None:
    config = load_config(REPO / "integrations.d", SECRETS)
    with _app(config, tmp_path / "gateway.db") as client:
        assert client.get("/admin/api/people?email=jane.doe@example.com").status_code == 401
        bad = client.get(
            "/admin/api/people?tenant=demo", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert bad.status_code == 400
        assert "name the person" in bad.json()["error"]["message"]
        other = _people(client, "phone=%2B14155550123&tenant=elsewhere")
        assert other["total"] == 0 and other["tenant"] == "elsewhere"


def test_a_reader_keeping_the_wal_busy_is_reported_and_a_second_run_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "gateway.db"
    _clinic_event(db, b'{"email": "jane.doe@example.com"}')
    url = f"sqlite:///{db}"
    reader = sqlite3.connect(db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()  # holds its snapshot
        assert main(["erase", "--email", JANE_EMAIL, "--db", url]) == 1
        captured = capsys.readouterr()
        assert "events: 1 redacted" in captured.out  # erased all the same
        assert "gateway erase: the SQLite WAL could not be emptied" in captured.err
        reader.execute("COMMIT")
        assert main(["erase", "--email", JANE_EMAIL, "--db", url]) == 0
        assert "nothing stored about" in capsys.readouterr().out
        assert b"jane.doe@example.com" not in _raw(db)
    finally:
        reader.close()


def test_erase_on_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    async def seed(url: str) -> None:
        store = open_store(url)
        await store.open()
        try:
            body = b'{"attendee": {"email": "JANE.DOE@example.com", "phone": "+1 415 555 0123"}}'
            await store.insert_events(
                [NewEvent("evt_pg", "calcom", "demo", "k-pg", None, "x", time.time(), "{}", body)]
            )
            await store.set_opt_out("demo", "sms", "+14155550123", "replied STOP", time.time())
        finally:
            await store.close()

    with fresh_schema() as url:
        asyncio.run(seed(url))
        assert main(["erase", "--email", JANE_EMAIL, "--phone", JANE_PHONE, "--db", url]) == 0
        out = capsys.readouterr().out
        assert "events: 1 redacted" in out and "opt_outs: 1 deleted" in out
        assert "run VACUUM (FULL) events, opt_outs" in out
        assert main(["erase", "--email", JANE_EMAIL, "--phone", JANE_PHONE, "--db", url]) == 0
        assert "nothing stored about" in capsys.readouterr().out

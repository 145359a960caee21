"""The admin web UI, in-process: login and session cookie, CSRF, CSP, escaping, and each page
acting through the store (the browser tests in tests/web/test_admin_browser.py drive the
same pages in Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.fernet import Fernet
from starlette.testclient import TestClient

from tests.helpers.app import ADMIN_TOKEN, AppFactory, admin
from tests.helpers.integrations import EVENT, TOKEN_VERIFY, acme, section
from tests.helpers.seed import DOWN, seed
from tests.helpers.ui import csrf_of, log_in

ACME = acme(section("webhook", TOKEN_VERIFY + EVENT))
KEY = Fernet.generate_key().decode()
ENV = {"TOKEN": "t0ken", "GATEWAY_SECRET_KEY": KEY}


def seeded_client(make_client: AppFactory, tmp_path: Path, **kwargs: int) -> TestClient:
    seed(tmp_path / "gateway.db", integration="acme", **kwargs)
    return make_client({"acme.yaml": ACME}, ENV)


def test_pages_need_a_session_and_login_sets_a_strict_httponly_cookie(
    make_client: AppFactory,
) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    first = client.get("/admin/events?status=failed", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/admin/login?next=%2Fadmin%2Fevents%3Fstatus%3Dfailed"
    form = client.get("/admin/login")
    assert "default-src 'none'" in form.headers["content-security-policy"]
    assert '<label for="token">' in form.text
    wrong = client.post(
        "/admin/login", data={"csrf": csrf_of(form.text), "token": "nope", "next": "/admin/"}
    )
    assert wrong.status_code == 401 and "not the admin token" in wrong.text
    no_csrf = client.post("/admin/login", data={"token": ADMIN_TOKEN})
    assert no_csrf.status_code == 403
    form = client.get("/admin/login")
    ok = client.post(
        "/admin/login",
        data={"csrf": csrf_of(form.text), "token": ADMIN_TOKEN, "next": "https://evil.test/"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/admin/"  # no open redirect
    cookie = next(c for c in ok.headers.get_list("set-cookie") if c.startswith("gateway_admin="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin/" in cookie
    assert ADMIN_TOKEN not in cookie
    page = client.get("/admin/")
    assert page.status_code == 200 and "<h1>Overview</h1>" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_forged_or_tampered_session_is_refused(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    log_in(client)
    value = client.cookies["gateway_admin"]
    expires, nonce, mac = value.split(".")
    client.cookies.clear()
    client.cookies.set("gateway_admin", f"{int(expires) + 999}.{nonce}.{mac}", path="/admin/")
    assert client.get("/admin/", follow_redirects=False).status_code == 303


def test_every_post_needs_the_session_s_csrf_token(make_client: AppFactory, tmp_path: Path) -> None:
    client = seeded_client(make_client, tmp_path)
    csrf = log_in(client)
    refused = client.post("/admin/events/evt_ui_000/replay", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert client.get("/admin/events/evt_ui_000").text.count("<dd>0</dd>") == 1  # no replay
    done = client.post("/admin/events/evt_ui_000/replay", data={"csrf": csrf})
    assert done.status_code == 200 and "The event is being replayed." in done.text
    assert "<dt>Replays</dt><dd>1</dd>" in done.text.replace("\n  ", "")


def test_events_are_found_by_provider_id_and_by_body_text_escaped(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = seeded_client(make_client, tmp_path)
    log_in(client)
    by_id = client.get("/admin/events?q=pi_ui_003").text
    assert "pi_ui_003" in by_id and "pi_ui_001" not in by_id
    by_text = client.get("/admin/events?q=order 2 ").text
    assert "pi_ui_002" in by_text and "pi_ui_004" not in by_text
    by_status = client.get("/admin/events?status=pending").text
    assert "No event matches." in by_status
    bad = client.get("/admin/events?since=yesterday")
    assert "since must be an ISO 8601 time" in bad.text
    detail = client.get("/admin/events/evt_ui_002").text
    assert "&lt;b&gt;bold&lt;/b&gt;" in detail and "<b>bold</b>" not in detail
    assert "&#34;amount&#34;: 1202" in detail or "&quot;amount&quot;: 1202" in detail


def test_bulk_retry_shows_the_count_and_retries_after_confirmation(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = seeded_client(make_client, tmp_path, dead=4)
    csrf = log_in(client)
    confirm = client.get("/admin/jobs/retry?integration=acme")
    assert "<strong>4</strong> dead job(s) match: integration = acme." in confirm.text
    assert client.get("/admin/jobs?status=dead").text.count(">dead</span>") == 4
    done = client.post(
        "/admin/jobs/retry",
        data={"csrf": csrf_of(confirm.text), "integration": "acme", "status": "dead"},
    )
    assert "4 dead job(s) queued again." in done.text
    assert client.get("/admin/jobs?status=dead").text.count(">dead</span>") == 0
    assert csrf == csrf_of(confirm.text)
    again = client.get("/admin/jobs/retry?integration=acme")
    assert "<strong>0</strong> dead job(s)" in again.text


def test_one_dead_job_is_retried(make_client: AppFactory, tmp_path: Path) -> None:
    client = seeded_client(make_client, tmp_path, dead=2)
    csrf = log_in(client)
    [job_id, *_] = [j for j in ("job_evt_ui_000_0", "job_evt_ui_001_1")]
    done = client.post(f"/admin/jobs/{job_id}/retry", data={"csrf": csrf})
    assert "The job is queued again." in done.text
    conflict = client.post(f"/admin/jobs/{job_id}/retry", data={"csrf": csrf})
    assert conflict.status_code == 409


def test_a_credential_is_set_and_deleted_and_its_value_never_shown(
    make_client: AppFactory,
) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    csrf = log_in(client)
    value = "sk_live_never_shown_123"
    done = client.post(
        "/admin/credentials",
        data={
            "csrf": csrf,
            "tenant": "clinic",
            "integration": "acme",
            "name": "ACME_KEY",
            "value": value,
        },
    )
    assert done.status_code == 200 and "The credential is stored (encrypted)." in done.text
    assert value not in done.text
    assert "<td>clinic</td><td>acme</td><td>ACME_KEY</td>" in done.text
    for path in ("/admin/", "/admin/tenants", "/admin/config", "/admin/syncs", "/admin/events"):
        assert value not in client.get(path).text
    missing = client.post(
        "/admin/credentials",
        data={"csrf": csrf, "tenant": "clinic", "integration": "nope", "name": "X", "value": "v"},
    )
    assert missing.status_code == 400 and "there is no integration &#39;nope&#39;" in missing.text
    deleted = client.post(
        "/admin/credentials/delete",
        data={"csrf": csrf, "tenant": "clinic", "integration": "acme", "name": "ACME_KEY"},
    )
    assert "The credential is deleted." in deleted.text
    assert "No stored credential." in deleted.text


def test_the_overview_lists_integrations_with_a_sparkline(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = seeded_client(make_client, tmp_path, events=5, dead=2)
    log_in(client)
    page = client.get("/admin/").text
    assert 'data-integration="acme"' in page
    assert '<svg class="spark" role="img"' in page
    assert 'aria-label="5 events and 2 failures in the last hour' in page


def test_syncs_and_configuration_pages(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    csrf = log_in(client)
    syncs = client.get("/admin/syncs")
    assert syncs.status_code == 200 and "No sync is declared." in syncs.text
    unknown = client.post("/admin/syncs/acme/nope/run", data={"csrf": csrf, "full": "true"})
    assert unknown.status_code == 404 and "nope" in unknown.text
    config = client.get("/admin/config").text
    assert "acme.yaml" in config and "integration acme" in config


def test_logout_ends_the_session(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    csrf = log_in(client)
    out = client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert client.get("/admin/", follow_redirects=False).status_code == 303


def test_without_an_admin_token_the_ui_is_off(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, {**ENV, "GATEWAY_ADMIN_TOKEN": ""})
    response = client.get("/admin/")
    assert response.status_code == 404 and "GATEWAY_ADMIN_TOKEN" in response.text


def test_the_json_api_finds_events_by_provider_id_and_body_text(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = seeded_client(make_client, tmp_path)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    by_id = client.get("/admin/api/events?provider_event_id=pi_ui_001", headers=auth).json()
    assert [e["id"] for e in by_id["events"]] == ["evt_ui_001"]
    by_text = client.get("/admin/api/events?q=order 4 ", headers=auth).json()
    assert [e["id"] for e in by_text["events"]] == ["evt_ui_004"]


def _attempt_rows(html: str, job_id: str) -> list[list[str]]:
    """The cells (tags stripped) of a job's attempt table, row by row."""
    table = re.search(rf'<table class="attempts" id="attempts-{job_id}">(.*?)</table>', html, re.S)
    assert table is not None, f"no attempt table for {job_id}"
    body = table.group(1).split("<tbody>", 1)[1]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_the_event_and_job_pages_show_each_attempt_oldest_first(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = seeded_client(make_client, tmp_path, events=2, dead=2)
    log_in(client)
    event = client.get("/admin/events/evt_ui_001").text
    rows = _attempt_rows(event, "job_evt_ui_001_1")
    busy = "{&#34;error&#34;: &#34;busy, try later&#34;}"
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert [row[2:5] for row in rows] == [
        ["retry", "503", "120 ms"],
        ["retry", "503", "120 ms"],
        ["dead", "500", "80.5 ms"],
    ]
    assert rows[0][5] == f"HTTP 503 from the provider{busy}"
    assert '<th scope="col">HTTP status</th>' in event
    assert "job_evt_ui_000_0" not in event  # another event's job
    assert 'href="/admin/jobs/job_evt_ui_001_1"' in event
    assert 'href="/admin/jobs/job_evt_ui_001_1"' in client.get("/admin/jobs").text

    job = client.get("/admin/jobs/job_evt_ui_001_1")
    assert job.status_code == 200
    assert _attempt_rows(job.text, "job_evt_ui_001_1") == rows
    assert "Retry this job" in job.text and 'href="/admin/events/evt_ui_001"' in job.text
    missing = client.get("/admin/jobs/job_nope")
    assert missing.status_code == 404 and "There is no such job." in missing.text


def test_the_json_api_lists_a_job_s_attempts_oldest_first(
    make_client: AppFactory, tmp_path: Path
) -> None:
    seeded = seed(tmp_path / "gateway.db", integration="acme", events=1, dead=1)
    client = make_client({"acme.yaml": ACME}, ENV)
    [job_id] = seeded.dead_job_ids
    job = admin(client, f"/admin/api/jobs/{job_id}")
    history = job["attempt_history"]
    assert job["attempts"] == 3  # the count of the attempt budget stays a number
    assert [(a["attempt"], a["outcome"], a["http_status"]) for a in history] == [
        (1, "retry", 503),
        (2, "retry", 503),
        (3, "dead", 500),
    ]
    assert history[0]["started_at"] < history[1]["started_at"] < history[2]["started_at"]
    assert (history[2]["answer"], history[2]["duration_ms"]) == (DOWN, 80.5)
    assert history[0]["error"] == "HTTP 503 from the provider"
    [under_event] = admin(client, f"/admin/api/events/{seeded.event_ids[0]}")["jobs"]
    assert under_event["attempt_history"] == history

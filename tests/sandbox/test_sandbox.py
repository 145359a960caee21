"""The provider sandbox: recording, rule matching, templated answers, fault modes, control API.

Fault modes are checked against a real uvicorn server on loopback (``running_sandbox``), the
way the gateway's tests will meet them.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.cli.cmd_sandbox import register as add_sandbox_command
from gateway.sandbox import (
    ResponseRule,
    RuleError,
    SandboxHandle,
    create_sandbox_app,
    load_rules,
    parse_rules,
    run_sandbox,
    running_sandbox,
)
from gateway.sandbox.provider import DroppedConnection
from tests.helpers import REPO

SHIPPED = REPO / "sandbox" / "responses.yaml"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxHandle]:
    with running_sandbox() as handle:
        yield handle


@pytest.fixture
def sandbox(server: SandboxHandle) -> Iterator[SandboxHandle]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def client(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=5.0) as http:
        yield http


# ------------------------------------------------------------------------------ recording


def test_records_every_request(sandbox: SandboxHandle, client: httpx.Client) -> None:
    before = time.time()
    client.post(
        "/twilio/2010-04-01/Accounts/AC1/Messages.json?x=1&x=2",
        data={"To": "+14155550123", "Body": "Hello"},
        auth=("AC1", "token"),
        headers={"X-Custom": "yes"},
    )
    client.post("/calcom/v2/bookings", json={"start": "2025-05-01T10:00:00Z"})
    client.get("/_sandbox/health")  # the control API is not recorded

    sms, booking = sandbox.requests()
    assert sms.method == "POST"
    assert sms.path == "/twilio/2010-04-01/Accounts/AC1/Messages.json"
    assert sms.query == [("x", "1"), ("x", "2")]
    assert sms.query_params == {"x": "1"}
    assert sms.headers["authorization"].startswith("Basic ")
    assert sms.headers["x-custom"] == "yes"
    assert sms.body == "To=%2B14155550123&Body=Hello"
    assert sms.form == {"To": "+14155550123", "Body": "Hello"}
    assert sms.json is None
    assert booking.json == {"start": "2025-05-01T10:00:00Z"}
    assert booking.form is None
    assert booking.seq == sms.seq + 1
    assert before <= sms.received_at <= booking.received_at <= time.time()
    assert (sms.rule, sms.status) == (None, 200)
    assert [r.path for r in sandbox.requests(path_prefix="/calcom")] == ["/calcom/v2/bookings"]
    assert sandbox.requests(path_prefix="/cal") == []  # a prefix is whole segments
    assert len(sandbox.requests(method="post")) == 2


def test_repeated_form_fields_become_a_list(sandbox: SandboxHandle, client: httpx.Client) -> None:
    client.post("/twilio/x", content="MediaUrl=a&MediaUrl=b&To=1", headers=_FORM)
    [request] = sandbox.requests()
    assert request.form == {"MediaUrl": ["a", "b"], "To": "1"}


_FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_unmatched_requests_get_the_default(client: httpx.Client) -> None:
    response = client.get("/anything/at/all")
    assert (response.status_code, response.json()) == (200, {})


def test_default_status_is_configurable() -> None:
    with TestClient(create_sandbox_app(default_status=404)) as test:
        response = test.post("/stripe/v1/refunds")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "no_rule",
        "message": "no sandbox rule for POST /stripe/v1/refunds",
    }


# ------------------------------------------------------------------------------- matching


def test_first_matching_rule_answers_and_times_fall_through(
    sandbox: SandboxHandle, client: httpx.Client
) -> None:
    sandbox.add_rules(
        [
            {"method": "POST", "path": "/calcom/v2/bookings", "status": 500, "times": 2},
            {"method": "POST", "path": "/calcom/v2/bookings", "status": 201, "json": {"ok": 1}},
            {"path": "/calcom/v2/bookings", "status": 418},
        ]
    )
    statuses = [client.post("/calcom/v2/bookings").status_code for _ in range(4)]
    assert statuses == [500, 500, 201, 201]
    assert client.get("/calcom/v2/bookings").status_code == 418  # method: any
    assert [r.status for r in sandbox.requests()] == [500, 500, 201, 201, 418]
    assert [left for _, left in sandbox.sandbox.rules()] == [0, None, None]


def test_added_rules_go_first_and_reset_restores_the_loaded_ones() -> None:
    loaded = [ResponseRule(path="/segment/v1/track", json={"success": True}, times=1)]
    with running_sandbox(loaded) as sandbox, httpx.Client(base_url=sandbox.url) as client:
        assert client.post("/segment/v1/track").json() == {"success": True}
        assert client.post("/segment/v1/track").json() == {}  # its one time is used up
        sandbox.add_rules([{"path": "/segment/v1/track", "status": 503}])
        assert client.post("/segment/v1/track").status_code == 503
        sandbox.add_rules([{"path": "/segment/v1/track", "status": 400}], first=False)
        assert client.post("/segment/v1/track").status_code == 503
        sandbox.reset()
        assert client.post("/segment/v1/track").json() == {"success": True}
        assert sandbox.requests()[-1].rule == "* /segment/v1/track"


def test_globs_and_regexes() -> None:
    rules = parse_rules(
        [
            {
                "path": "/twilio/2010-04-01/Accounts/*/Messages.json",
                "text": "one:{{ wildcards[0] }}",
            },
            {"path": "/files/**", "text": "any:{{ wildcards[0] }}"},
            {
                "path_regex": r"/calcom/v2/bookings/(?P<uid>[^/]+)/cancel",
                "text": "{{ groups.uid }}",
            },
        ]
    )
    with TestClient(create_sandbox_app(rules)) as test:
        assert test.post("/twilio/2010-04-01/Accounts/AC9/Messages.json").text == "one:AC9"
        # `*` stays inside one segment
        assert test.post("/twilio/2010-04-01/Accounts/AC9/x/Messages.json").json() == {}
        assert test.get("/files/a/b/c.txt").text == "any:a/b/c.txt"
        assert test.post("/calcom/v2/bookings/bk_1/cancel").text == "bk_1"
        assert test.post("/calcom/v2/bookings/bk_1/cancel/x").json() == {}  # regex: full match


def test_conditions_on_body_json_form_query_and_headers(
    sandbox: SandboxHandle, client: httpx.Client
) -> None:
    sandbox.add_rules(
        [
            {"path": "/a", "when": {"body_contains": "urgent"}, "text": "body"},
            {"path": "/a", "when": {"json": {"attendee.email": "ada@example.com"}}, "text": "json"},
            {"path": "/a", "when": {"json": {"items.1": 2}}, "text": "index"},
            {"path": "/a", "when": {"form": {"To": "+1555"}}, "text": "form"},
            {"path": "/a", "when": {"query": {"status": "upcoming"}}, "text": "query"},
            {"path": "/a", "when": {"headers": {"Cal-Api-Version": "2024-08-13"}}, "text": "hdr"},
        ]
    )
    assert client.post("/a", content="this is urgent").text == "body"
    assert client.post("/a", json={"attendee": {"email": "ada@example.com"}}).text == "json"
    assert client.post("/a", json={"attendee": {"email": "bob@example.com"}}).json() == {}
    assert client.post("/a", json={"items": [1, 2]}).text == "index"
    assert client.post("/a", data={"To": "+1555"}).text == "form"
    assert client.get("/a", params={"status": "upcoming"}).text == "query"
    assert client.get("/a", headers={"cal-api-version": "2024-08-13"}).text == "hdr"
    assert client.get("/a").json() == {}


# ---------------------------------------------------------------------------- templating


def test_templated_answers_echo_the_request(sandbox: SandboxHandle, client: httpx.Client) -> None:
    sandbox.add_rules(
        [
            {
                "method": "POST",
                "path": "/calcom/v2/bookings",
                "status": 201,
                "headers": {"X-Request-Seq": "{{ seq }}"},
                "json": {
                    "status": "success",
                    "data": {
                        "id": "{{ seq }}",
                        "uid": "{{ uuid }}",
                        "start": "{{ request.json.start }}",
                        "end": "{{ request.json.start | utc_iso(request.json.lengthInMinutes) }}",
                        "attendees": ["{{ request.json.attendee }}"],
                        "title": "Call with {{ request.json.attendee.name }}",
                        "missing": "{{ request.json.nothing.here }}",
                        "via": "{{ request.headers['user-agent'] }}",
                    },
                },
            }
        ]
    )
    attendee = {"name": "Ada", "timeZone": "Europe/Berlin"}
    body = {"start": "2025-05-01T10:00:00Z", "lengthInMinutes": 45, "attendee": attendee}
    first = client.post("/calcom/v2/bookings", json=body)
    second = client.post("/calcom/v2/bookings", json=body)

    data = first.json()["data"]
    seq = sandbox.requests()[0].seq
    assert first.status_code == 201
    assert first.headers["x-request-seq"] == str(seq)
    assert data["id"] == seq  # a whole-value expression keeps its type
    assert data["start"] == "2025-05-01T10:00:00Z"
    assert data["end"] == "2025-05-01T10:45:00.000Z"
    assert data["attendees"] == [attendee]
    assert data["title"] == "Call with Ada"
    assert data["missing"] is None
    assert data["via"].startswith("python-httpx/")
    assert len(data["uid"]) == 36
    assert second.json()["data"]["uid"] != data["uid"]
    assert second.json()["data"]["id"] == seq + 1


def test_template_errors_answer_500_and_say_which_rule(
    sandbox: SandboxHandle, client: httpx.Client
) -> None:
    sandbox.add_rules([{"name": "bad-date", "path": "/x", "json": {"at": "{{ 'no' | utc_iso }}"}}])
    response = client.get("/x")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "sandbox_template_error"
    assert "bad-date" in response.json()["error"]["message"]
    assert sandbox.requests()[0].status == 500


def test_templates_are_sandboxed() -> None:
    rules = [
        ResponseRule(path="/peek", text="{{ request.__class__.__mro__ }}"),
        ResponseRule(path="/mutate", text="{{ request.json.clear() }}"),
    ]
    with TestClient(create_sandbox_app(rules)) as test:
        assert test.get("/peek").text == ""  # unsafe attributes read as missing
        response = test.post("/mutate", json={"a": 1})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "sandbox_template_error"


# --------------------------------------------------------------------------------- faults


def test_delay_slows_the_answer(sandbox: SandboxHandle, client: httpx.Client) -> None:
    sandbox.add_rules([{"path": "/slow", "delay": "200ms", "json": {"ok": True}}])
    started = time.monotonic()
    response = client.get("/slow")
    assert time.monotonic() - started >= 0.2
    assert response.json() == {"ok": True}
    with pytest.raises(httpx.ReadTimeout):
        client.get("/slow", timeout=0.05)


def test_429_with_retry_after(sandbox: SandboxHandle, client: httpx.Client) -> None:
    sandbox.add_rules(
        [
            {
                "method": "POST",
                "path": "/twilio/2010-04-01/Accounts/*/Messages.json",
                "status": 429,
                "headers": {"Retry-After": 2},
                "json": {"code": 20429, "message": "Too Many Requests", "status": 429},
                "times": 1,
            },
            {"path": "/twilio/**", "status": 201, "json": {"sid": "SM1"}},
        ]
    )
    path = "/twilio/2010-04-01/Accounts/AC1/Messages.json"
    limited = client.post(path, data={"To": "+1"})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json()["code"] == 20429
    assert client.post(path, data={"To": "+1"}).status_code == 201


def test_500s_then_success(sandbox: SandboxHandle, client: httpx.Client) -> None:
    sandbox.add_rules(
        [
            {"path": "/calcom/v2/bookings", "status": 500, "times": 2, "json": {"error": "down"}},
            {"path": "/calcom/v2/bookings", "status": 201, "json": {"status": "success"}},
        ]
    )
    assert [client.post("/calcom/v2/bookings").status_code for _ in range(3)] == [500, 500, 201]


def test_drop_closes_the_connection_without_an_answer(
    sandbox: SandboxHandle, client: httpx.Client
) -> None:
    sandbox.add_rules([{"path": "/calcom/v2/bookings", "fault": "drop", "times": 1}])
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)) as caught:
        client.post("/calcom/v2/bookings", json={"start": "2025-05-01T10:00:00Z"})
    assert "without sending a response" in str(caught.value)
    [dropped] = sandbox.requests()
    assert (dropped.fault, dropped.status) == ("drop", None)
    assert dropped.json == {"start": "2025-05-01T10:00:00Z"}
    # The server lives on, and the same client reconnects.
    assert client.post("/calcom/v2/bookings").status_code == 200


def test_truncate_cuts_the_body_off(sandbox: SandboxHandle, client: httpx.Client) -> None:
    sandbox.add_rules([{"path": "/cut", "fault": "truncate", "json": {"data": "x" * 200}}])
    with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|complete message body"):
        client.get("/cut")
    assert client.get("/_sandbox/health").status_code == 200


def test_drop_without_uvicorn_raises_to_the_test_client() -> None:
    rule = ResponseRule(path="/x", fault="drop")
    with TestClient(create_sandbox_app([rule])) as test, pytest.raises(DroppedConnection):
        test.get("/x")


# ---------------------------------------------------------------------------- control API


def test_control_api(sandbox: SandboxHandle, client: httpx.Client) -> None:
    assert client.get("/_sandbox/health").json() == {"status": "ok", "rules": 0, "requests": 0}

    added = client.post(
        "/_sandbox/rules",
        json=[{"path": "/twilio/x", "status": 201, "times": 1}, {"path": "/sendgrid/x"}],
    )
    assert (added.status_code, added.json()) == (201, {"added": 2})
    one = client.post("/_sandbox/rules", json={"path": "/stripe/x", "status": 402})
    assert one.json() == {"added": 1}
    rules = client.get("/_sandbox/rules").json()["rules"]
    assert [(r["path"], r["remaining"]) for r in rules] == [
        ("/stripe/x", None),
        ("/twilio/x", 1),
        ("/sendgrid/x", None),
    ]

    assert client.post("/twilio/x").status_code == 201
    assert client.post("/stripe/x").status_code == 402
    listed = client.get("/_sandbox/requests", params={"path_prefix": "/twilio"}).json()
    assert [(r["method"], r["path"], r["status"]) for r in listed["requests"]] == [
        ("POST", "/twilio/x", 201)
    ]
    everything = client.get("/_sandbox/requests").json()["requests"]
    assert len(everything) == 2
    after = client.get("/_sandbox/requests", params={"after": everything[0]["seq"]}).json()
    assert [r["path"] for r in after["requests"]] == ["/stripe/x"]

    assert client.delete("/_sandbox/requests").json() == {"cleared": 2}
    assert client.get("/_sandbox/requests").json() == {"requests": []}
    assert client.delete("/_sandbox/rules").json() == {"rules": 0}
    assert client.post("/stripe/x").status_code == 200
    client.post("/_sandbox/rules", json=[{"path": "/y", "status": 204}])
    assert client.post("/_sandbox/reset").json() == {"rules": 0, "requests": 0}
    assert client.get("/y").status_code == 200


def test_control_api_rejects_bad_rules(client: httpx.Client) -> None:
    response = client.post("/_sandbox/rules", json=[{"path": "/a"}, {"path": "/b", "stauts": 1}])
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "bad_rule",
            "message": "request body: rules[1]: unknown key 'stauts' (did you mean 'status'?)",
        }
    }
    assert client.post("/_sandbox/rules", content=b"{nope").status_code == 400
    assert client.get("/_sandbox/rules").json() == {"rules": []}
    assert client.get("/_sandbox/nothing").json()["error"]["code"] == "not_found"


def test_wait_for_requests(sandbox: SandboxHandle) -> None:
    def later() -> None:
        time.sleep(0.1)
        with httpx.Client() as http:
            http.post(sandbox.url_for("sendgrid") + "/v3/mail/send", json={})

    thread = threading.Thread(target=later)
    thread.start()
    [mail] = sandbox.wait_for_requests(1, path_prefix="/sendgrid", timeout=5)
    thread.join()
    assert mail.path == "/sendgrid/v3/mail/send"
    with pytest.raises(TimeoutError, match="expected 1 request"):
        sandbox.wait_for_requests(1, path_prefix="/twilio", timeout=0.1)


# ------------------------------------------------------------------------- rules & files


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"path": "/a", "stauts": 200}, "unknown key 'stauts' (did you mean 'status'?)"),
        ({"status": 200}, "give exactly one of 'path'"),
        ({"path": "/a", "path_regex": "/a"}, "give exactly one of 'path'"),
        ({"path": "a"}, "path: expected a path starting with '/'"),
        ({"path_regex": "("}, "path_regex: '(' is not a regex"),
        ({"path": "/a", "method": "FETCH"}, "method: expected one of GET"),
        ({"path": "/a", "status": "ok"}, "status: expected an HTTP status"),
        ({"path": "/a", "status": True}, "status: expected an HTTP status"),
        ({"path": "/a", "times": 0}, "times: expected a whole number of at least 1"),
        ({"path": "/a", "fault": "explode"}, "fault: expected one of drop, truncate"),
        ({"path": "/a", "delay": "soon"}, "delay: expected seconds or a duration"),
        ({"path": "/a", "json": {}, "text": "x"}, "at most one of 'json' and 'text'"),
        ({"path": "/a", "json": {"x": "{{ oops"}}, "template error"),
        ({"path": "/a", "when": {"jsn": {}}}, "when: unknown key 'jsn' (did you mean 'json'?)"),
        ({"path": "/a", "when": {"body_contains": 3}}, "when.body_contains: expected a string"),
        ("/a", "expected a mapping (a rule), got str"),
    ],
)
def test_bad_rules_are_explained(rule: object, message: str) -> None:
    with pytest.raises(RuleError, match=r"^rules: rules\[0\]: ") as caught:
        parse_rules([rule])
    assert message in str(caught.value)


def test_yaml_errors_name_the_file_line_and_index(tmp_path: Path) -> None:
    file = tmp_path / "responses.yaml"
    file.write_text(
        "rules:\n  - path: /ok\n    status: 201\n  - path: /bad\n    times: 0\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleError) as caught:
        load_rules(file)
    assert str(caught.value) == (
        f"{file}:4: rules[1]: times: expected a whole number of at least 1, got 0"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path: /a\n", "expected a list of rules (or a mapping with a 'rules' list), got dict"),
        ("- path: /a\n  - [\n", "not valid YAML"),
        ("- {path: /a}\n- 3\n", "rules[1]: expected a mapping (a rule), got int"),
    ],
)
def test_yaml_file_shape_errors(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "rules.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match=str(file).replace("\\", "\\\\")) as caught:
        load_rules(file)
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")
    assert load_rules(_write(tmp_path / "empty.yaml", "")) == []


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_rule_to_dict_round_trips() -> None:
    rule = ResponseRule(path="/a", method="post", status=429, headers={"Retry-After": "2"})
    assert rule.to_dict() == {
        "path": "/a",
        "method": "POST",
        "status": 429,
        "headers": {"Retry-After": "2"},
    }
    assert ResponseRule.from_dict(rule.to_dict()).to_dict() == rule.to_dict()


# --------------------------------------------------------------------- the shipped answers


def test_the_shipped_responses_load() -> None:
    rules = load_rules(SHIPPED)
    prefixes = {str(r.path).split("/")[1] for r in rules}
    assert {
        "twilio",
        "sendgrid",
        "calcom",
        "google_calendar",
        "google_oauth",
        "outlook",
        "microsoft_login",
        "stripe",
        "segment",
        "whatsapp",
        "retell",
    } <= prefixes
    assert len({r.name for r in rules}) == len(rules)  # every rule is named, once


def test_the_shipped_responses_answer_like_the_providers() -> None:
    with running_sandbox(SHIPPED) as sandbox, httpx.Client(base_url=sandbox.url) as client:
        sms = client.post(
            "/twilio/2010-04-01/Accounts/AC123/Messages.json",
            data={"To": "+14155550123", "From": "+14155550100", "Body": "See you at 10:00"},
        )
        assert sms.status_code == 201
        assert sms.json()["sid"].startswith("SM")
        assert sms.json()["status"] == "queued"
        assert (sms.json()["to"], sms.json()["body"]) == ("+14155550123", "See you at 10:00")

        mail = client.post("/sendgrid/v3/mail/send", json={"personalizations": []})
        assert (mail.status_code, mail.content) == (202, b"")
        assert mail.headers["x-message-id"]

        booking = client.post(
            "/calcom/v2/bookings",
            json={
                "start": "2025-05-01T10:00:00Z",
                "eventTypeId": 7,
                "attendee": {"name": "Ada", "email": "ada@example.com", "timeZone": "UTC"},
            },
        )
        assert booking.status_code == 201
        data = booking.json()["data"]
        assert booking.json()["status"] == "success"
        assert (data["status"], data["start"], data["end"]) == (
            "accepted",
            "2025-05-01T10:00:00.000Z",
            "2025-05-01T10:30:00.000Z",
        )
        assert isinstance(data["id"], int) and data["uid"]
        assert data["attendees"][0]["email"] == "ada@example.com"
        listed = client.get("/calcom/v2/bookings", params={"take": 10}).json()
        assert listed["data"] == [] and listed["pagination"]["itemsPerPage"] == 10

        event = client.post(
            "/google_calendar/calendars/primary/events",
            json={"summary": "Consultation", "start": {"dateTime": "2025-05-01T10:00:00Z"}},
        ).json()
        assert (event["status"], event["summary"]) == ("confirmed", "Consultation")
        assert event["htmlLink"].startswith("https://") and event["id"]

        assert client.post("/segment/v1/track", json={"event": "x"}).json() == {"success": True}
        wa = client.post("/whatsapp/1234/messages", json={"to": "+4915112345678"}).json()
        assert wa["messages"][0]["id"].startswith("wamid.")
        assert wa["contacts"] == [{"input": "+4915112345678", "wa_id": "4915112345678"}]
        assert client.post("/outlook/users/u1/events", json={"subject": "s"}).status_code == 201
        refund = client.post("/stripe/v1/refunds", data={"payment_intent": "pi_1"}).json()
        assert (refund["object"], refund["status"]) == ("refund", "succeeded")
        assert refund["id"].startswith("re_")
        for token_path in ("/google_oauth/token", "/microsoft_login/common/oauth2/v2.0/token"):
            token = client.post(token_path, data={"grant_type": "client_credentials"}).json()
            assert (token["token_type"], token["expires_in"]) == ("Bearer", 3600)
            assert token["access_token"]
        assert all(r.rule is not None for r in sandbox.requests())


# ------------------------------------------------------------------------------- running


def test_running_sandbox_binds_loopback_and_stops() -> None:
    with running_sandbox() as sandbox:
        assert sandbox.url.startswith("http://127.0.0.1:")
        assert sandbox.base_urls("twilio", "google_calendar") == {
            "TWILIO_BASE_URL": f"{sandbox.url}/twilio",
            "GOOGLE_CALENDAR_BASE_URL": f"{sandbox.url}/google_calendar",
        }
        url = sandbox.url
    with pytest.raises(httpx.ConnectError), httpx.Client() as client:
        client.get(f"{url}/_sandbox/health")


def test_stopping_does_not_wait_for_slow_answers() -> None:
    with running_sandbox([{"path": "/slow", "delay": 30}]) as sandbox:
        results: list[int] = []

        def call() -> None:
            with httpx.Client(timeout=10) as client:
                results.append(client.get(f"{sandbox.url}/slow").status_code)

        thread = threading.Thread(target=call)
        thread.start()
        sandbox.wait_for_requests(1)
        started = time.monotonic()
    assert time.monotonic() - started < 5
    thread.join()
    assert results == [200]


def test_run_sandbox_refuses_other_than_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        run_sandbox("192.0.2.10", 9100)


def test_cli_command_arguments() -> None:
    parser = argparse.ArgumentParser(prog="gateway")
    add_sandbox_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sandbox", "--port", "9200", "--responses", "x.yaml"])
    assert (args.host, args.port, args.responses) == ("127.0.0.1", 9200, "x.yaml")
    assert args.default_status == 200
    assert callable(args.func)

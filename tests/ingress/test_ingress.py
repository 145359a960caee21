"""The webhook front door over HTTP: statuses, dedup, storage, batches, handshakes, tenants."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.replies import Reply, route_path
from tests.helpers.app import ADMIN_TOKEN, AppFactory, admin
from tests.helpers.integrations import acme, webhook
from tests.helpers.signatures import stripe_header

SECRET = "whsec_test"
ACME = acme(webhook(max_body="2KiB"))
BATCH = """\
kind: integration
name: batchy
webhook:
  verify: {scheme: token, secret: "${secret:BATCH_TOKEN}", header: X-Token}
  split: "{{ body }}"
  event: {id: "{{ body.sg_event_id }}", type: "{{ body.event }}"}
"""
HANDSHAKES = """\
kind: integration
name: shaky
webhook:
  format: empty
  verify: {scheme: token, secret: "${secret:SHAKY_TOKEN}", header: X-Goog-Channel-Token}
  handshakes:
    - name: meta
      method: GET
      query: {hub.mode: subscribe}
      token: {query: hub.verify_token, secret: "${secret:SHAKY_VERIFY}"}
      respond: {body: "{{ query['hub.challenge'] }}"}
    - name: graph
      method: POST
      query: {validationToken: true}
      respond: {body: "{{ query.validationToken }}"}
    - name: sync
      method: POST
      headers: {X-Goog-Resource-State: sync}
      verified: true
      respond: {status: 200}
  event: {id: "{{ headers['x-goog-message-number'] }}", type: "{{ headers['x-goog-resource-state'] }}"}
"""
TENANTS = """\
kind: tenant
name: clinic
integrations: [acme]
shared_secrets: true
---
kind: tenant
name: other
integrations: [batchy]
"""
ENV = {"ACME_SECRET": SECRET, "BATCH_TOKEN": "tok", "SHAKY_TOKEN": "chan", "SHAKY_VERIFY": "vt"}


def post_acme(client: Any, payload: dict[str, Any], path: str = "/webhooks/acme", **kw: Any) -> Any:
    body = json.dumps(payload).encode()
    headers = {"Acme-Signature": stripe_header(body, SECRET), "Content-Type": "application/json"}
    headers.update(kw.pop("headers", {}))
    return client.post(path, content=body, headers=headers, **kw)


def test_genuine_event_is_stored_then_repeat_is_duplicate(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    first = post_acme(client, {"id": "evt_1", "type": "thing.made"})
    assert first.status_code == 200
    assert first.json()["status"] == "accepted"
    event_id = first.json()["event_id"]
    again = post_acme(client, {"id": "evt_1", "type": "thing.made"})
    assert again.json() == {"status": "duplicate", "event_id": event_id}
    stored = admin(client, f"/admin/api/events/{event_id}")
    assert isinstance(stored, dict)
    assert stored["type"] == "thing.made"
    assert stored["provider_event_id"] == "evt_1"
    assert json.loads(stored["body"]) == {"id": "evt_1", "type": "thing.made"}
    listed = admin(client, "/admin/api/events?integration=acme")
    assert isinstance(listed, dict)
    assert [e["id"] for e in listed["events"]] == [event_id]


def test_forged_missing_and_garbage_signatures_are_401(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    body = b'{"id":"evt_2"}'
    good = stripe_header(body, SECRET)
    for headers in (
        {},
        {"Acme-Signature": "garbage"},
        {"Acme-Signature": stripe_header(body, "wrong")},
        {"Acme-Signature": good.replace("v1=", "v1=00")},
        {"Acme-Signature": stripe_header(body, SECRET, timestamp=1)},
    ):
        response = client.post("/webhooks/acme", content=body, headers=headers)
        assert response.status_code == 401, headers
        assert set(response.json()) == {"error"}
        assert response.json()["error"]["code"] == "invalid_signature"
    tampered = client.post("/webhooks/acme", content=body + b" ", headers={"Acme-Signature": good})
    assert tampered.status_code == 401
    assert admin(client, "/admin/api/events") == {"events": []}


def test_no_secret_configured_fails_closed(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, {})
    body = b'{"id":"evt_3"}'
    response = client.post(
        "/webhooks/acme", content=body, headers={"Acme-Signature": stripe_header(body, "")}
    )
    assert response.status_code == 401


def test_routing_statuses(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME, "t.yaml": TENANTS, "b.yaml": BATCH}, ENV)
    assert client.post("/webhooks/nope", content=b"{}").status_code == 404
    assert client.get("/webhooks/acme").status_code == 405
    assert post_acme(client, {"id": "a"}, "/webhooks/acme/unknown").status_code == 404
    assert post_acme(client, {"id": "a"}, "/webhooks/acme/other").status_code == 404
    assert post_acme(client, {"id": "a"}, "/webhooks/acme/clinic").status_code == 200
    assert client.get("/no/such/route").json()["error"]["code"] == "not_found"
    big = post_acme(client, {"id": "big", "pad": "x" * 3000})
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "payload_too_large"


def test_same_provider_id_for_two_tenants_is_two_events(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME, "t.yaml": TENANTS, "b.yaml": BATCH}, ENV)
    one = post_acme(client, {"id": "evt_same"})
    two = post_acme(client, {"id": "evt_same"}, "/webhooks/acme/clinic")
    assert one.json()["status"] == two.json()["status"] == "accepted"
    assert one.json()["event_id"] != two.json()["event_id"]


def test_invalid_json_after_valid_signature_is_400(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    body = b"{not json"
    response = client.post(
        "/webhooks/acme", content=body, headers={"Acme-Signature": stripe_header(body, SECRET)}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"


def test_event_without_id_is_deduplicated_by_its_bytes(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    first = post_acme(client, {"type": "no.id"})
    second = post_acme(client, {"type": "no.id"})
    assert first.json()["status"] == "accepted"
    assert second.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}
    stored = admin(client, f"/admin/api/events/{first.json()['event_id']}")
    assert isinstance(stored, dict)
    assert stored["provider_event_id"] is None


def test_batches_are_split_into_events_and_deduplicated_each(make_client: AppFactory) -> None:
    client = make_client({"b.yaml": BATCH}, ENV)
    items = [{"sg_event_id": "a", "event": "delivered"}, {"sg_event_id": "b", "event": "open"}]
    headers = {
        "X-Token": "tok",
        "Authorization": "Bearer should-not-be-stored",
        "X-Gateway-Sync": "forged",  # the gateway's own marker of sync changes
    }
    first = client.post("/webhooks/batchy", json=items, headers=headers)
    assert first.status_code == 200
    assert [e["status"] for e in first.json()["events"]] == ["accepted", "accepted"]
    again = client.post(
        "/webhooks/batchy", json=[items[1], {"sg_event_id": "c", "event": "x"}], headers=headers
    )
    assert [e["status"] for e in again.json()["events"]] == ["duplicate", "accepted"]
    assert again.json()["events"][0]["event_id"] == first.json()["events"][1]["event_id"]
    listed = admin(client, "/admin/api/events?type=open")
    assert isinstance(listed, dict)
    (only,) = listed["events"]
    stored = admin(client, f"/admin/api/events/{only['id']}")
    assert isinstance(stored, dict)
    assert json.loads(stored["body"]) == items[1]
    assert "authorization" not in stored["headers"]
    assert "x-token" not in stored["headers"]  # the token scheme's header is the secret itself
    assert "x-gateway-sync" not in stored["headers"]


def test_handshakes(make_client: AppFactory) -> None:
    client = make_client({"s.yaml": HANDSHAKES}, ENV)
    meta = client.get(
        "/webhooks/shaky",
        params={"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": "vt"},
    )
    assert (meta.status_code, meta.text) == (200, "42")
    assert meta.headers["content-type"].startswith("text/plain")
    wrong = client.get(
        "/webhooks/shaky",
        params={"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": "no"},
    )
    assert wrong.status_code == 401
    graph = client.post("/webhooks/shaky?validationToken=a%20b%2Bc")
    assert (graph.status_code, graph.text) == (200, "a b+c")
    sync = {
        "X-Goog-Resource-State": "sync",
        "X-Goog-Channel-Token": "chan",
        "X-Goog-Message-Number": "1",
    }
    assert client.post("/webhooks/shaky", headers=sync).status_code == 200
    forged = client.post("/webhooks/shaky", headers={**sync, "X-Goog-Channel-Token": "bad"})
    assert forged.status_code == 401
    assert admin(client, "/admin/api/events") == {"events": []}  # handshakes are not events
    change = {**sync, "X-Goog-Resource-State": "exists", "X-Goog-Message-Number": "2"}
    stored = client.post("/webhooks/shaky", headers=change)
    assert stored.json()["status"] == "accepted"
    event = admin(client, f"/admin/api/events/{stored.json()['event_id']}")
    assert isinstance(event, dict)
    assert (event["type"], event["provider_event_id"]) == ("exists", "2")


def test_admin_needs_the_token_and_is_off_without_one(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    assert client.get("/admin/api/events").status_code == 401
    bad = client.get("/admin/api/events", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert (
        client.get(
            "/admin/api/events?limit=0", headers={"Authorization": "Bearer test-admin-token"}
        ).status_code
        == 400
    )
    off = make_client({"acme.yaml": ACME}, {**ENV, "GATEWAY_ADMIN_TOKEN": ""})
    response = off.get("/admin/api/events", headers={"Authorization": "Bearer "})
    assert response.status_code == 404
    assert "GATEWAY_ADMIN_TOKEN" in response.json()["error"]["message"]


def test_admin_pages_through_events(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    ids = [post_acme(client, {"id": f"evt_{i}"}).json()["event_id"] for i in range(5)]
    page = admin(client, "/admin/api/events?limit=3")
    assert isinstance(page, dict)
    assert [e["id"] for e in page["events"]] == ids[::-1][:3]
    rest = admin(client, f"/admin/api/events?limit=3&before={page['next_before']}")
    assert isinstance(rest, dict)
    assert [e["id"] for e in rest["events"]] == ids[::-1][3:]


def test_healthz(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    assert client.get("/healthz").json()["status"] == "ok"


def test_paths_the_webhook_route_does_not_match_are_404_json(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME, "t.yaml": TENANTS, "b.yaml": BATCH}, ENV)
    for path in ("/webhooks/", "/webhooks/acme/", "/webhooks/acme/clinic/extra", "/webhooks//x"):
        response = post_acme(client, {"id": "a"}, path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert admin(client, "/admin/api/events") == {"events": []}


def test_methods_other_than_post_are_405_json(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    for method in ("GET", "PUT", "DELETE", "OPTIONS", "PATCH"):
        response = client.request(method, "/webhooks/acme")
        assert response.status_code == 405, method
        assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_unexpected_error_is_a_500_json_without_its_trace(
    make_client: AppFactory, caplog: Any
) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    webhook = client.app.state.config.integrations["acme"].webhook

    class Broken:
        def verify(self, *_: Any) -> None:
            raise RuntimeError("disk on fire")

    object.__setattr__(webhook, "verifier", Broken())
    response = post_acme(client, {"id": "evt_500"})
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert "disk on fire" not in response.text
    assert any("disk on fire" in str(r.exc_info) for r in caplog.records if r.exc_info)
    assert client.get("/healthz").status_code == 200


def test_the_webhook_reply_carries_its_length_and_type(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    response = post_acme(client, {"id": "evt_len"})
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)


def _metrics(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_count_webhook_requests_and_events(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME, "b.yaml": BATCH}, ENV)
    post_acme(client, {"id": "evt_m1"})
    post_acme(client, {"id": "evt_m1"})
    post_acme(client, {"id": "evt_m2"}, headers={"Acme-Signature": "garbage"})
    client.post("/webhooks/no-such-thing", content=b"{}")
    client.post(
        "/webhooks/batchy",
        content=json.dumps([{"sg_event_id": "a"}, {"sg_event_id": "b"}, {"sg_event_id": "a"}]),
        headers={"X-Token": "tok"},
    )
    found = _metrics(client)
    requests = "gateway_webhook_requests_total"
    assert found[(requests, (("integration", "acme"), ("status", "200")))] == 2
    assert found[(requests, (("integration", "acme"), ("status", "401")))] == 1
    assert found[(requests, (("integration", ""), ("status", "404")))] == 1  # not its name
    assert found[(requests, (("integration", "batchy"), ("status", "200")))] == 1
    events = "gateway_webhook_events_total"
    assert found[(events, (("integration", "acme"), ("result", "stored")))] == 1
    assert found[(events, (("integration", "acme"), ("result", "duplicate")))] == 1
    assert found[(events, (("integration", "batchy"), ("result", "stored")))] == 2
    assert found[(events, (("integration", "batchy"), ("result", "duplicate")))] == 1
    assert found[("gateway_committed_events_total", ())] == 5
    assert found[("gateway_jobs", (("status", "queued"),))] == 0


def test_metrics_need_the_admin_token(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    off = make_client({"acme.yaml": ACME}, {**ENV, "GATEWAY_ADMIN_TOKEN": ""})
    assert off.get("/metrics").status_code == 404


def test_a_batch_nested_deeper_than_it_can_be_written_back_is_400(
    make_client: AppFactory,
) -> None:
    client = make_client({"b.yaml": BATCH}, ENV)
    deep = b"[" + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"]"
    response = client.post("/webhooks/batchy", content=deep, headers={"X-Token": "tok"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"


def test_a_405_names_the_methods_answered(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME, "shaky.yaml": HANDSHAKES}, ENV)
    assert client.request("OPTIONS", "/webhooks/acme").headers["allow"] == "POST"
    assert client.request("PUT", "/webhooks/shaky").headers["allow"] == "GET, POST"


def test_the_root_path_is_taken_off_only_at_a_segment_boundary() -> None:
    assert route_path({"path": "/gw/webhooks/acme", "root_path": "/gw"}) == "/webhooks/acme"
    assert route_path({"path": "/webhooks/acme", "root_path": "/web"}) == "/webhooks/acme"
    assert route_path({"path": "/gw", "root_path": "/gw"}) == ""
    assert route_path({"path": "/webhooks/x", "root_path": ""}) == "/webhooks/x"


def test_a_no_content_reply_has_no_body_nor_length() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(Reply(204, b"ignored", headers=((b"x-a", b"1"),)).send(send))
    assert sent[0]["headers"] == [(b"x-a", b"1")]
    assert sent[1]["body"] == b""

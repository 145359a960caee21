"""One JSON error shape on both HTTP edges: `{"error": {"code": ..., "message": ...}}`.

The Starlette routes answer through `gateway.web.error_handlers`, the plain-ASGI webhook route
through `gateway.replies.error_reply`; both build the body with `errors.error_body`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.store import SQLiteStore
from gateway.web.application import create_app

TOKEN = "shape-admin-token"
ACME = """\
kind: integration
name: acme
webhook:
  max_body: 1KiB
  verify: {scheme: token, secret: "${secret:ACME_TOKEN}", header: X-Token}
  event: {id: "{{ body.id }}", type: "{{ body.type }}"}
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD = {"X-Token": "right"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(ACME)
    env = {"GATEWAY_ADMIN_TOKEN": TOKEN, "ACME_TOKEN": "right"}
    store = SQLiteStore(f"sqlite:///{tmp_path / 'g.db'}")
    app = create_app(load_config(folder, env), store, Settings.from_env(env), env)

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    store.list_events = broken  # type: ignore[method-assign]  # GET /admin/api/events: a 500
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


CASES = [
    # Starlette: routing (HTTPException), the admin routes, an unexpected error
    ("GET", "/no/such/route", {}, b"", 404, "not_found"),
    ("POST", "/healthz", {}, b"", 405, "method_not_allowed"),
    ("GET", "/admin/api/jobs", {}, b"", 401, "unauthorized"),
    ("GET", "/admin/api/jobs?limit=0", AUTH, b"", 400, "bad_request"),
    ("GET", "/admin/api/jobs/job_nope", AUTH, b"", 404, "not_found"),
    ("GET", "/admin/api/events", AUTH, b"", 500, "internal_error"),
    # the plain-ASGI webhook route
    ("POST", "/webhooks/nope", GOOD, b"{}", 404, "not_found"),
    ("GET", "/webhooks/acme", GOOD, b"", 405, "method_not_allowed"),
    ("POST", "/webhooks/acme", {"X-Token": "wrong"}, b"{}", 401, "invalid_signature"),
    ("POST", "/webhooks/acme", GOOD, b"{not json", 400, "invalid_body"),
    ("POST", "/webhooks/acme", GOOD, b'{"pad": "' + b"x" * 2000 + b'"}', 413, "payload_too_large"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "code"), CASES)
def test_every_error_answer_has_the_one_shape(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    answer = client.request(method, path, headers=headers, content=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    found = answer.json()
    assert set(found) == {"error"} and set(found["error"]) == {"code", "message"}
    assert found["error"]["code"] == code
    message = found["error"]["message"]
    assert isinstance(message, str) and message
    assert "Traceback" not in message and "on fire" not in message  # never the trace


def test_an_unexpected_error_in_the_webhook_route_has_the_shape_too(client: TestClient) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    client.app.webhooks.handle = broken  # type: ignore[attr-defined]
    answer = client.post("/webhooks/acme", headers=GOOD, content=b"{}")
    assert (answer.status_code, answer.json()) == (
        500,
        {"error": {"code": "internal_error", "message": "internal error"}},
    )

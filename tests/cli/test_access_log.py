"""`gateway serve --access-log` logs every request without the secrets some providers send in
the query string: a handshake's token parameter (from the configuration) and a built-in list."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

from gateway.logs import REDACTED, AccessLogRedaction, redact_query
from tests.helpers.servers import gateway_process

SHAKY = """\
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
    - name: own
      method: GET
      query: {mode: check}
      token: {query: check_key, secret: "${secret:SHAKY_CHECK}"}
      respond: {body: "ok"}
  event: {id: "{{ headers['x-goog-message-number'] }}", type: "sync"}
"""


def test_secret_query_parameters_are_redacted_and_the_rest_is_kept() -> None:
    secret = frozenset({"hub.verify_token", "check_key"})
    assert (
        redact_query(
            "/webhooks/w?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1", secret
        )
        == f"/webhooks/w?hub.mode=subscribe&hub.verify_token={REDACTED}&hub.challenge=1"
    )
    assert redact_query("/a?hub%2Everify_token=x&CHECK_KEY=y&flag", secret) == (
        f"/a?hub%2Everify_token={REDACTED}&CHECK_KEY={REDACTED}&flag"
    )
    assert redact_query("/no/query", secret) == "/no/query"
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/x?token=t0k&api_key=k3y&page=2", "1.1", 401), None,
    )  # fmt: skip
    assert AccessLogRedaction(["check_key"]).filter(record)
    line = record.getMessage()
    assert "t0k" not in line and "k3y" not in line and "page=2" in line, line


def test_serve_access_log_never_holds_a_handshake_token(tmp_path: Path) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "shaky.yaml").write_text(SHAKY)
    env = {"SHAKY_TOKEN": "chan", "SHAKY_VERIFY": "vt-real-value", "SHAKY_CHECK": "ck-real-value"}
    extra = ["--log-level", "info", "--access-log"]
    with gateway_process(folder, tmp_path / "g.db", env, extra) as server:
        statuses = [
            httpx.get(f"{server.url}/webhooks/shaky", params=params).status_code
            for params in (
                {"hub.mode": "subscribe", "hub.verify_token": "guess-one", "hub.challenge": "c1"},
                {"hub.mode": "subscribe", "hub.verify_token": "vt-real-value", "hub.challenge": "c2"},
                {"mode": "check", "check_key": "guess-two"},
                {"mode": "check", "check_key": "ck-real-value"},
            )
        ]  # fmt: skip
        server.process.terminate()
        server.process.wait(timeout=10)
        assert server.process.stdout is not None
        output = server.process.stdout.read().decode()
    assert statuses == [401, 200, 401, 200]
    for secret in ("guess-one", "vt-real-value", "guess-two", "ck-real-value"):
        assert secret not in output, output
    assert f"hub.verify_token={REDACTED}&hub.challenge=c1" in output, output
    assert output.count(f"check_key={REDACTED}") == 2, output

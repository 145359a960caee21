"""The outbound client end to end over a mock transport: one attempt per call, typed errors,
the breaker and the limiter in the way, health, and secrets kept out of every message."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from gateway.config.envsubst import SecretRef
from gateway.config.model import Config, build_config, load_config
from gateway.credentials.secrets import SecretSource
from gateway.outbound import (
    CircuitOpenError,
    MemoryTokenStore,
    OutboundClient,
    OutboundError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)
from gateway.processing.worker import Worker
from gateway.store.entities import Job
from tests.helpers import REPO
from tests.helpers.virtualclock import VirtualClock

Handler = Callable[[httpx.Request], httpx.Response]


def acme(**api: Any) -> Config:
    spec = {
        "kind": "integration",
        "name": "acme",
        "api": {
            "base_url": "https://api.acme.test",
            "auth": {"type": "bearer", "token": SecretRef("ACME_KEY")},
            "circuit_breaker": {
                "failure_threshold": 5,
                "success_threshold": 2,
                "timeout": "60s",
                "half_open_max_attempts": 3,
            },
            "endpoints": {
                "get_thing": {"method": "GET", "path": "/things/{id}"},
                "create_thing": {
                    "method": "POST",
                    "path": "/things",
                    "idempotency_header": "Idempotency-Key",
                },
            },
            **api,
        },
    }
    tenant = {"kind": "tenant", "name": "demo", "timezone": "Europe/Berlin", "vars": {}}
    documents = [("integration", "acme.yaml", spec), ("tenant", "demo.yaml", tenant)]
    return build_config(documents, Path("templates"), {})


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def make(
    handler: Handler,
    config: Config | None = None,
    environ: Mapping[str, str] | None = None,
    clock: VirtualClock | None = None,
) -> tuple[OutboundClient, Recorder]:
    recorder = Recorder(handler)
    vc = clock or VirtualClock()
    outbound = OutboundClient(
        config or acme(),
        SecretSource(environ if environ is not None else {"ACME_KEY": "sk_live_acme"}),
        MemoryTokenStore(),
        transport=httpx.MockTransport(recorder),
        clock=vc,
        sleep=vc.sleep,
    )
    return outbound, recorder


def run(
    outbound: OutboundClient, scenario: Callable[[], Any], clock: VirtualClock | None = None
) -> Any:
    async def main() -> Any:
        async with outbound:
            return await scenario()

    return asyncio.run((clock or VirtualClock()).run(main()) if clock else main())


def call(outbound: OutboundClient, endpoint: str = "get_thing", **kwargs: Any) -> Any:
    kwargs.setdefault("tenant", "demo")
    if endpoint == "get_thing":
        kwargs.setdefault("params", {"id": "t1"})
    return outbound.call("acme", endpoint, **kwargs)


def test_success_returns_status_headers_body_and_timing() -> None:
    def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": "t1", "name": "Zoë"}, headers={"X-Request-Id": "r1"})

    outbound, recorder = make(ok)
    result = run(
        outbound,
        lambda: call(
            outbound, "create_thing", body={"name": "Zoë"}, idempotency_key="evt-1:create"
        ),
    )
    assert result.status == 201
    assert result.json() == {"id": "t1", "name": "Zoë"}
    assert "Zoë" in result.text
    assert result.headers["x-request-id"] == "r1"
    assert result.elapsed >= 0 and result.waited == 0
    assert result.endpoint == "acme.create_thing"
    assert "Zoë" not in repr(result)
    sent = recorder.requests[0]
    assert sent.headers["authorization"] == "Bearer sk_live_acme"
    assert sent.headers["idempotency-key"] == "evt-1:create"
    assert json.loads(sent.content) == {"name": "Zoë"}


def test_429_with_retry_after_is_retryable() -> None:
    outbound, _ = make(lambda r: httpx.Response(429, headers={"Retry-After": "2"}, text="slow"))
    with pytest.raises(RetryableError) as caught:
        run(outbound, lambda: call(outbound))
    assert (caught.value.status, caught.value.retry_after, caught.value.kind) == (
        429,
        2.0,
        "status",
    )
    assert not isinstance(caught.value, CircuitOpenError | RateLimitedError)
    assert caught.value.reason == "acme.get_thing: HTTP 429 Too Many Requests: slow"


def test_400_is_permanent_with_the_providers_body() -> None:
    body = {"error": {"type": "invalid_request_error", "message": "No such thing: t1"}}
    outbound, _ = make(lambda r: httpx.Response(400, json=body))
    with pytest.raises(PermanentError) as caught:
        run(outbound, lambda: call(outbound))
    assert caught.value.status == 400
    assert json.loads(caught.value.body or "") == body
    assert "No such thing: t1" in caught.value.reason
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("connection refused"), "network"),
        (httpx.RemoteProtocolError("server disconnected"), "network"),
        (httpx.ReadTimeout("timed out"), "timeout"),
    ],
)
def test_network_errors_and_timeouts_are_retryable(exc: Exception, kind: str) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise exc

    outbound, _ = make(broken)
    with pytest.raises(RetryableError) as caught:
        run(outbound, lambda: call(outbound))
    assert caught.value.kind == kind and caught.value.status is None
    assert str(exc) in caught.value.reason


def test_unknown_integration_or_endpoint_is_permanent() -> None:
    outbound, recorder = make(lambda r: httpx.Response(200))
    with pytest.raises(PermanentError, match="unknown integration 'nope'"):
        run(outbound, lambda: outbound.call("nope", "x", tenant="demo"))
    outbound, recorder = make(lambda r: httpx.Response(200))
    with pytest.raises(PermanentError, match="has no endpoint 'nope'"):
        run(outbound, lambda: outbound.call("acme", "nope", tenant="demo"))
    assert not recorder.requests


def test_breaker_opens_fails_fast_half_opens_and_closes() -> None:
    vc = VirtualClock()
    healthy = False

    async def provider(request: httpx.Request) -> httpx.Response:
        await vc.sleep(0.5)  # calls overlap
        return httpx.Response(200 if healthy else 500)

    outbound, recorder = make(provider, clock=vc)  # type: ignore[arg-type]

    async def scenario() -> None:
        nonlocal healthy
        for _ in range(5):
            with pytest.raises(RetryableError):
                await call(outbound)
        assert outbound.health()["acme"]["breaker"]["state"] == "open"
        with pytest.raises(CircuitOpenError) as fast:
            await call(outbound)
        assert fast.value.retry_after == pytest.approx(60.0)
        assert len(recorder.requests) == 5  # failing fast sent nothing
        vc.advance(60)
        healthy = True
        results = await asyncio.gather(*(call(outbound) for _ in range(5)), return_exceptions=True)
        refused = [r for r in results if isinstance(r, CircuitOpenError)]
        assert len(refused) == 2  # 3 trial calls at a time
        assert outbound.health()["acme"]["breaker"]["state"] == "closed"  # after 2 successes
        assert len(recorder.requests) == 8

    run(outbound, scenario, vc)


def test_a_4xx_does_not_count_against_the_breaker() -> None:
    outbound, _ = make(lambda r: httpx.Response(404))

    async def scenario() -> None:
        for _ in range(8):
            with pytest.raises(PermanentError):
                await call(outbound)

    run(outbound, scenario)
    assert outbound.health()["acme"]["breaker"]["state"] == "closed"


def test_the_limiter_waits_then_refuses_past_max_wait() -> None:
    vc = VirtualClock()
    config = acme(rate_limit={"per_second": 2, "max_wait": "1s"})
    outbound, recorder = make(lambda r: httpx.Response(200), config, clock=vc)

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(call(outbound) for _ in range(7)), return_exceptions=True)

    results = run(outbound, scenario, vc)
    waits = sorted(r.waited for r in results if not isinstance(r, Exception))
    assert waits == [0, 0, 1, 1]  # two now, two after waiting a second
    refused = [r for r in results if isinstance(r, RateLimitedError)]
    # at 1s their deadline has come, and the window frees again only at 2s
    assert len(refused) == 3 and all(r.retry_after == pytest.approx(1.0) for r in refused)
    assert len(recorder.requests) == 4
    limiter = outbound.health()["acme"]["limiter"]
    assert limiter["windows"]["per_second"]["limit"] == 2 and limiter["in_flight"] == 0


def test_a_request_that_cannot_be_built_takes_no_limiter_slot() -> None:
    outbound, recorder = make(lambda r: httpx.Response(200), acme(rate_limit={"per_minute": 1}))

    async def scenario() -> None:
        with pytest.raises(PermanentError, match="path parameter 'id' is missing"):
            await outbound.call("acme", "get_thing", tenant="demo")
        await call(outbound)

    run(outbound, scenario)
    assert len(recorder.requests) == 1


def test_health_lists_every_integration_with_an_api() -> None:
    outbound, _ = make(lambda r: httpx.Response(200))
    health = outbound.health()
    assert list(health) == ["acme"]
    assert health["acme"]["breaker"]["state"] == "closed"
    assert health["acme"]["limiter"]["windows"] == {}
    assert outbound.retry_policy("acme").max_attempts == 5
    run(outbound, lambda: asyncio.sleep(0))


SECRETS = {
    "ACME_KEY": "sk_live_SUPERSECRET_bearer",
    "TWILIO_ACCOUNT_SID": "AC_SUPERSECRET_sid",
    "TWILIO_AUTH_TOKEN": "SUPERSECRET_twilio_token",
    "CLIENT_SECRET": "SUPERSECRET_client",
}


def echo(status: int) -> Handler:
    """A provider that repeats the request back in its error answer (some do)."""

    def handler(request: httpx.Request) -> httpx.Response:
        content = request.content.decode()
        text = f"{request.method} {request.url} {dict(request.headers)} {content}"
        return httpx.Response(status, text=text)

    return handler


def leaks(text: str) -> list[str]:
    found = []
    for value in SECRETS.values():
        for form in (value, base64.b64encode(value.encode()).decode()[:12]):
            if form in text:
                found.append(form)
    return found


def assert_clean(error: BaseException) -> None:
    assert isinstance(error, OutboundError)
    texts = [str(error), repr(error), str(getattr(error, "body", "") or "")]
    assert not leaks(" ".join(texts)), texts


@pytest.mark.parametrize("status", [400, 401, 500])
def test_secrets_never_appear_in_errors(status: int) -> None:
    outbound, _ = make(echo(status), environ=SECRETS)
    with pytest.raises(OutboundError) as caught:
        run(outbound, lambda: call(outbound, "create_thing", body={"k": "x"}))
    assert_clean(caught.value)
    assert "***" in (getattr(caught.value, "body", "") or "")


def test_secrets_never_appear_with_basic_auth_query_keys_or_oauth() -> None:
    configs = [
        {
            "auth": {
                "type": "basic",
                "username": SecretRef("TWILIO_ACCOUNT_SID"),
                "password": SecretRef("TWILIO_AUTH_TOKEN"),
            }
        },
        {"auth": {"type": "api_key", "key": SecretRef("ACME_KEY"), "name": "key", "in": "query"}},
        {
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": "https://login.test/token",
                "client_id": "c",
                "client_secret": SecretRef("CLIENT_SECRET"),
            }
        },
    ]
    for api in configs:
        outbound, _ = make(echo(400), acme(**api), environ=SECRETS)
        with pytest.raises(OutboundError) as caught:
            run(outbound, lambda o=outbound: call(o))  # type: ignore[misc]
        assert_clean(caught.value)

    def refusing_token_endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"bad client: {request.content.decode()}")

    outbound, _ = make(refusing_token_endpoint, acme(**configs[2]), environ=SECRETS)
    with pytest.raises(PermanentError) as refused:
        run(outbound, lambda: call(outbound))
    assert_clean(refused.value)

    def network_error_naming_the_url(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}")

    outbound, _ = make(network_error_naming_the_url, acme(**configs[1]), environ=SECRETS)
    with pytest.raises(RetryableError) as unreachable:
        run(outbound, lambda: call(outbound))
    assert_clean(unreachable.value)
    assert "key=***" in unreachable.value.reason


def test_reprs_show_no_secrets() -> None:
    outbound, _ = make(lambda r: httpx.Response(200, json={"ok": 1}), environ=SECRETS)
    result = run(outbound, lambda: call(outbound))
    tokens = MemoryTokenStore()
    asyncio.run(tokens.put("acme", "demo", {"refresh_token": SECRETS["CLIENT_SECRET"]}))
    for thing in (outbound, result, tokens, outbound._integration("acme")):
        assert not leaks(repr(thing)), repr(thing)


def test_missing_secret_error_names_it_but_shows_no_value() -> None:
    outbound, recorder = make(lambda r: httpx.Response(200), environ={})
    with pytest.raises(PermanentError, match=r"secret ACME_KEY \(auth\.token\) is not set"):
        run(outbound, lambda: call(outbound))
    assert not recorder.requests


def shipped() -> Config:
    env = {
        "STRIPE_BASE_URL": "https://stripe.sandbox.test",
        "TWILIO_BASE_URL": "https://twilio.sandbox.test",
        "TWILIO_ACCOUNT_SID": "AC123",
        "TWILIO_FROM_NUMBER": "+15550001111",
    }
    return load_config(REPO / "integrations.d", env)


def test_shipped_stripe_refund_is_form_encoded_with_an_idempotency_key() -> None:
    outbound, recorder = make(
        lambda r: httpx.Response(200, json={"id": "re_1"}),
        shipped(),
        {"STRIPE_API_KEY": "sk_test_1"},
    )
    result = run(
        outbound,
        lambda: outbound.call(
            "stripe",
            "create_refund",
            tenant="demo",
            body={"payment_intent": "pi_1", "amount": 1500, "metadata": {"booking": "b-7"}},
            idempotency_key="evt_9:refund",
        ),
    )
    assert result.json() == {"id": "re_1"}
    sent = recorder.requests[0]
    assert str(sent.url) == "https://stripe.sandbox.test/v1/refunds"
    assert sent.headers["authorization"] == "Bearer sk_test_1"
    assert sent.headers["idempotency-key"] == "evt_9:refund"
    assert parse_qsl(sent.content.decode()) == [
        ("payment_intent", "pi_1"),
        ("amount", "1500"),
        ("metadata[booking]", "b-7"),
    ]
    assert sent.extensions["timeout"]["read"] == 30.0


def test_shipped_twilio_message_uses_basic_auth_and_the_account_path() -> None:
    outbound, recorder = make(
        lambda r: httpx.Response(201, json={"sid": "SM1"}),
        shipped(),
        {"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "tw-token"},
    )
    run(
        outbound,
        lambda: outbound.call(
            "twilio",
            "send_message",
            tenant="demo",
            params={"account_sid": "AC123"},
            body={"To": "+4915112345678", "From": "+15550001111", "Body": "See you at 10:00"},
        ),
    )
    sent = recorder.requests[0]
    assert sent.url.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:tw-token").decode()
    assert dict(parse_qsl(sent.content.decode()))["Body"] == "See you at 10:00"
    assert sent.extensions["timeout"]["read"] == 15.0


def _with_delete() -> Config:
    return acme(
        endpoints={
            "delete_thing": {"method": "DELETE", "path": "/things/{id}", "ok_status": [404, 410]}
        }
    )


@pytest.mark.parametrize("status", [404, 410])
def test_a_declared_ok_status_is_a_success(status: int) -> None:
    outbound, _ = make(lambda r: httpx.Response(status, text="gone"), _with_delete())
    result = run(outbound, lambda: call(outbound, "delete_thing", params={"id": "t1"}))
    assert result.status == status
    assert result.text == "gone"


def test_a_status_not_declared_ok_is_still_permanent() -> None:
    outbound, _ = make(lambda r: httpx.Response(403, text="no"), _with_delete())
    with pytest.raises(PermanentError) as caught:
        run(outbound, lambda: call(outbound, "delete_thing", params={"id": "t1"}))
    assert caught.value.status == 403


def test_a_job_whose_endpoint_answers_a_declared_ok_status_succeeds() -> None:
    config = _with_delete()
    outbound, _ = make(lambda r: httpx.Response(404, text="already gone"), config)
    spec = json.dumps({"endpoint": "acme.delete_thing", "params": {"id": "t1"}})
    job = Job(
        "job_1", "k", "evt_1", "flow", "a", "call", "acme", "demo", None, spec, "{}",
        "running", 1, 5, 0.0, None, None, 0.0, 0.0,
    )  # fmt: skip
    worker = Worker(config, store=None, caller=outbound)  # type: ignore[arg-type]

    outcome = run(outbound, lambda: worker.execute(job))
    assert outcome.status == "succeeded"
    assert json.loads(outcome.result or "{}") == {"status": 404, "body": "already gone"}

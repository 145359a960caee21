"""Request building: path parameters, merged defaults, json and form bodies, idempotency."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from gateway.config.api import Api
from gateway.config.envsubst import SecretRef
from gateway.config.model import build_config
from gateway.credentials.secrets import SecretLookup
from gateway.outbound import MissingSecretError, RequestBuildError
from gateway.outbound.formencode import flatten
from gateway.outbound.redactor import Redactor
from gateway.outbound.request import build_request, find_endpoint

SPEC: dict[str, Any] = {
    "base_url": "https://api.example.test/",
    "timeout": "20s",
    "headers": {"X-Client": "gateway", "X-Tenant": "{{ tenant.name }}"},
    "endpoints": {
        "create_refund": {
            "method": "POST",
            "path": "/v1/refunds",
            "encoding": "form",
            "idempotency_header": "Idempotency-Key",
            "body": {"metadata": {"source": "gateway"}, "reason": "requested_by_customer"},
        },
        "send_message": {
            "method": "POST",
            "path": "/2010-04-01/Accounts/{account_sid}/Messages.json",
            "encoding": "form",
            "timeout": "5s",
        },
        "get_booking": {
            "method": "GET",
            "path": "/v2/bookings/{uid}",
            "headers": {"cal-api-version": "2024-08-13", "X-Client": "calcom-endpoint"},
            "query": {"expand": "attendees", "tz": "{{ tenant.timezone }}"},
        },
        "create_event": {
            "method": "post",
            "path": "/calendars/{calendar_id}/events",
            "query": {"sendUpdates": "none"},
            "body": {
                "source": {"title": "gateway"},
                "token": SecretRef("CHANNEL_TOKEN"),
                "address": "https://gw.test/hooks{{ '/' ~ tenant.name if tenant else '' }}",
            },
        },
        "absolute": {"method": "GET", "path": "https://other.example.test/ping?x=1"},
    },
    "health": {"method": "GET", "path": "/v2/me?fields=id"},
}
TENANT = {"name": "demo", "timezone": "Europe/Berlin", "vars": {}}


def redactor(environ: Mapping[str, str] | None = None) -> Redactor:
    return Redactor(SecretLookup("example", {}, environ or {}), "example", "demo")


def build(
    endpoint: str, *, tenant: Any = TENANT, env: Mapping[str, str] | None = None, **kwargs: Any
) -> httpx.Request:
    api = Api.build("example", SPEC)
    return build_request(
        api, find_endpoint(api, endpoint), redactor(env), variables={"tenant": tenant}, **kwargs
    )


def form(request: httpx.Request) -> list[tuple[str, str]]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return parse_qsl(request.content.decode(), keep_blank_values=True)


def test_path_params_are_quoted_and_timeouts_come_from_the_endpoint() -> None:
    request = build("send_message", params={"account_sid": "AC/1 ?x"}, body={"To": "+4915"})
    assert request.method == "POST"
    assert request.url.raw_path == b"/2010-04-01/Accounts/AC%2F1%20%3Fx/Messages.json"
    assert request.extensions["timeout"] == {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    booking = build("get_booking", params={"uid": "b-1"})
    assert booking.extensions["timeout"]["read"] == 20.0  # api.timeout


def test_missing_or_unusable_path_params_are_clear_errors() -> None:
    with pytest.raises(
        RequestBuildError,
        match=r"example.get_booking: path parameter 'uid' is missing"
        r" \(path /v2/bookings/\{uid\} takes: uid\)",
    ):
        build("get_booking")
    with pytest.raises(RequestBuildError, match="'uid' is '', not a path segment"):
        build("get_booking", params={"uid": ""})
    with pytest.raises(RequestBuildError, match=r"'\.\.', not a path segment"):
        build("get_booking", params={"uid": ".."})
    with pytest.raises(RequestBuildError, match="has no endpoint 'nope' \\(it has: absolute, "):
        find_endpoint(Api.build("example", SPEC), "nope")


def test_form_flattens_nested_values_stripe_style() -> None:
    request = build(
        "create_refund",
        body={
            "payment_intent": "pi_1",
            "amount": 500,
            "metadata": {"order": "42", "note": "a&b=c"},
            "items": [{"price": "price_1", "quantity": 2}, {"price": "price_2"}],
            "expand": ["charge"],
            "refund_application_fee": True,
            "instructions_email": None,
        },
    )
    assert form(request) == [
        ("metadata[order]", "42"),
        ("metadata[note]", "a&b=c"),
        ("reason", "requested_by_customer"),
        ("payment_intent", "pi_1"),
        ("amount", "500"),
        ("items[0][price]", "price_1"),
        ("items[0][quantity]", "2"),
        ("items[1][price]", "price_2"),
        ("expand[0]", "charge"),
        ("refund_application_fee", "true"),
    ]  # the caller's metadata replaced the default's: dicts merge one level deep


def test_flatten_edge_cases() -> None:
    assert flatten({"a": {"b": {"c": [1, {"d": False}]}}}) == [
        ("a[b][c][0]", "1"),
        ("a[b][c][1][d]", "false"),
    ]
    assert flatten({"empty": {}, "none": None, "zero": 0, "text": ""}) == [
        ("zero", "0"),
        ("text", ""),
    ]


def test_idempotency_header_only_when_declared_and_given() -> None:
    assert build("create_refund", idempotency_key="evt_1:refund").headers["Idempotency-Key"] == (
        "evt_1:refund"
    )
    assert "idempotency-key" not in build("create_refund").headers
    undeclared = build("get_booking", params={"uid": "x"}, idempotency_key="k")
    assert "idempotency-key" not in undeclared.headers


def test_headers_merge_api_then_endpoint_then_caller_case_insensitively() -> None:
    request = build(
        "get_booking", params={"uid": "x"}, headers={"x-client": "caller", "X-Extra": 1}
    )
    assert request.headers.get_list("x-client") == ["caller"]
    assert request.headers["cal-api-version"] == "2024-08-13"
    assert request.headers["x-tenant"] == "demo"  # a template in api.headers sees the tenant
    assert request.headers["x-extra"] == "1"
    assert request.headers["user-agent"].startswith("yaml-gateway/")
    assert request.content == b"" and "content-type" not in request.headers


def test_query_defaults_render_and_merge_with_the_callers() -> None:
    request = build(
        "get_booking",
        params={"uid": "x"},
        query={"tz": "UTC", "take": 10, "status": ["a", "b"], "created": {"gte": 5}, "skip": None},
    )
    assert list(request.url.params.multi_items()) == [
        ("expand", "attendees"),
        ("tz", "UTC"),
        ("take", "10"),
        ("status", "a"),
        ("status", "b"),
        ("created[gte]", "5"),
    ]
    rendered = build("get_booking", params={"uid": "x"})
    assert rendered.url.params["tz"] == "Europe/Berlin"
    assert build("absolute").url == "https://other.example.test/ping?x=1"
    health = build("health", query={"extra": "1"})
    assert str(health.url) == "https://api.example.test/v2/me?fields=id&extra=1"


def test_json_body_with_defaults_templates_and_secrets() -> None:
    request = build(
        "create_event",
        params={"calendar_id": "primary"},
        body={"summary": "Checkup {{ not rendered }}", "source": {"url": "x"}},
        env={"CHANNEL_TOKEN": "chan-token-value"},
    )
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "source": {"url": "x"},
        "token": "chan-token-value",
        "address": "https://gw.test/hooks/demo",
        "summary": "Checkup {{ not rendered }}",  # the caller's values are used as given
    }


def test_tenant_variables() -> None:
    config = build_config(
        [
            (
                "tenant",
                "t.yaml",
                {
                    "kind": "tenant",
                    "name": "demo",
                    "timezone": "Europe/Berlin",
                    "locale": "de-AT",
                    "vars": {"calendar": "primary"},
                },
            )
        ],
        Path("templates"),
        {},
    )
    assert config.tenant_variables("demo") == {
        "name": "demo",
        "timezone": "Europe/Berlin",
        "locale": "de_AT",  # in CLDR's form
        "vars": {"calendar": "primary"},
    }
    assert config.tenant_variables("default") == {
        "name": "default",
        "timezone": None,
        "locale": None,
        "vars": {},
    }


def test_a_missing_secret_in_a_body_default_names_it() -> None:
    with pytest.raises(
        MissingSecretError,
        match=r"secret CHANNEL_TOKEN \(body\.token\) is not set for tenant 'demo'",
    ):
        build("create_event", params={"calendar_id": "c"})


def test_unencodable_bodies_and_failing_templates_are_permanent() -> None:
    with pytest.raises(RequestBuildError, match="a form body must be a mapping"):
        build("create_refund", body=["a"])
    with pytest.raises(RequestBuildError, match="the body is not JSON"):
        build(
            "create_event",
            params={"calendar_id": "c"},
            body={"x": {1, 2}},
            env={"CHANNEL_TOKEN": "abcd"},
        )
    with pytest.raises(RequestBuildError, match=r"api\.headers template failed"):
        build("get_booking", tenant={"nothing": 1}, params={"uid": "x"})
    with pytest.raises(RequestBuildError, match="query must be a mapping"):
        build("get_booking", params={"uid": "x"}, query="a=b")


def test_caller_may_override_content_type() -> None:
    request = build(
        "create_event",
        params={"calendar_id": "c"},
        headers={"Content-Type": "application/merge-patch+json"},
        env={"CHANNEL_TOKEN": "abcd"},
    )
    assert request.headers.get_list("content-type") == ["application/merge-patch+json"]

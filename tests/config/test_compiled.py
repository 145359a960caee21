"""The configuration compiled once: typed, frozen objects, and each default in one place."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gateway.config.api import (
    DEFAULT_TIMEOUT,
    AuthSpec,
    BreakerPolicy,
    RateLimit,
    RetryPolicy,
)
from gateway.config.envsubst import SecretRef
from gateway.config.model import Config, build_config
from gateway.credentials.secrets import SecretSource
from gateway.outbound import CircuitBreaker, MemoryTokenStore, OutboundClient, RateLimiter
from gateway.processing.dispatcher import Dispatcher
from gateway.processing.worker import Worker


def _config(api: dict[str, Any] | None = None, **extra: Any) -> Config:
    spec: dict[str, Any] = {"kind": "integration", "name": "acme", **extra}
    if api is not None:
        spec["api"] = {"base_url": "https://api.acme.test", **api}
    documents: list[tuple[str, str, Any]] = [("integration", "acme.yaml", spec)]
    flow = {
        "kind": "flow",
        "name": "remind",
        "event": "booking.created",
        "condition": "{{ event.data.ok }}",
        "actions": [
            {"call": {"endpoint": "acme.ping"}, "condition": "{{ true }}"},
            {
                "name": "later",
                "schedule": {
                    "key": "r-{{ event.data.id }}",
                    "at": "{{ event.data.start }}",
                    "offset": "-1h",
                    "action": {"call": {"endpoint": "acme.ping"}, "condition": "{{ 1 }}"},
                },
            },
            {"cancel": {"key": "r-{{ event.data.id }}"}},
        ],
    }
    documents.append(("flow", "remind.yaml", flow))
    return build_config(documents, Path("templates"), {})


MINIMAL = {"endpoints": {"ping": {"method": "get", "path": "/ping"}}}


def test_an_api_section_with_nothing_but_endpoints_gets_the_defaults() -> None:
    api = _config(MINIMAL).integrations["acme"].api
    assert api is not None
    assert api.timeout == DEFAULT_TIMEOUT == 30.0
    assert api.retry == RetryPolicy() and api.retry.max_attempts == 5
    assert api.circuit_breaker == BreakerPolicy()
    assert api.rate_limit == RateLimit() and api.rate_limit.max_wait == 30.0
    assert api.auth == AuthSpec() and api.auth.type == "none"
    ping = api.endpoints["ping"]
    assert (ping.method, ping.timeout, ping.ok_status) == ("GET", DEFAULT_TIMEOUT, frozenset())


def test_the_engine_objects_take_their_defaults_from_the_policies() -> None:
    assert CircuitBreaker.from_policy(BreakerPolicy()).snapshot() == CircuitBreaker().snapshot()
    assert RateLimiter.from_policy(RateLimit()).snapshot() == RateLimiter().snapshot()


def test_declared_policies_are_compiled() -> None:
    api = (
        _config(
            {
                **MINIMAL,
                "timeout": "5s",
                "retry": {"max_attempts": 3, "base": "2s", "retry_on": [503]},
                "circuit_breaker": {"failure_threshold": 9, "timeout": "2m"},
                "rate_limit": {"per_second": 4, "max_wait": "1m"},
                "auth": {
                    "type": "api_key",
                    "key": SecretRef("ACME_KEY"),
                    "name": "k",
                    "in": "query",
                },
                "health": {"path": "/health"},
            }
        )
        .integrations["acme"]
        .api
    )
    assert api is not None
    assert (api.retry.max_attempts, api.retry.base, api.retry.retry_on) == (3, 2.0, {503})
    assert (api.circuit_breaker.failure_threshold, api.circuit_breaker.timeout) == (9, 120.0)
    assert (api.rate_limit.per_second, api.rate_limit.max_wait) == (4, 60.0)
    assert (api.auth.type, api.auth.location, api.auth.name) == ("api_key", "query", "k")
    assert api.endpoints["ping"].timeout == 5.0
    assert (api.endpoints["health"].method, api.endpoints["health"].path) == ("GET", "/health")
    assert api.secrets == {"ACME_KEY"}


@pytest.mark.parametrize(
    ("api", "attempts"), [(None, 5), (MINIMAL, 5), ({**MINIMAL, "retry": {"max_attempts": 2}}, 2)]
)
def test_dispatcher_worker_and_client_read_one_retry_policy(
    api: dict[str, Any] | None, attempts: int
) -> None:
    config = _config(api)
    worker = Worker(config, store=None, caller=None)  # type: ignore[arg-type]
    assert Dispatcher(config, store=None)._max_attempts("acme") == attempts  # type: ignore[arg-type]
    assert worker.policy("acme").max_attempts == attempts
    assert config.retry_policy("nowhere") == RetryPolicy()
    if api is not None:
        client = OutboundClient(config, SecretSource({}), MemoryTokenStore())
        assert client.retry_policy("acme") is worker.policy("acme")
        asyncio.run(client.aclose())


def test_channels_syncs_and_examples_are_typed_and_read_only() -> None:
    integration = _config(
        MINIMAL,
        channels={"sms": {"kind": "sms", "endpoint": "ping", "body": {"to": "{{ to }}"}}},
        examples={"hello": {"body": {"a": 1}}},
    ).integrations["acme"]
    sms = integration.channels["sms"]
    assert (sms.kind, sms.endpoint, dict(sms.params)) == ("sms", "ping", {})
    assert integration.example("hello") == {"body": {"a": 1}}
    assert integration.example("nope") is None and dict(integration.syncs) == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        sms.kind = "email"  # type: ignore[misc]
    with pytest.raises(TypeError):
        integration.channels["x"] = sms  # type: ignore[index]


def test_flows_are_compiled_to_typed_actions() -> None:
    (flow,) = _config(MINIMAL).flows
    assert (flow.name, flow.event) == ("remind", "booking.created")
    assert flow.condition is not None and flow.condition.render({"event": {"data": {"ok": 1}}})
    now, later, cancel = flow.actions
    assert [a.label for a in flow.actions] == ["#0", "later", "#2"]
    assert now.task is not None and now.later is None and now.cancel is None
    assert (now.task.kind, now.task.integration) == ("call", "acme")
    assert dict(now.task.stored) == {"endpoint": "acme.ping", "condition": "{{ true }}"}
    assert later.task is not None and later.later is not None and later.condition is None
    assert dict(later.task.stored) == {"endpoint": "acme.ping", "condition": "{{ 1 }}"}
    assert (later.later.offset, later.later.delay) == (-3600.0, None)
    assert later.later.key.render({"event": {"data": {"id": 7}}}) == "r-7"
    assert cancel.task is None and cancel.cancel is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.name = "other"  # type: ignore[misc]

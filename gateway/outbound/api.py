"""An integration's ``api`` section, read once: base URL, defaults and endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.config.model import Integration
from gateway.durations import parse_duration
from gateway.outbound.failures import RequestBuildError

DEFAULT_TIMEOUT = 30.0
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Endpoint:
    integration: str
    name: str
    method: str
    path: str
    encoding: str = "json"
    headers: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    query: Any = None
    body: Any = None
    timeout: float = DEFAULT_TIMEOUT
    idempotency_header: str | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # path defaults
    ok_status: frozenset[int] = frozenset()  # non-2xx statuses that count as success

    @property
    def label(self) -> str:
        return f"{self.integration}.{self.name}"


@dataclass(frozen=True, slots=True)
class Api:
    integration: str
    base_url: str
    headers: Mapping[str, Any]
    timeout: float
    endpoints: Mapping[str, Endpoint]
    spec: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_integration(cls, integration: Integration) -> Api:
        spec = integration.spec.get("api")
        if not isinstance(spec, Mapping):
            raise RequestBuildError(f"integration {integration.name} declares no api section")
        timeout = parse_duration(spec.get("timeout", DEFAULT_TIMEOUT))
        endpoints = {
            name: Endpoint(
                integration=integration.name,
                name=name,
                method=str(ep["method"]).upper(),
                path=str(ep["path"]),
                encoding=ep.get("encoding", "json"),
                headers=MappingProxyType(dict(ep.get("headers") or {})),
                query=ep.get("query"),
                body=ep.get("body"),
                timeout=parse_duration(ep["timeout"]) if "timeout" in ep else timeout,
                idempotency_header=ep.get("idempotency_header"),
                params=MappingProxyType(dict(ep.get("params") or {})),
                ok_status=frozenset(ep.get("ok_status") or ()),
            )
            for name, ep in (spec.get("endpoints") or {}).items()
        }
        health = spec.get("health")
        if isinstance(health, Mapping) and "health" not in endpoints:
            endpoints["health"] = Endpoint(
                integration.name,
                "health",
                str(health.get("method", "GET")).upper(),
                str(health["path"]),
                timeout=timeout,
            )
        return cls(
            integration=integration.name,
            base_url=str(spec["base_url"]),
            headers=MappingProxyType(dict(spec.get("headers") or {})),
            timeout=timeout,
            endpoints=MappingProxyType(endpoints),
            spec=spec,
        )

    def endpoint(self, name: str) -> Endpoint:
        found = self.endpoints.get(name)
        if found is None:
            known = ", ".join(sorted(self.endpoints)) or "none"
            raise RequestBuildError(
                f"integration {self.integration} has no endpoint {name!r} (it has: {known})"
            )
        return found

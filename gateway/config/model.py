"""The configuration the server runs: the linted YAML, substituted and compiled, read-only.

`load_config` goes through `lint` first, so the server refuses exactly what `gateway lint`
reports as errors, with the same diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.config.envsubst import substitute
from gateway.config.lint import default_templates_dir, lint
from gateway.config.pipeline import Pipeline
from gateway.diagnostics import Diagnostic
from gateway.durations import parse_size
from gateway.errors import ConfigError
from gateway.expr.expressions import Expression, compile_expression
from gateway.verify import build_verifier
from gateway.verify.verifier import Verifier

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_TENANT = "default"
DEFAULT_RESPOND_STATUS = 200
DEFAULT_TEXT_TYPE = "text/plain; charset=utf-8"


def _expr(value: Any) -> Expression | None:
    return compile_expression(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Handshake:
    name: str
    method: str
    query: Mapping[str, str | bool]
    headers: Mapping[str, str]
    token_query: str | None
    token_secret: Any
    verified: bool
    status: int
    content_type: str
    body: Expression | None

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> Handshake:
        respond = spec.get("respond") or {}
        token = spec.get("token") or {}
        return cls(
            name=spec["name"],
            method=spec["method"],
            query=MappingProxyType(dict(spec.get("query") or {})),
            headers=MappingProxyType(
                {k.lower(): v for k, v in (spec.get("headers") or {}).items()}
            ),
            token_query=token.get("query"),
            token_secret=token.get("secret"),
            verified=bool(spec.get("verified", False)),
            status=int(respond.get("status", DEFAULT_RESPOND_STATUS)),
            content_type=str(respond.get("content_type", DEFAULT_TEXT_TYPE)),
            body=_expr(respond.get("body")),
        )


@dataclass(frozen=True)
class Respond:
    """The provider's own expected acknowledgement (Twilio: TwiML), rendered per request."""

    status: int
    content_type: str
    body: Expression | None

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> Respond:
        return cls(
            status=int(spec.get("status", DEFAULT_RESPOND_STATUS)),
            content_type=str(spec.get("content_type", DEFAULT_TEXT_TYPE)),
            body=_expr(spec.get("body")),
        )


@dataclass(frozen=True)
class Webhook:
    verify_spec: Mapping[str, Any]  # as declared: `gateway simulate` signs from it
    verifier: Verifier
    max_body: int
    pipeline: Pipeline  # parse, split, id/type, map: the steps every path shares
    handshakes: tuple[Handshake, ...]
    respond: Respond | None
    needs_url: bool  # the scheme signs the public URL (building it costs on every request)
    allow: bytes = b"POST"  # the methods answered, for a 405's Allow header

    @property
    def format(self) -> str:
        return self.pipeline.format

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> Webhook:
        respond = spec.get("respond")
        verifier = build_verifier(spec["verify"])
        return cls(
            verify_spec=MappingProxyType(dict(spec["verify"])),
            verifier=verifier,
            max_body=parse_size(spec.get("max_body", DEFAULT_MAX_BODY)),
            pipeline=Pipeline.build(spec),
            handshakes=tuple(Handshake.build(h) for h in spec.get("handshakes") or ()),
            respond=Respond.build(respond) if respond else None,
            needs_url=verifier.signs_url,
            allow=", ".join(
                sorted({"POST", *(h.get("method", "POST") for h in spec.get("handshakes") or ())})
            ).encode(),
        )


@dataclass(frozen=True)
class Integration:
    name: str
    spec: Mapping[str, Any]
    webhook: Webhook | None
    source: str

    def sync_event_name(self, sync: str, change: str) -> str | None:
        """The normalised event a sync's `emit` names for a change (None: it emits none)."""
        declared = (self.spec.get("syncs") or {}).get(sync) or {}
        name = (declared.get("emit") or {}).get(change)
        return str(name) if name else None

    def example(self, name: str) -> Mapping[str, Any] | None:
        examples = self.spec.get("examples") or {}
        found = examples.get(name)
        return found if isinstance(found, Mapping) else None


@dataclass(frozen=True)
class Tenant:
    name: str
    integrations: frozenset[str] | None  # None: all
    timezone: str | None
    vars: Mapping[str, Any]

    def uses(self, integration: str) -> bool:
        return self.integrations is None or integration in self.integrations


@dataclass(frozen=True)
class Config:
    integrations: Mapping[str, Integration]
    flows: tuple[Mapping[str, Any], ...]
    tenants: Mapping[str, Tenant]
    templates_dir: Path
    warnings: tuple[Diagnostic, ...] = field(default=())

    def tenant_variables(self, tenant: str) -> dict[str, Any]:
        """What ``tenant`` is in templates: {name, vars, timezone} (empty for an undeclared one)."""
        declared = self.tenants.get(tenant)
        return {
            "name": tenant,
            "vars": dict(declared.vars) if declared else {},
            "timezone": declared.timezone if declared else None,
        }


def build_config(
    documents: list[tuple[str, str, Mapping[str, Any]]],
    templates_dir: Path,
    environ: Mapping[str, str],
    warnings: tuple[Diagnostic, ...] = (),
) -> Config:
    """Compile linted documents: (kind, source path, data) each."""
    integrations: dict[str, Integration] = {}
    flows: list[Mapping[str, Any]] = []
    tenants: dict[str, Tenant] = {}
    for kind, source, raw in documents:
        data = substitute(raw, environ)
        if kind == "integration":
            webhook = Webhook.build(data["webhook"]) if "webhook" in data else None
            integrations[data["name"]] = Integration(data["name"], data, webhook, source)
        elif kind == "flow":
            flows.append(MappingProxyType(data))
        elif kind == "tenant":
            listed = data.get("integrations")
            tenants[data["name"]] = Tenant(
                data["name"],
                frozenset(listed) if listed is not None else None,
                data.get("timezone"),
                MappingProxyType(dict(data.get("vars") or {})),
            )
    return Config(
        MappingProxyType(integrations),
        tuple(flows),
        MappingProxyType(tenants),
        templates_dir,
        warnings,
    )


def load_config(
    integrations_dir: str | Path,
    environ: Mapping[str, str],
    *,
    templates_dir: Path | None = None,
) -> Config:
    """Lint and compile a folder of YAML files; raises ConfigError with every error found."""
    paths = [str(integrations_dir)]
    templates = templates_dir or default_templates_dir(paths)
    result = lint(paths, templates_dir=templates)
    if result.errors:
        raise ConfigError(result.diagnostics)
    documents = [(str(doc.data["kind"]), doc.path, doc.data) for doc in result.documents]
    return build_config(documents, templates, environ, tuple(result.diagnostics))

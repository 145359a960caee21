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

from gateway.config.api import Api, RetryPolicy
from gateway.config.channels import Channel
from gateway.config.contracts import NO_CONTRACTS, Contract, Contracts
from gateway.config.envsubst import secret_names, substitute
from gateway.config.flows import Flow
from gateway.config.functions import Function, build_functions, emit_rules
from gateway.config.lint import default_templates_dir, lint
from gateway.config.pipeline import Pipeline
from gateway.config.syncs import SyncSpec
from gateway.diagnostics import Diagnostic
from gateway.durations import parse_size
from gateway.errors import ConfigError
from gateway.expr.expressions import Expression, compile_expression
from gateway.locales import locale_code
from gateway.verify import build_verifier
from gateway.verify.verifier import Verifier

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_TENANT = "default"
DEFAULT_RESPOND_STATUS = 200
DEFAULT_TEXT_TYPE = "text/plain; charset=utf-8"
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_NO_API_RETRY = RetryPolicy()


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
    when: Expression | None = None  # over the parsed body: Slack's url_verification

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
            when=_expr(spec.get("when")),
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
    def build(cls, spec: Mapping[str, Any], contracts: Contracts = NO_CONTRACTS) -> Webhook:
        respond = spec.get("respond")
        verifier = build_verifier(spec["verify"])
        return cls(
            verify_spec=MappingProxyType(dict(spec["verify"])),
            verifier=verifier,
            max_body=parse_size(spec.get("max_body", DEFAULT_MAX_BODY)),
            pipeline=Pipeline.build(spec, contracts),
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
    webhook: Webhook | None
    source: str
    api: Api | None = None
    channels: Mapping[str, Channel] = field(default_factory=lambda: _EMPTY)
    syncs: Mapping[str, SyncSpec] = field(default_factory=lambda: _EMPTY)
    examples: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _EMPTY)
    secret_names: frozenset[str] = frozenset()  # every secret the document refers to
    functions: Mapping[str, Function] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def build(
        cls, data: Mapping[str, Any], source: str, contracts: Contracts = NO_CONTRACTS
    ) -> Integration:
        """An integration document (linted and substituted), compiled."""
        name = str(data["name"])
        api = data.get("api")
        examples = data.get("examples") or {}
        functions = data.get("functions") or {}
        webhook = data.get("webhook")
        if isinstance(webhook, Mapping) and functions:  # what the functions emit is mapped
            rules = emit_rules(functions)
            webhook = {**webhook, "map": {**(webhook.get("map") or {}), **rules}}
        return cls(
            name=name,
            webhook=Webhook.build(webhook, contracts) if isinstance(webhook, Mapping) else None,
            source=source,
            api=Api.build(name, api) if isinstance(api, Mapping) else None,
            channels=MappingProxyType(
                {key: Channel.build(key, c) for key, c in (data.get("channels") or {}).items()}
            ),
            syncs=MappingProxyType(
                {key: SyncSpec.build(name, key, s) for key, s in (data.get("syncs") or {}).items()}
            ),
            examples=MappingProxyType(
                {
                    key: MappingProxyType(dict(e))
                    for key, e in examples.items()
                    if isinstance(e, Mapping)
                }
            ),
            secret_names=frozenset(secret_names(data)),
            functions=MappingProxyType(build_functions(name, functions)),
        )

    def sync_event_name(self, sync: str, change: str) -> str | None:
        """The normalised event a sync's `emit` names for a change (None: it emits none)."""
        declared = self.syncs.get(sync)
        name = declared.emit.get(change) if declared is not None else None
        return str(name) if name else None

    def example(self, name: str) -> Mapping[str, Any] | None:
        return self.examples.get(name)

    @property
    def retry(self) -> RetryPolicy:
        """How calls to this integration are retried (the defaults without an api section)."""
        return self.api.retry if self.api is not None else _NO_API_RETRY


@dataclass(frozen=True)
class Tenant:
    name: str
    integrations: frozenset[str] | None  # None: all
    timezone: str | None
    vars: Mapping[str, Any]
    # Its webhook URLs also verify with the gateway's own secrets (the environment's, and
    # values written in the config), not only with its stored credentials: an explicit choice.
    shared_secrets: bool = False
    # The language of its messages when the event names none (a code gateway.locales reads).
    locale: str | None = None

    def uses(self, integration: str) -> bool:
        return self.integrations is None or integration in self.integrations


@dataclass(frozen=True)
class Config:
    integrations: Mapping[str, Integration]
    flows: tuple[Flow, ...]
    tenants: Mapping[str, Tenant]
    templates_dir: Path
    warnings: tuple[Diagnostic, ...] = field(default=())
    events: Contracts = field(default_factory=lambda: NO_CONTRACTS)  # declared events by name

    def retry_policy(self, integration: str) -> RetryPolicy:
        """How jobs calling `integration` are retried (the defaults for an unknown one)."""
        found = self.integrations.get(integration)
        return found.retry if found is not None else _NO_API_RETRY

    @property
    def secret_query_parameters(self) -> frozenset[str]:
        """Query parameters that carry a secret: every handshake's token parameter."""
        return frozenset(
            handshake.token_query
            for integration in self.integrations.values()
            if integration.webhook is not None
            for handshake in integration.webhook.handshakes
            if handshake.token_query
        )

    def tenant_variables(self, tenant: str) -> dict[str, Any]:
        """What ``tenant`` is in templates: {name, vars, timezone, locale} (empty for an
        undeclared one)."""
        declared = self.tenants.get(tenant)
        return {
            "name": tenant,
            "vars": dict(declared.vars) if declared else {},
            "timezone": declared.timezone if declared else None,
            "locale": declared.locale if declared else None,
        }


def build_config(
    documents: list[tuple[str, str, Mapping[str, Any]]],
    templates_dir: Path,
    environ: Mapping[str, str],
    warnings: tuple[Diagnostic, ...] = (),
) -> Config:
    """Compile linted documents: (kind, source path, data) each."""
    integrations: dict[str, Integration] = {}
    flows: list[Flow] = []
    tenants: dict[str, Tenant] = {}
    events = MappingProxyType(
        {
            str(data["name"]): Contract.build(data, source)
            for kind, source, data in documents
            if kind == "event"
        }
    )
    for kind, source, raw in documents:
        data = substitute(raw, environ)
        if kind == "integration":
            integrations[data["name"]] = Integration.build(data, source, events)
        elif kind == "flow":
            flows.append(Flow.build(data, source))
        elif kind == "tenant":
            listed = data.get("integrations")
            tenants[data["name"]] = Tenant(
                data["name"],
                frozenset(listed) if listed is not None else None,
                data.get("timezone"),
                MappingProxyType(dict(data.get("vars") or {})),
                shared_secrets=data.get("shared_secrets") is True,
                locale=locale_code(data.get("locale")),
            )
    return Config(
        MappingProxyType(integrations),
        tuple(flows),
        MappingProxyType(tenants),
        templates_dir,
        warnings,
        events,
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

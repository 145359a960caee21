"""The webhook pipeline: the steps every path takes from a body to normalised events.

    parse (the declared ``webhook.format`` decides) -> split a batch -> event id and type
    -> map: each rule of the event type, its ``condition``, its compiled ``data``

Ingress (`gateway.ingress.webhooks`) parses, splits and identifies a verified request before
storing it; the dispatcher maps stored events; lint's example check (`config.examples`) and
`gateway simulate` run declared examples through the very same `Pipeline` methods, so that
what lints is what runs. Sync results are turned into the same `NormalisedEvent` here too.

Expressions see these variables:

- id, type, split and ``respond``: ``body``, ``headers`` (lower-case names), ``query`` (the
  request's query string), ``integration``, ``tenant``;
- mapping rules (``condition``, ``data``): ``body``, ``headers``, ``integration``, ``tenant``.
  The query string is not stored with an event, so mappings cannot read it (lint says so);
  what a mapping needs from it, the event id or type can carry.

A failing expression never raises out of a step: it becomes a `Failure` naming the YAML path
of the expression and why, which the caller reports (lint), logs (ingress) or records (the
dispatcher).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from jinja2 import TemplateError, UndefinedError

from gateway.config.contracts import NO_CONTRACTS, Contract, Contracts, Invalid
from gateway.config.headers import headers_of
from gateway.expr.expressions import RENDER_ERRORS, Expression, compile_expression, is_template
from gateway.jsontext import loads

YamlPath = tuple[str | int, ...]
Variables = Mapping[str, Any]

FORMATS = ("json", "form", "empty")
DEFAULT_FORMAT = "json"

# What a sync stores as an event (see gateway.sync.events): its header names the sync.
SYNC_HEADER = "x-gateway-sync"
SYNC_TYPE_PREFIX = "sync."
# A record a sync delivered as a webhook (``as_webhook``): an event of the webhook's own kind,
# marked with the sync that delivered it (ingress drops x-gateway-* headers from providers).
SYNC_DELIVERY_HEADER = "x-gateway-sync-delivery"

_NO_ATTRIBUTE = re.compile(r"has no attribute '(?P<key>[^']*)'|'(?P<name>[^']*)' is undefined")


class Failure(NamedTuple):
    """One expression that failed on one event: where it stands, and why."""

    path: YamlPath
    source: str  # the expression as written
    reason: str
    rule: str  # the lint rule id that reports it: example-missing-field | example-error
    missing: str | None = None  # the field the expression read and the event lacks

    @classmethod
    def of(cls, path: YamlPath, source: str, exc: Exception) -> Failure:
        if isinstance(exc, UndefinedError):
            match = _NO_ATTRIBUTE.search(str(exc))
            key = (match["key"] or match["name"]) if match else str(exc)
            return cls(
                path,
                source,
                f"it has no field '{key}', which this expression reads",
                "example-missing-field",
                key,
            )
        return cls(path, source, str(exc), "example-error")

    def where(self) -> str:
        return ".".join(str(p) for p in self.path)


Renderer = Callable[[Variables, list[Failure]], Any]


class _Uncompilable(Expression):
    """An expression that does not compile: lint reports it; rendering it fails."""

    __slots__ = ("_error",)

    def __init__(self, source: str, error: TemplateError) -> None:
        self.source = source
        self._error = error

    def render(self, variables: Variables) -> Any:
        raise self._error


def _expression(source: str) -> Expression:
    try:
        return compile_expression(source)
    except TemplateError as exc:
        return _Uncompilable(source, exc)


def compile_data(value: Any, path: YamlPath) -> Renderer:
    """A nested value with its expressions compiled once. Rendering it records each failing
    expression in the failure list given (with its own path) and puts None in its place, so
    one missing field is reported where it is read and the others still render."""
    if isinstance(value, str):
        if not is_template(value):
            return lambda _v, _f: value
        expression = _expression(value)

        def render(variables: Variables, failures: list[Failure]) -> Any:
            try:
                return expression.render(variables)
            except RENDER_ERRORS as exc:
                failures.append(Failure.of(path, value, exc))
                return None

        return render
    if isinstance(value, Mapping):
        fields = [(key, compile_data(item, (*path, key))) for key, item in value.items()]
        return lambda v, f: {key: render(v, f) for key, render in fields}
    if isinstance(value, list):
        items = [compile_data(item, (*path, i)) for i, item in enumerate(value)]
        return lambda v, f: [render(v, f) for render in items]
    return lambda _v, _f: value


class _Compiled(NamedTuple):
    """One expression at its place."""

    expression: Expression
    path: YamlPath

    def evaluate(self, variables: Variables, failures: list[Failure]) -> Any:
        try:
            return self.expression.render(variables)
        except RENDER_ERRORS as exc:
            failures.append(Failure.of(self.path, self.expression.source, exc))
            return None


def _compiled(value: Any, path: YamlPath) -> _Compiled | None:
    return _Compiled(_expression(value), path) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Rule:
    """One mapping rule: a provider event type -> the normalised event ``emit`` names."""

    emit: str
    condition: _Compiled | None
    data: Renderer
    path: YamlPath
    contract: Contract | None = None  # the emitted event's, when declared

    def field_of(self, failure: Failure) -> str | None:
        """The top-level data field a failure stands in (None: the condition)."""
        depth = len(self.path) + 1  # the rule's path, then "data"
        if len(failure.path) > depth and failure.path[depth - 1] == "data":
            return str(failure.path[depth])
        return None

    def checked(self, data: Any, found: list[Failure]) -> list[Failure]:
        """The rule's failures under its contract: a missing optional field is null, not a
        failure; a missing required one names the field; every value is of its type."""
        contract = self.contract
        if contract is None or not isinstance(data, dict):
            return found
        failures: list[Failure] = []
        failed: set[str] = set()
        for failure in found:
            name = self.field_of(failure)
            declared = contract.fields.get(name) if name is not None else None
            if declared is not None and failure.missing is not None and not declared.required:
                continue  # the source lacks an optional value: null
            if name is not None:
                failed.add(name)
            if declared is not None and declared.required:
                failure = failure._replace(
                    reason=f"{contract.name} requires {name}: {failure.reason}",
                    rule="contract-missing-value",
                )
            failures.append(failure)
        for name, declared in contract.fields.items():
            if name in failed:
                continue
            if declared.required and name not in data:
                failures.append(
                    Failure(
                        (*self.path, "data"),
                        "",
                        f"{contract.name} requires {name}, which this mapping does not provide",
                        "contract-missing-field",
                    )
                )
                continue
            try:
                data[name] = declared.coerce(data.get(name))
            except Invalid as exc:
                failures.append(
                    Failure(
                        (*self.path, "data", name),
                        "",
                        f"{contract.name}.{name}: {exc}",
                        "contract-type",
                    )
                )
        return failures


@dataclass(frozen=True, slots=True)
class NormalisedEvent:
    """What flows run on: the same shape for webhooks and syncs."""

    name: str
    data: Any
    integration: str
    tenant: str
    id: str  # the stored event's id
    type: str | None  # the provider's event type
    received_at: float

    def as_dict(self) -> dict[str, Any]:
        """As flows and templates read it: ``event.name``, ``event.data.X``, ..."""
        return {
            "name": self.name,
            "data": self.data,
            "integration": self.integration,
            "tenant": self.tenant,
            "id": self.id,
            "type": self.type,
            "received_at": self.received_at,
        }


class Mapped(NamedTuple):
    """What mapping one event gave: the events made, and the rules that failed."""

    events: list[tuple[str, Any]]  # (emit, data)
    failures: list[Failure]


class Item(NamedTuple):
    """One event of a request (a batch gives several): what ingress stores."""

    payload: Any
    provider_id: str | None
    type: str | None


@dataclass(frozen=True, slots=True)
class Pipeline:
    """An integration's webhook steps, compiled once from its ``webhook`` section."""

    format: str
    split: _Compiled | None
    event_id: _Compiled | None
    event_type: _Compiled | None
    rules: Mapping[str, tuple[Rule, ...]]

    @classmethod
    def build(cls, webhook: Mapping[str, Any], contracts: Contracts = NO_CONTRACTS) -> Pipeline:
        """From a linted ``webhook`` mapping (lint calls it on documents whose schema holds),
        with the contracts of the events it emits."""
        event = webhook.get("event") or {}
        rules: dict[str, tuple[Rule, ...]] = {}
        for event_type, declared in (webhook.get("map") or {}).items():
            listed = declared if isinstance(declared, list) else [declared]
            base: YamlPath = ("webhook", "map", str(event_type))
            rules[str(event_type)] = tuple(
                _rule(rule, (*base, i) if isinstance(declared, list) else base, contracts)
                for i, rule in enumerate(listed)
            )
        return cls(
            format=str(webhook.get("format", DEFAULT_FORMAT)),
            split=_compiled(webhook.get("split"), ("webhook", "split")),
            event_id=_compiled(event.get("id"), ("webhook", "event", "id")),
            event_type=_compiled(event.get("type"), ("webhook", "event", "type")),
            rules=MappingProxyType(rules),
        )

    # ---- parse ------------------------------------------------------------------------------

    def form_fields(self, body: bytes) -> list[tuple[str, str]]:
        """The body's form fields (what a URL-signing verifier signs), for a form webhook."""
        if self.format != "form" or not body:
            return []
        return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)

    def parse(self, body: bytes) -> Any:
        """The body as expressions see it. The declared format decides, never a header.
        Raises ValueError (or RecursionError) for a JSON body that is not JSON."""
        if self.format == "form":
            return dict(self.form_fields(body))
        if self.format == "empty" or not body.strip():
            return {}
        return loads(body)

    # ---- split, id and type -----------------------------------------------------------------

    def items(
        self, payload: Any, variables: Variables, failures: list[Failure]
    ) -> list[Any] | None:
        """The events of a batch, or None when the request is one event (no split declared,
        or the split does not give a list: then the whole body is the event)."""
        if self.split is None:
            return None
        found = self.split.evaluate(variables, failures)
        if isinstance(found, list):
            return found
        if found is not None:
            failures.append(
                Failure(
                    self.split.path,
                    self.split.expression.source,
                    f"gives {type(found).__name__}, expected a list",
                    "example-error",
                )
            )
        return None

    def identify(
        self, variables: Variables, failures: list[Failure]
    ) -> tuple[str | None, str | None]:
        """The provider's event id and event type (None when not declared or failing)."""
        provider_id = self.event_id.evaluate(variables, failures) if self.event_id else None
        event_type = self.event_type.evaluate(variables, failures) if self.event_type else None
        return _text(provider_id), _text(event_type)

    def receive(self, payload: Any, variables: Variables, failures: list[Failure]) -> list[Item]:
        """Split and identify: every event a verified request holds."""
        batch = self.items(payload, variables, failures)
        if batch is None:
            return [Item(payload, *self.identify(variables, failures))]
        return [Item(item, *self.identify({**variables, "body": item}, failures)) for item in batch]

    # ---- map ----------------------------------------------------------------------------------

    def map(self, event_type: str | None, variables: Variables) -> Mapped:
        """Every rule for `event_type` whose condition holds, rendered. A rule with a failing
        expression makes no event; its failures say why."""
        made: list[tuple[str, Any]] = []
        failures: list[Failure] = []
        for rule in self.rules.get(event_type, ()) if event_type is not None else ():
            found: list[Failure] = []
            if rule.condition is not None and not rule.condition.evaluate(variables, found):
                failures.extend(found)
                continue
            data = rule.data(variables, found)
            found = rule.checked(data, found)
            if found:
                failures.extend(found)
                continue
            made.append((rule.emit, data))
        return Mapped(made, failures)


def _rule(rule: Mapping[str, Any], path: YamlPath, contracts: Contracts) -> Rule:
    emit = str(rule["emit"])
    return Rule(
        emit=emit,
        condition=_compiled(rule.get("condition"), (*path, "condition")),
        data=compile_data(rule.get("data") or {}, (*path, "data")),
        path=path,
        contract=contracts.get(emit),
    )


def request_variables(
    payload: Any,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    integration: str,
    tenant: str,
) -> dict[str, Any]:
    """What id, type, split and ``respond`` expressions read of a verified request."""
    return {
        "body": payload,
        "headers": headers_of(headers),  # read by case-insensitive name
        "query": query,
        "integration": integration,
        "tenant": tenant,
    }


def dedup_key(provider_id: str | None, raw: bytes) -> str:
    """What a stored event is deduplicated by: the provider's event id, else (no id declared,
    or it failed) a hash of the event's bytes. A webhook and a sync's delivery of the same
    provider event share the key, so whichever comes second is a duplicate."""
    return provider_id or "sha256:" + hashlib.sha256(raw).hexdigest()


def mapping_variables(
    payload: Any, headers: Mapping[str, str], integration: str, tenant: str
) -> dict[str, Any]:
    """What mapping rules read of an event (stored, or an example's)."""
    return {
        "body": payload,
        "headers": headers_of(headers),  # read by case-insensitive name
        "integration": integration,
        "tenant": tenant,
    }


def is_sync_event(event_type: str | None, headers: Mapping[str, str]) -> bool:
    """Whether a stored event was stored by a sync (its `emit` names the event, not a map)."""
    return bool(event_type and event_type.startswith(SYNC_TYPE_PREFIX) and headers.get(SYNC_HEADER))


def sync_change(event_type: str | None, headers: Mapping[str, str]) -> tuple[str, str]:
    """(sync name, change) of a sync's event."""
    return headers.get(SYNC_HEADER, ""), (event_type or "").rpartition(".")[2]


def normalised(
    made: Sequence[tuple[str, Any]],
    *,
    integration: str,
    tenant: str,
    event_id: str,
    event_type: str | None,
    received_at: float,
) -> list[NormalisedEvent]:
    return [
        NormalisedEvent(name, data, integration, tenant, event_id, event_type, received_at)
        for name, data in made
    ]


def _text(value: Any) -> str | None:
    """An id or type as storable text: JSON may carry lone surrogates UTF-8 cannot hold."""
    if type(value) is str and value.isascii():  # the common case: nothing to check
        return value or None
    if value in (None, ""):
        return None
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text

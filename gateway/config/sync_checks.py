"""Lint's checks of a sync's ``as_webhook`` and its declared ``examples``.

A sync that feeds its records to the webhook pipeline needs a webhook that can take them: one
with an ``event.id`` (the id deliveries and webhooks are deduplicated by) and a JSON body. Each
declared example record goes through what a run does to it, with the very functions the run
calls: the record's own expressions, `AsWebhook.deliver` (its ``when``, its body, then the
webhook's ``event.id`` and ``event.type``), and the webhook's mapping under its contracts. An
example is run as if the sync saw it the moment it changed: ``now`` is its ``updated_at``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jinja2 import TemplateError

from gateway.config.contracts import NO_CONTRACTS, Contracts
from gateway.config.examples import EXAMPLE_TENANT, reportable, webhook_pipeline
from gateway.config.pipeline import DEFAULT_FORMAT, Failure, Pipeline, mapping_variables
from gateway.config.syncs import SyncSpec
from gateway.config.yamlsource import Document
from gateway.diagnostics import Diagnostic
from gateway.expr.expressions import RENDER_ERRORS
from gateway.expr.filters import to_datetime

_AS_WEBHOOK_VARIABLES = frozenset({"record", "tenant", "now"})


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _spec(integration: str, name: str, raw: Mapping[str, Any]) -> SyncSpec | None:
    try:
        return SyncSpec.build(integration, name, raw)
    except (KeyError, TypeError, ValueError, AttributeError, TemplateError):
        return None  # the schema and expression checks report what is wrong


def check_syncs(
    integrations: Sequence[Document], contracts: Contracts = NO_CONTRACTS
) -> Iterator[Diagnostic]:
    for doc in integrations:
        syncs = _dict(doc.data.get("syncs"))
        if not syncs:
            continue
        pipeline = webhook_pipeline(doc.data, contracts)
        for name, raw in syncs.items():
            if not isinstance(raw, dict):
                continue
            yield from _check_as_webhook(doc, str(name), raw)
            spec = _spec(str(doc.data.get("name")), str(name), raw)
            if spec is None:
                continue
            for example, declared in _dict(raw.get("examples")).items():
                record = _dict(declared).get("record")
                if isinstance(record, dict):
                    yield from _check_example(doc, spec, str(example), record, pipeline)


def _check_as_webhook(doc: Document, name: str, raw: Mapping[str, Any]) -> Iterator[Diagnostic]:
    declared = raw.get("as_webhook")
    if declared in (None, False):
        return
    path = ("syncs", name, "as_webhook")
    webhook = doc.data.get("webhook")
    if not isinstance(webhook, dict):
        yield doc.diagnostic(
            path,
            "as_webhook feeds records to webhook.map, and this integration has no webhook",
            "sync-as-webhook",
        )
        return
    if not _dict(webhook.get("event")).get("id"):
        yield doc.diagnostic(
            path,
            "as_webhook needs webhook.event.id: deliveries are told apart from webhooks of "
            "the same event by the provider's event id",
            "sync-as-webhook",
        )
    fmt = webhook.get("format", DEFAULT_FORMAT)
    if fmt != "json":
        yield doc.diagnostic(
            path,
            f"as_webhook stores each record as a JSON body; this webhook's format is {fmt}",
            "sync-as-webhook",
        )
    if _dict(declared).get("max_age") is not None and not _dict(raw.get("record")).get(
        "updated_at"
    ):
        yield doc.diagnostic(
            (*path, "max_age"),
            "max_age is measured from record.updated_at, which this sync does not declare",
            "sync-as-webhook",
        )
    if not _dict(raw.get("examples")):
        yield doc.diagnostic(
            path,
            "as_webhook without examples: declare syncs."
            f"{name}.examples (a record each) so lint runs them through webhook.map",
            "sync-example-missing",
            severity="warning",
        )


def _check_example(
    doc: Document,
    spec: SyncSpec,
    example: str,
    record: dict[str, Any],
    pipeline: Pipeline | None,
) -> Iterator[Diagnostic]:
    where = ("syncs", spec.name, "examples", example)
    said = f"sync example '{example}'"
    variables = {"record": record, "tenant": _tenant()}
    values: dict[str, Any] = {}
    for key, expression in (
        ("id", spec.record_id),
        ("updated_at", spec.updated_at),
        ("deleted", spec.deleted),
    ):
        if expression is None:
            continue
        try:
            values[key] = expression.render(variables)
        except RENDER_ERRORS as exc:
            failure = Failure.of(("syncs", spec.name, "record", key), expression.source, exc)
            yield doc.diagnostic(failure.path, f"{said}: {failure.reason}", failure.rule)
    if values.get("id") in (None, "") and "id" in values:
        yield doc.diagnostic(where, f"{said}: record.id gives no id", "example-error")
    as_webhook = spec.as_webhook
    if as_webhook is None or pipeline is None:
        return
    now = _moment(values.get("updated_at"))
    delivery = as_webhook.deliver(
        pipeline,
        record,
        integration=spec.integration,
        tenant=EXAMPLE_TENANT,
        tenant_vars=_tenant(),
        now=now,
    )
    if delivery is None:
        return  # `when` does not hold: the example shows a record that is not delivered
    for failure in delivery.failures:
        available = (
            _AS_WEBHOOK_VARIABLES
            if failure.path[:1] == ("syncs",)
            else frozenset({"body", "headers", "query", "integration", "tenant"})
        )
        if reportable(failure, available):
            yield doc.diagnostic(failure.path, f"{said}: {failure.reason}", failure.rule)
    if delivery.failures:
        return
    if delivery.provider_id is None:
        yield doc.diagnostic(
            where,
            f"{said}: webhook.event.id gives no id for the body as_webhook makes of it",
            "example-error",
        )
    if delivery.type is None or delivery.type not in pipeline.rules:
        mapped = ", ".join(sorted(pipeline.rules)) or "none"
        yield doc.diagnostic(
            where,
            f"{said}: as_webhook delivers it as event type {delivery.type!r}, which "
            f"webhook.map does not map (it maps: {mapped})",
            "sync-example-unmapped",
        )
        return
    stored = mapping_variables(delivery.payload, delivery.headers, spec.integration, EXAMPLE_TENANT)
    for failure in pipeline.map(delivery.type, stored).failures:
        if reportable(failure, frozenset(stored)):
            yield doc.diagnostic(
                failure.path, f"{said} of syncs.{spec.name}: {failure.reason}", failure.rule
            )


def _tenant() -> dict[str, Any]:
    return {"name": EXAMPLE_TENANT, "vars": {}, "timezone": None}


def _moment(updated_at: Any) -> datetime:
    """When the example is seen: the record's updated_at (lint's verdict does not depend on
    the day it runs), else the epoch."""
    try:
        return to_datetime(updated_at) if updated_at not in (None, "") else _EPOCH
    except (ValueError, TypeError, OverflowError):
        return _EPOCH


_EPOCH = datetime.fromtimestamp(0, UTC)

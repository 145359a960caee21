"""A declared sync, compiled once from an integration's ``syncs`` section (already linted).

``as_webhook`` is compiled here too, with what it does to one record (`AsWebhook.deliver`):
the webhook body it stands for, then the integration's own webhook steps (`Pipeline.identify`
over that body, as ingress calls it). The sync engine and lint's example check both call it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from gateway.config.pipeline import (
    Failure,
    Pipeline,
    Renderer,
    YamlPath,
    compile_data,
    request_variables,
)
from gateway.durations import parse_duration
from gateway.expr.expressions import Expression, compile_expression, tenant_vars_needed
from gateway.jsontext import loads

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_FALSE_TEXT = frozenset({"", "0", "false", "no", "none", "null"})


def truthy(value: Any) -> bool:
    """Whether an expression's value holds: text like "false", "no" or "0" does not."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_TEXT
    return bool(value)


def _expr(value: Any) -> Expression | None:
    return compile_expression(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Schedule:
    every: float | None = None  # seconds
    cron: str | None = None

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> Schedule:
        if "every" in spec:
            return cls(every=parse_duration(spec["every"]))
        return cls(cron=str(spec["cron"]))

    def __str__(self) -> str:
        return f"every {self.every:g}s" if self.every is not None else f"cron {self.cron}"


@dataclass(frozen=True, slots=True)
class Paginate:
    style: str = "none"
    param: str | None = None  # page_param, offset_param or cursor_param
    size_param: str | None = None  # size_param or limit_param
    size: int | None = None  # size or limit
    first_page: int = 1
    into: str = "query"  # in: query | body
    has_more: Expression | None = None
    cursor: Expression | None = None
    next: Expression | None = None
    rel: str = "next"

    @classmethod
    def build(cls, spec: Mapping[str, Any] | None) -> Paginate:
        if not spec:
            return cls()
        return cls(
            style=str(spec["style"]),
            param=spec.get("page_param") or spec.get("offset_param") or spec.get("cursor_param"),
            size_param=spec.get("size_param") or spec.get("limit_param"),
            size=spec.get("size") or spec.get("limit"),
            first_page=int(spec.get("first_page", 1)),
            into=str(spec.get("in", "query")),
            has_more=_expr(spec.get("has_more")),
            cursor=_expr(spec.get("cursor")),
            next=_expr(spec.get("next")),
            rel=str(spec.get("rel", "next")),
        )


@dataclass(frozen=True, slots=True)
class Incremental:
    style: str  # since | token
    param: str | None = None
    into: str = "query"
    value: Expression | None = None
    token: Expression | None = None
    token_is_url: bool = False
    expired_status: int | None = None

    @classmethod
    def build(cls, spec: Mapping[str, Any] | None) -> Incremental | None:
        if not spec:
            return None
        expired = spec.get("expired_status")
        return cls(
            style=str(spec["style"]),
            param=spec.get("param"),
            into=str(spec.get("in", "query")),
            value=_expr(spec.get("value")),
            token=_expr(spec.get("token")),
            token_is_url=bool(spec.get("token_is_url", False)),
            expired_status=int(expired) if expired is not None else None,
        )


class Delivery(NamedTuple):
    """What `as_webhook` makes of one record: the webhook body and headers it stands for, the
    provider event id and type the webhook's own expressions give for them, what failed."""

    payload: Any  # as the stored event's body reads back (JSON)
    body: bytes  # the stored event's body
    headers: dict[str, str]
    provider_id: str | None
    type: str | None
    failures: list[Failure]


@dataclass(frozen=True, slots=True)
class AsWebhook:
    """``as_webhook``: each record fed to the integration's webhook pipeline as the webhook it
    stands for, deduplicated against webhook deliveries by the webhook's own event id."""

    body: Renderer | None  # None: the record is the body
    headers: tuple[tuple[str, Renderer], ...] = ()
    when: Renderer | None = None
    max_age: float | None = None  # seconds
    path: YamlPath = ()

    @classmethod
    def build(cls, sync: str, spec: Any) -> AsWebhook | None:
        if spec is None or spec is False:
            return None
        declared: Mapping[str, Any] = spec if isinstance(spec, Mapping) else {}
        base: YamlPath = ("syncs", sync, "as_webhook")
        body = compile_data(declared["body"], (*base, "body")) if "body" in declared else None
        when = declared.get("when")
        max_age = declared.get("max_age")
        return cls(
            body=body,
            headers=tuple(
                (str(name).lower(), compile_data(value, (*base, "headers", str(name))))
                for name, value in (declared.get("headers") or {}).items()
            ),
            when=compile_data(when, (*base, "when")) if isinstance(when, str) else None,
            max_age=parse_duration(max_age) if max_age is not None else None,
            path=base,
        )

    def deliver(
        self,
        pipeline: Pipeline,
        record: Any,
        *,
        integration: str,
        tenant: str,
        tenant_vars: Mapping[str, Any],
        now: datetime,
    ) -> Delivery | None:
        """The webhook `record` stands for, identified by the webhook's event id and type
        expressions; None when `when` does not hold. A record is one event, as a batched
        webhook's split gives it. Failures are in the result (nothing raises)."""
        variables = {"record": record, "tenant": tenant_vars, "now": now}
        failures: list[Failure] = []
        if self.when is not None:
            holds = self.when(variables, failures)
            if not failures and not truthy(holds):
                return None
        payload = self.body(variables, failures) if self.body is not None else record
        headers = {name: render(variables, failures) for name, render in self.headers}
        text = {name: "" if value is None else str(value) for name, value in headers.items()}
        try:  # what is stored, and what the webhook's expressions then read, is the JSON
            body = json.dumps(payload, separators=(",", ":"), default=str).encode()
            payload = loads(body)
        except (ValueError, RecursionError) as exc:
            reason = f"the body cannot be written as JSON: {exc}"
            failures.append(Failure(self.path, "", reason, "example-error"))
            body = b""
        if failures:
            return Delivery(payload, body, text, None, None, failures)
        found = request_variables(payload, text, {}, integration, tenant)
        provider_id, event_type = pipeline.identify(found, failures)
        return Delivery(payload, body, text, provider_id, event_type, failures)


@dataclass(frozen=True)
class SyncSpec:
    integration: str
    name: str
    endpoint: str
    schedule: Schedule
    records: Expression
    record_id: Expression
    updated_at: Expression | None
    deleted: Expression | None
    paginate: Paginate
    incremental: Incremental | None
    conflict: str = "last_write_wins"
    emit: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    query: Any = None
    body: Any = None
    # Tenant variables the request templates read without a default: a tenant lacking one
    # is not synced on schedule (the run could only fail).
    tenant_vars: frozenset[str] = frozenset()
    as_webhook: AsWebhook | None = None
    examples: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # name -> record

    @classmethod
    def build(cls, integration: str, name: str, spec: Mapping[str, Any]) -> SyncSpec:
        record = spec["record"]
        return cls(
            integration=integration,
            name=name,
            endpoint=str(spec["endpoint"]),
            schedule=Schedule.build(spec["schedule"]),
            records=compile_expression(spec["records"]),
            record_id=compile_expression(record["id"]),
            updated_at=_expr(record.get("updated_at")),
            deleted=_expr(record.get("deleted")),
            paginate=Paginate.build(spec.get("paginate")),
            incremental=Incremental.build(spec.get("incremental")),
            conflict=str(spec.get("conflict", "last_write_wins")),
            emit=MappingProxyType(dict(spec.get("emit") or {})),
            as_webhook=AsWebhook.build(name, spec.get("as_webhook")),
            examples=MappingProxyType(
                {str(k): e["record"] for k, e in (spec.get("examples") or {}).items()}
            ),
            params=MappingProxyType(dict(spec.get("params") or {})),
            query=spec.get("query"),
            body=spec.get("body"),
            tenant_vars=frozenset().union(
                *(
                    tenant_vars_needed(text)
                    for text in _strings([spec.get("params"), spec.get("query"), spec.get("body")])
                )
            ),
        )

    @property
    def label(self) -> str:
        return f"{self.integration}.{self.name}"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)

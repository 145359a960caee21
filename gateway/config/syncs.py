"""A declared sync, compiled once from an integration's ``syncs`` section (already linted)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.durations import parse_duration
from gateway.expr.expressions import Expression, compile_expression, tenant_vars_needed

_EMPTY: Mapping[str, Any] = MappingProxyType({})


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

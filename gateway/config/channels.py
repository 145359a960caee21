"""An integration's ``channels``, compiled once: which endpoint sends a message, and how."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gateway.expr.expressions import Expression, compile_expression


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    kind: str  # sms | email | whatsapp
    endpoint: str  # an endpoint of the same integration
    params: Mapping[str, Any]
    body: Any  # the request body template (to, text, html, subject, whatsapp_template, ...)
    # Where the provider's answer ({status, headers, body}) says the sent message's id
    message_id: Expression | None = None

    @classmethod
    def build(cls, name: str, spec: Mapping[str, Any]) -> Channel:
        return cls(
            name=name,
            kind=str(spec["kind"]),
            endpoint=str(spec["endpoint"]),
            params=MappingProxyType(dict(spec.get("params") or {})),
            body=spec["body"],
            message_id=compile_expression(spec["message_id"]) if "message_id" in spec else None,
        )

"""An integration's ``channels``, compiled once: which endpoint sends a message, and how."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    kind: str  # sms | email | whatsapp
    endpoint: str  # an endpoint of the same integration
    params: Mapping[str, Any]
    body: Any  # the request body template (to, text, html, subject, whatsapp_template, ...)

    @classmethod
    def build(cls, name: str, spec: Mapping[str, Any]) -> Channel:
        return cls(
            name=name,
            kind=str(spec["kind"]),
            endpoint=str(spec["endpoint"]),
            params=MappingProxyType(dict(spec.get("params") or {})),
            body=spec["body"],
        )

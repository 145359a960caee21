"""Event contracts: what a normalised event holds, declared once in a ``kind: event`` document.

Every provider emitting ``booking.created`` emits the same fields with the same types; flows
and templates read only declared fields. Lint checks mappings, examples, flows and templates
against the contract (`gateway.config.contract_checks`); at runtime the pipeline uses it to be
tolerant: a missing optional field is null, a missing required one fails only its rule, and a
value of the wrong type is a reason, never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gateway.expr.filters import to_datetime

FIELD_TYPES = (
    "string",
    "integer",
    "number",
    "boolean",
    "datetime",
    "email",
    "phone",
    "money",
    "currency",
    "object",
    "list",
)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


class Invalid(ValueError):
    """A value that does not have its field's type; the message says what was expected."""


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise Invalid("expected an integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value)
    raise Invalid(f"expected an integer, got {value!r}")


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise Invalid("expected a number, not a boolean")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return _integer(value)
        except Invalid:
            try:
                return float(value)
            except ValueError:
                pass
    raise Invalid(f"expected a number, got {value!r}")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Invalid(f"expected true or false, got {value!r}")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # an id a provider sends as a number is still an id
    raise Invalid(f"expected text, got {type(value).__name__}")


def _matching(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> str:
        if isinstance(value, str) and pattern.match(value):
            return value
        raise Invalid(f"expected {what}, got {value!r}")

    return check


def _datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected an ISO 8601 time, got {value!r}")
    try:
        to_datetime(value)
    except (ValueError, TypeError, OverflowError):
        raise Invalid(f"expected an ISO 8601 time, got {value!r}") from None
    return value


def _money(value: Any) -> int:
    try:
        return _integer(value)
    except Invalid:
        raise Invalid(
            f"expected an amount in the currency's minor units (an integer), got {value!r}"
        ) from None


def _object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise Invalid(f"expected an object, got {type(value).__name__}")


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    raise Invalid(f"expected a list, got {type(value).__name__}")


_CHECKS: Mapping[str, Any] = MappingProxyType(
    {
        "string": _string,
        "integer": _integer,
        "number": _number,
        "boolean": _boolean,
        "datetime": _datetime,
        "email": _matching(_EMAIL, "an email address"),
        "phone": _matching(_E164, "a phone number in E.164 (+4930901820)"),
        "money": _money,
        "currency": _matching(_CURRENCY, "an ISO 4217 currency code (eur)"),
        "object": _object,
        "list": _list,
    }
)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    required: bool = False
    description: str = ""

    def coerce(self, value: Any) -> Any:
        """The value as the field holds it, or None for no value; raises Invalid.

        Mappings write ``''`` for "none" (``{{ x or '' }}``): for a field that is not text,
        an empty string is no value at all."""
        if value is None or (value == "" and self.type != "string"):
            if self.required:
                raise Invalid("required, but it has no value")
            return None
        result = _CHECKS[self.type](value)
        return result


@dataclass(frozen=True, slots=True)
class Contract:
    """One ``kind: event`` document, compiled."""

    name: str
    fields: Mapping[str, Field]
    description: str = ""
    source: str = ""

    @classmethod
    def build(cls, data: Mapping[str, Any], source: str = "") -> Contract:
        declared = data.get("fields") or {}
        return cls(
            name=str(data["name"]),
            fields=MappingProxyType(
                {
                    name: Field(
                        name,
                        str(spec["type"]),
                        bool(spec.get("required", False)),
                        str(spec.get("description", "")),
                    )
                    for name, spec in declared.items()
                }
            ),
            description=str(data.get("description", "")),
            source=source,
        )

    @property
    def required(self) -> frozenset[str]:
        return frozenset(name for name, f in self.fields.items() if f.required)


Contracts = Mapping[str, Contract]
NO_CONTRACTS: Contracts = MappingProxyType({})

"""Environment references in YAML values: ``${NAME}``, ``${NAME:-default}``, ``${secret:NAME}``.

References are resolved after parsing, in string values only, so a ``${...}`` in a comment is
never touched. ``$${`` writes a literal ``${``. A secret reference must be a whole value; it
becomes a `SecretRef` that is resolved when used (a tenant's stored credential first, then the
environment) and never printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_REF = re.compile(
    r"\$\$\{|\$\{(?:(?P<secret>secret:)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?)\}"
)
_WHOLE_SECRET = re.compile(r"^\$\{secret:(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}$")
_ANY_REF = re.compile(r"\$\{[^}]*\}?")


@dataclass(frozen=True, slots=True)
class Ref:
    name: str
    default: str | None
    secret: bool
    start: int


class Secret:
    """A secret value: compares and hashes by value, prints as stars."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Names a secret to look up when it is needed."""

    name: str

    def __repr__(self) -> str:
        return f"SecretRef({self.name!r})"


def find_refs(text: str) -> Iterator[Ref]:
    for match in _REF.finditer(text):
        if match.group(0) == "$${":
            continue
        yield Ref(match["name"], match["default"], bool(match["secret"]), match.start())


def malformed_refs(text: str) -> list[str]:
    """``${...}`` spans that are not valid references (like ``${1BAD}`` or an unclosed one)."""
    valid = {m.start() for m in _REF.finditer(text)}
    return [
        m.group(0)
        for m in _ANY_REF.finditer(text)
        if m.start() not in valid and text[max(0, m.start() - 1) : m.start()] != "$"
    ]


def embedded_secret(text: str) -> bool:
    """True when a secret reference is part of a longer text (it must be the whole value)."""
    return any(r.secret for r in find_refs(text)) and not _WHOLE_SECRET.match(text)


def substitute_text(text: str, environ: Mapping[str, str]) -> str | SecretRef:
    whole = _WHOLE_SECRET.match(text)
    if whole:
        return SecretRef(whole["name"])
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        value = environ.get(match["name"])
        if value is None or (value == "" and match["default"] is not None):
            return match["default"] or ""
        return value

    return _REF.sub(replace, text)


def substitute(value: Any, environ: Mapping[str, str]) -> Any:
    """A copy of `value` with every reference in its strings resolved."""
    if isinstance(value, str):
        return substitute_text(value, environ)
    if isinstance(value, dict):
        return {k: substitute(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, environ) for v in value]
    return value


def secret_names(value: Any) -> set[str]:
    """The names of every secret a (substituted) config value refers to."""
    names: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, SecretRef):
            names.add(item.name)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return names


def resolve_secret(ref: SecretRef | str | None, lookup: Mapping[str, str]) -> Secret | None:
    """The secret a config value stands for, or None when it is not set anywhere."""
    if ref is None:
        return None
    if isinstance(ref, SecretRef):
        value = lookup.get(ref.name)
        return Secret(value) if value else None
    return Secret(ref) if ref else None

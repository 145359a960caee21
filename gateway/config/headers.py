"""`Headers`: a request's headers as expressions read them, by case-insensitive name.

HTTP header names are case-insensitive, and providers document them capitalised
(`X-GitHub-Event`) while ASGI servers and the stored events hold them lower-cased: so
`headers['X-GitHub-Event']` and `headers['x-github-event']` read the same header, at run time
and when lint runs a declared example (both through `gateway.config.pipeline`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Headers(dict[str, str]):
    """A dict of lower-cased names (so it serialises and is read fast as any dict) whose
    lookups lower-case the name asked for."""

    __slots__ = ()

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__((name.lower(), value) for name, value in headers.items())

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower() if isinstance(name, str) else name)

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower() if isinstance(name, str) else name, default)


def headers_of(headers: Mapping[str, str]) -> Headers:
    """`headers` as expressions read them (itself when it already is `Headers`)."""
    return headers if isinstance(headers, Headers) else Headers(headers)

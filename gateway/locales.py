"""Locales: the language (and region) a message is written and formatted in.

A code is what providers and tenants give (`de`, `de-AT`, `de_AT`, `EN`); it is read into
CLDR's form (`de`, `de_AT`) or refused when CLDR (through Babel) knows no such locale. The
templates without a locale suffix are in `BASE_LOCALE`, the last resort of every preference.
"""

from __future__ import annotations

import functools
from typing import Any

from babel import Locale, UnknownLocaleError

BASE_LOCALE = "en"  # the language of a template without a locale suffix


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> Locale | None:
    try:
        return Locale.parse(text.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def locale_code(value: Any) -> str | None:
    """`value` read as a locale code in CLDR's form (`de`, `de_AT`), or None when it is none
    (empty, not text, or a locale CLDR does not know)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 35:
        return None
    # lower-case the language (Cal.com sends "de", browsers "de-DE", some "DE")
    language, sep, rest = text.replace("-", "_").partition("_")
    found = _parse(language.lower() + sep + rest)
    return str(found) if found is not None else None


def babel_locale(value: Any) -> Locale:
    """The Babel locale of a code; `BASE_LOCALE` when it is none."""
    found = _parse(locale_code(value) or BASE_LOCALE)
    assert found is not None  # BASE_LOCALE is a locale CLDR knows
    return found


def fallbacks(code: str) -> tuple[str, ...]:
    """A code and the more general ones it falls back to: de_AT -> (de_AT, de)."""
    parts = code.split("_")
    return tuple("_".join(parts[:n]) for n in range(len(parts), 0, -1))


def preference(*wanted: Any) -> tuple[str, ...]:
    """The locales to try in order: each of `wanted` that is a locale (with its fallbacks),
    then `BASE_LOCALE`; none twice. Values that are no locale code are passed over."""
    order: list[str] = []
    for value in wanted:
        code = locale_code(value)
        for each in fallbacks(code) if code else ():
            if each not in order:
                order.append(each)
    if BASE_LOCALE not in order:
        order.append(BASE_LOCALE)
    return tuple(order)

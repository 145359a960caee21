"""Locale codes as providers and tenants give them, and the order they are tried in."""

from __future__ import annotations

import pytest

from gateway.locales import BASE_LOCALE, fallbacks, locale_code, preference


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("de", "de"),
        ("DE", "de"),
        (" de-DE ", "de_DE"),
        ("de_AT", "de_AT"),
        ("pt-BR", "pt_BR"),
        ("auto", None),  # Stripe Checkout following the browser
        ("deutsch", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_codes_are_read_into_cldr_form(given: object, code: str | None) -> None:
    assert locale_code(given) == code


def test_a_region_falls_back_to_its_language() -> None:
    assert fallbacks("de_AT") == ("de_AT", "de")
    assert fallbacks("de") == ("de",)


def test_the_preference_is_each_wanted_locale_then_the_base_once() -> None:
    assert BASE_LOCALE == "en"
    assert preference("de-AT", "de") == ("de_AT", "de", "en")
    assert preference(None, "auto", "fr") == ("fr", "en")
    assert preference("en", "de") == ("en", "de")  # English asked for first stays first
    assert preference() == ("en",)

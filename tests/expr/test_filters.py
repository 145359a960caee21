"""The filters that write dates, times and money in the message's language (CLDR, via Babel)."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gateway.expr.expressions import MissingValue
from gateway.expr.filters import FILTERS

ENV = ImmutableSandboxedEnvironment(undefined=MissingValue)
ENV.filters.update(FILTERS)


def render(source: str, **variables: Any) -> str:
    return ENV.from_string(source).render(variables)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("de", "Dienstag, 15. Dezember 2026 09:00"),
        ("de-AT", "Dienstag, 15. Dezember 2026 09:00"),
        ("en", "Tuesday, December 15, 2026 9:00\u202fAM"),
        (None, "Tuesday, December 15, 2026 9:00\u202fAM"),  # no locale: the base, English
        ("fr", "mardi 15 décembre 2026 09:00"),
    ],
)
def test_dates_and_times_are_written_as_the_locale_writes_them(
    locale: str | None, expected: str
) -> None:
    source = "{{ at | format_date('full', 'Europe/Berlin') }} {{ at | format_time('short', 'Europe/Berlin') }}"
    assert render(source, at="2026-12-15T08:00:00Z", locale=locale) == expected


def test_the_time_zone_decides_the_day_and_the_hour() -> None:
    late = "2026-12-15T23:30:00Z"  # already Wednesday in Berlin, still Tuesday in New York
    source = "{{ at | format_date('EEEE', zone) }} {{ at | format_time('HH:mm', zone) }}"
    assert render(source, at=late, zone="Europe/Berlin", locale="de") == "Mittwoch 00:30"
    assert render(source, at=late, zone="America/New_York", locale="de") == "Dienstag 18:30"
    # in summer Berlin is two hours ahead of UTC
    assert render(source, at="2026-07-01T08:00:00Z", zone="Europe/Berlin", locale="de") == (
        "Mittwoch 10:00"
    )
    # no zone: the moment's own offset
    assert render("{{ at | format_time('HH:mm') }}", at="2026-12-15T09:15:00+05:00") == "09:15"


def test_format_datetime_takes_a_cldr_pattern() -> None:
    source = "{{ at | format_datetime(\"EEEE, d. MMMM y 'um' HH:mm\", 'Europe/Berlin') }}"
    assert render(source, at="2026-12-15T08:00:00Z", locale="de") == (
        "Dienstag, 15. Dezember 2026 um 09:00"
    )


@pytest.mark.parametrize(
    ("source", "locale", "expected"),
    [
        ("{{ 45 | format_money('eur') }}", "de", "45,00\u00a0€"),
        ("{{ 45 | format_money('EUR') }}", "en", "€45.00"),
        ("{{ 4500 | format_money('eur', minor_units=true) }}", "de", "45,00\u00a0€"),
        ("{{ 1234567 | format_money('eur', true) }}", "de", "12.345,67\u00a0€"),
        ("{{ 500 | format_money('jpy', true) }}", "en", "¥500"),  # no minor unit
        ("{{ 45 | format_money('usd', locale='de') }}", "en", "45,00\u00a0$"),  # argument wins
        ("{{ 1234.5 | format_number(2) }}", "de", "1.234,50"),
        ("{{ 1234.5 | format_number }}", "en", "1,234.5"),
    ],
)
def test_money_and_numbers_are_written_as_the_locale_writes_them(
    source: str, locale: str, expected: str
) -> None:
    assert render(source, locale=locale) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 45 | format_money('euro') }}", "is not a currency code"),
        ("{{ 'lots' | format_money('eur') }}", "is not an amount"),
        ("{{ 'tomorrow' | format_date }}", "Invalid isoformat"),
    ],
)
def test_a_value_the_filters_cannot_read_fails_with_the_reason(source: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render(source, locale="de")


def test_a_missing_value_says_which_one_is_missing() -> None:
    with pytest.raises(UndefinedError, match="price"):
        render("{{ event.data.price | format_money('eur') }}", event={"data": {}})

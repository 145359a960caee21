"""Jinja2 filters available to every expression in the YAML files.

They are pure functions of their arguments: no I/O, no clock, no environment.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import Undefined, pass_context
from jinja2.runtime import Context

from gateway.durations import parse_signed_duration
from gateway.expr.sealed import Sealed, unseal
from gateway.locales import babel_locale

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_JUNK = re.compile(r"[\s().\-/]")


def zone_or_utc(name: str | None) -> Any:
    """The IANA time zone `name`, or UTC when none is given or it is unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def to_datetime(value: Any, zone: str | None = None) -> datetime:
    """Parse an ISO 8601 string or epoch seconds (or milliseconds) into an aware datetime.
    A time written without an offset is read in the IANA time zone `zone` (UTC by default)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone_or_utc(zone))
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"{value!r} is not a time the calendar can hold") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone_or_utc(zone))
    raise ValueError(f"cannot read a date and time from {value!r}")


def localtime(value: Any, zone: str | None = None) -> datetime:
    """The moment in the IANA time zone `zone` (UTC when none or unknown)."""
    return to_datetime(value).astimezone(zone_or_utc(zone))


def strftime(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return to_datetime(value).strftime(fmt)


def isoformat(value: Any) -> str:
    return to_datetime(value).isoformat()


def shift(value: Any, offset: str) -> datetime:
    """Move a moment by a signed duration: ``start | shift('-24h')``."""
    return to_datetime(value) + timedelta(seconds=parse_signed_duration(offset))


def e164(value: Any, default_country_code: str = "") -> str:
    """Normalise a phone number to E.164 (+14155550123); '' when it cannot be one."""
    text = _PHONE_JUNK.sub("", str(value or ""))
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and default_country_code:
        text = "+" + default_country_code.lstrip("+") + text.lstrip("0")
    return text if _E164.match(text) else ""


def sha256(value: Any) -> str:
    data = value if isinstance(value, bytes) else str(value).encode()
    return hashlib.sha256(data).hexdigest()


def hmac_sha256(value: Any, key: Any, encoding: str = "hex") -> str:
    """The HMAC-SHA256 of `value` with `key` (a ``secret('NAME')``, or a text), as hex or
    base64: what handshakes answer (Zoom's encryptedToken)."""
    secret = unseal(key) if isinstance(key, Sealed) else key
    if not isinstance(secret, str) or not secret:
        raise ValueError("hmac_sha256 needs a key: secret('NAME') of a secret that is set")
    data = value if isinstance(value, bytes) else str(value).encode()
    digest = hmac.new(secret.encode(), data, hashlib.sha256).digest()
    if encoding == "base64":
        return base64.b64encode(digest).decode()
    if encoding != "hex":
        raise ValueError(f"hmac_sha256 encoding must be hex or base64, not {encoding!r}")
    return digest.hex()


def explode(parents: Any, path: str, **carry: str) -> list[Any]:
    """The items of the list at `path` (dotted keys) in each parent, each given the fields
    `carry` names, read from its parent: ``changes | explode('value.messages',
    metadata='value.metadata')`` is every message, each with its change's metadata. Batched
    webhooks (WhatsApp, Graph) put what their items share in the envelope: split them with
    this and nothing is lost. A parent without the list gives no items; an item's own field of
    the same name wins; an item that is not an object is given as it is."""
    found: list[Any] = []
    for parent in parents if isinstance(parents, list) else [parents]:
        items = _at(parent, path)
        if not isinstance(items, list):
            continue
        shared = {name: _at(parent, where) for name, where in carry.items()}
        for item in items:
            found.append({**shared, **item} if isinstance(item, dict) else item)
    return found


def nearest(moments: Any, target: Any, count: int = 3) -> list[Any]:
    """The `count` of `moments` (ISO 8601 texts or datetimes) closest to `target`, closest
    first (the earlier of two as close): the free slots nearest to one that was taken."""
    aim = to_datetime(target)
    items = list(moments) if isinstance(moments, list | tuple) else []
    ranked = sorted(items, key=lambda m: (abs((to_datetime(m) - aim).total_seconds()), str(m)))
    return ranked[: max(int(count), 0)]


def _at(value: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def default(value: Any, fallback: Any = "", boolean: bool = False) -> Any:
    """`value`, or `fallback` when it is missing: undefined, or null. Events are JSON, where a
    field an event lacks is null (see the event contracts): Jinja's own `default` would keep
    the null and print "None". With `boolean`, any false value is replaced too."""
    if value is None or isinstance(value, Undefined) or (boolean and not value):
        return fallback
    return value


# ---- in the message's language: the locale is the rendering context's `locale` (the one of
# the template file chosen, see config.templates), or a `locale=` argument; the base locale
# when neither is given. Formats are CLDR's, through Babel: full, long, medium, short, or a
# CLDR pattern ("EEEE, d. MMMM y 'um' HH:mm").


def _locale_of(context: Context | None, given: Any) -> Any:
    wanted = given if given else (context.get("locale") if context is not None else None)
    return babel_locale(None if isinstance(wanted, Undefined) else wanted)


def _moment(value: Any, zone: str | None) -> datetime:
    """`value` as an aware datetime, in `zone` when one is given (else in its own offset)."""
    moment = to_datetime(value)
    return moment.astimezone(zone_or_utc(zone)) if zone else moment


def format_datetime(
    context: Context | None,
    value: Any,
    format: str = "medium",
    zone: str | None = None,
    locale: str | None = None,
) -> str:
    """A moment as the locale writes it: ``start | format_datetime('short', 'Europe/Berlin')``
    is 15.12.26, 09:00 in German and 12/15/26, 9:00 AM in English."""
    moment = _moment(value, zone)
    where = _locale_of(context, locale)
    return babel_dates.format_datetime(moment, format, tzinfo=moment.tzinfo, locale=where)


def format_date(
    context: Context | None,
    value: Any,
    format: str = "medium",
    zone: str | None = None,
    locale: str | None = None,
) -> str:
    """The day of a moment (in `zone`): 'full' is Dienstag, 15. Dezember 2026."""
    moment = _moment(value, zone)
    return babel_dates.format_date(moment.date(), format, locale=_locale_of(context, locale))


def format_time(
    context: Context | None,
    value: Any,
    format: str = "short",
    zone: str | None = None,
    locale: str | None = None,
) -> str:
    """The time of day of a moment (in `zone`): 'short' is 09:00 in German, 9:00 AM in
    English."""
    moment = _moment(value, zone)
    where = _locale_of(context, locale)
    return babel_dates.format_time(moment, format, tzinfo=moment.tzinfo, locale=where)


def _number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{value!r} is not an amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not an amount")
    return amount


def format_money(
    context: Context | None,
    value: Any,
    currency: Any,
    minor_units: bool = False,
    locale: str | None = None,
) -> str:
    """An amount of `currency` (an ISO 4217 code, any case) as the locale writes money:
    ``45 | format_money('eur')`` is 45,00 € in German and €45.00 in English. With
    `minor_units`, `value` is in the currency's smallest unit (4500 cents)."""
    code = str(currency or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError(f"{currency!r} is not a currency code (ISO 4217, like EUR)")
    amount = _number(value)
    if minor_units:
        amount = amount.scaleb(-babel_numbers.get_currency_precision(code))
    return babel_numbers.format_currency(amount, code, locale=_locale_of(context, locale))


def format_number(
    context: Context | None, value: Any, decimals: int | None = None, locale: str | None = None
) -> str:
    """A number as the locale writes it (1.234,5 in German); with `decimals`, exactly that
    many digits after the separator."""
    amount = _number(value)
    where = _locale_of(context, locale)
    if decimals is None:
        return babel_numbers.format_decimal(amount, locale=where)
    places = max(int(decimals), 0)
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return babel_numbers.format_decimal(
        amount.quantize(Decimal(1).scaleb(-places)), pattern, locale=where
    )


def _localised(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that reads the locale of its rendering context; strict like `_strict`."""

    @functools.wraps(fn)
    def localised(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return fn(context, value, *args, **kwargs)

    return pass_context(localised)


def _strict(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter given an undefined value says the value is missing (an UndefinedError naming
    it), as reading it would, instead of failing on its own terms: a missing optional field
    is then null, not a failure (see the event contracts)."""

    @functools.wraps(fn)
    def strict(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return fn(value, *args, **kwargs)

    return strict


FILTERS: dict[str, Callable[..., Any]] = {
    "default": default,
    "d": default,
    "datetime": _strict(to_datetime),
    "localtime": _strict(localtime),
    "strftime": _strict(strftime),
    "isoformat": _strict(isoformat),
    "shift": _strict(shift),
    "e164": _strict(e164),
    "sha256": _strict(sha256),
    "hmac_sha256": _strict(hmac_sha256),
    "explode": _strict(explode),
    "nearest": _strict(nearest),
    "format_datetime": _localised(format_datetime),
    "format_date": _localised(format_date),
    "format_time": _localised(format_time),
    "format_money": _localised(format_money),
    "format_number": _localised(format_number),
}

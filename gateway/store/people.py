"""Personal data: what the store holds about one person, found by email and phone, and erased.

Both backends find a person the same way (`PersonMatcher`, one regular expression built from
the email and the phone) over the same columns (`TABLES`), and erase what they found the same
way (`planned`): a table either deletes the person's rows or keeps them for audit and dedup
with the personal columns replaced. What each table does, and why:

- events: kept (their dedup keys keep a redelivery from being dispatched twice, their status is
  the audit trail); the body becomes ERASED_BODY, the headers ``{}``, occurrences in the error
  ``[erased]``, a dedup key or provider id that names the person a one-way hash; a pending
  event is not dispatched any more (ignored).
- jobs: kept (the idempotency key keeps an action from running twice); spec and context (the
  rendered action and the normalised event) become ERASED_JSON, occurrences in the result and
  the error ``[erased]``; a queued, running or dead job is cancelled (nothing to send it with).
- job_attempts: kept (the job's timeline); occurrences in the error and the provider's answer
  ``[erased]`` (the tenant is the job's).
- messages: deleted (the message log is the person's recipient and timeline).
- opt_outs: deleted (the entry is the person's address).
- function_calls: kept (an `ok` answer is what a repeat of its idempotency key is answered
  with); the request becomes ERASED_JSON, occurrences in the answer and steps ``[erased]``.
- records (what syncs pulled): kept with the data ERASED_JSON and the content hash, so the next
  sync counts the record unchanged instead of storing it again; a record whose id names the
  person is deleted.
- sync_runs: occurrences in the error ``[erased]``; sync_state: a cursor or resume point that
  names the person is cleared (the next run starts over).
- credentials, oauth_tokens and PostgreSQL's coordination tables (rate limits, breakers,
  leaders) hold tenants' secrets and integration names, never a person's: not searched.

Matching: emails in any case, raw, percent-encoded (``%40``) or JSON-escaped (``\\u0040``);
phone numbers by their digits (E.164, with or without ``+``, ``00`` or ``%2B``, with spaces,
dashes, dots, parentheses between digits, raw or percent-encoded, ``+49 (0)151 ...``) and in
national form (the country code dropped, with or without a leading 0); inside any text,
nested JSON included. An email or number that is part of a longer one does not match.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.errors import UsageError

ERASED = "[erased]"
ERASED_JSON = '{"erased": true}'
ERASED_BODY = ERASED_JSON.encode()
REFERENCES = 100  # references listed per table (the count is exact)

# Between two digits of a number: up to three of these (raw or percent-encoded).
_SEPARATOR = r"(?:[ .()/+-]|%2[0689def])"
_GAP = _SEPARATOR + "{0,3}"
_TRUNK = r"(?:\(0\)|%280%29)"  # +49 (0)151 ...
_NATIONAL_MIN = 7  # digits a national number keeps without its country code
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _literal(char: str) -> str:
    """`char` as a regular expression both Python and PostgreSQL read the same."""
    if char.isascii() and char.isalnum():
        return char
    if char.isascii():
        return f"(?:\\{char}|%{ord(char):02x})"
    return char


def _email_core(email: str) -> str:
    local, _, domain = email.rpartition("@")
    # \\+u0040: one backslash, or the two PostgreSQL's escaped bytes (encode(..., 'escape')) hold
    at = r"(?:@|%40|\\+u0040)"
    return "".join(map(_literal, local)) + at + "".join(map(_literal, domain))


def _digits(digits: str) -> str:
    return _GAP.join(digits)


# E.164 country codes are prefix-free: these are one digit long, these two, the rest three.
_CODES_1 = ("1", "7")
_TWO_DIGIT_CODES = (
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63"
    " 64 65 66 81 82 84 86 90 91 92 93 94 95 98"
)
_CODES_2 = frozenset(_TWO_DIGIT_CODES.split(" "))


def country_code_length(digits: str) -> int:
    """How many of a number's E.164 digits are its country code."""
    if digits[:1] in _CODES_1:
        return 1
    return 2 if digits[:2] in _CODES_2 else 3


def _phone_cores(digits: str) -> tuple[list[str], list[str]]:
    """(international forms, national forms) of a number's E.164 digits."""
    code = country_code_length(digits)
    international = [
        r"(?:\+|%2b|00)?" + _digits(digits),
        r"(?:\+|%2b|00)?"
        + _digits(digits[:code])
        + f"{_GAP}{_TRUNK}{_GAP}"
        + _digits(digits[code:]),
    ]
    national = []
    if len(digits) - code >= _NATIONAL_MIN:
        national.append(f"(?:0{_GAP})?{_digits(digits[code:])}")
    return international, national


@dataclass(frozen=True, slots=True)
class Person:
    """Who to find: an email (lower case) and/or a phone number (E.164 digits), in one
    tenant or in all."""

    email: str | None = None
    phone: str | None = None
    tenant: str | None = None

    @classmethod
    def of(cls, email: str | None, phone: str | None, tenant: str | None = None) -> Person:
        """From what an operator typed; UsageError naming the option for anything unusable."""
        email = (email or "").strip() or None
        phone = (phone or "").strip() or None
        if email is None and phone is None:
            raise UsageError("name the person by email, phone or both")
        if email is not None and not _EMAIL.fullmatch(email):
            raise UsageError(f"email {email[:80]!r} is not an email address: expected name@domain")
        digits = None
        if phone is not None:
            if not re.fullmatch(r"[+0-9 .()/\-]+", phone):
                raise UsageError(
                    f"phone {phone[:40]!r} is not a phone number: expected digits, like"
                    " +14155550123 (spaces, dashes and parentheses allowed)"
                )
            digits = re.sub(r"[^0-9]", "", phone)
            if phone.lstrip().startswith("00"):
                digits = digits[2:]
            if not 8 <= len(digits) <= 15:
                raise UsageError(
                    f"phone {phone[:40]!r} has {len(digits)} digits: expected an"
                    " international number of 8 to 15 digits, like +14155550123"
                )
        return cls(email.lower() if email else None, digits, tenant or None)

    def _parts(self) -> tuple[list[str], list[str], list[str]]:
        emails = [_email_core(self.email)] if self.email else []
        international, national = _phone_cores(self.phone) if self.phone else ([], [])
        return emails, international, national

    def prefilter(self) -> str:
        """A regular expression (case-insensitive, no look-around: PostgreSQL reads it too)
        that every text the person's data is in matches; `pattern` decides."""
        emails, international, national = self._parts()
        return "|".join(f"(?:{p})" for p in (*emails, *international, *national))

    def pattern(self) -> str:
        """The exact regular expression (Python, case-insensitive): the forms with their
        boundaries, so that a longer address or number does not match."""
        emails, international, national = self._parts()
        before_email = r"(?:(?<![a-z0-9._%+\-])|(?<=%[0-9a-f]{2})|(?<=\\[nrt]))"
        after_email = r"(?![a-z0-9\-])(?!\.[a-z0-9])"
        before_national = r"(?<![0-9+])(?<!%2b)(?<![0-9][ .()/+\-])(?<![0-9][ .()/+\-][ .()/+\-])"
        forms = [f"{before_email}{e}{after_email}" for e in emails]
        forms += [f"(?<![0-9]){p}(?![0-9])" for p in international]
        forms += [f"{before_national}{p}(?![0-9])" for p in national]
        return "|".join(f"(?:{f})" for f in forms)

    def described(self) -> str:
        named = [
            f"email {self.email}" if self.email else "",
            f"phone +{self.phone}" if self.phone else "",
        ]
        who = " and ".join(n for n in named if n)
        return f"{who} in tenant {self.tenant}" if self.tenant else f"{who} in every tenant"


class PersonMatcher:
    def __init__(self, person: Person) -> None:
        self.regex = re.compile(person.pattern(), re.IGNORECASE)

    def found(self, value: object) -> bool:
        text = _text(value)
        return text is not None and self.regex.search(text) is not None

    def substituted(self, value: object) -> str | None:
        text = _text(value)
        return None if text is None else self.regex.sub(ERASED, text)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def one_way(value: str) -> str:
    """A key that named the person, as it is kept: the same value always gives the same."""
    return "erased:" + hashlib.sha256(value.encode()).hexdigest()[:32]


# whole: replaced by the table's marker whenever the row is the person's; parts: each
# occurrence replaced by [erased]; key: a one-way hash, when it names the person itself;
# clear: NULL whenever the row is the person's; row: the row is deleted when it names them.
Erase = Literal["whole", "parts", "key", "clear", "row"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    erase: Erase
    marker: str | bytes | None = None  # for `whole`
    binary: bool = False  # bytes (the event body): PostgreSQL matches its escaped text


@dataclass(frozen=True, slots=True)
class PersonalTable:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    delete: bool = False  # the person's rows are deleted, not kept
    # (column, statuses, new status): a row in one of `statuses` gets the new one
    status: tuple[str, tuple[str, ...], str] | None = None
    reference: Callable[[Mapping[str, Any]], str] = field(default=lambda row: str(row["id"]))
    # the row's tenant as SQL: a column, or a look-up for a table that has none of its own
    tenant: str = "tenant"
    shown: tuple[str, ...] = ()  # other columns `reference` reads

    def selected(self) -> list[str]:
        """The columns read for a row: the key, the searched columns, the status, the tenant."""
        names = [*self.key, *(c.name for c in self.columns if c.name not in self.key)]
        if self.status is not None and self.status[0] not in names:
            names.append(self.status[0])
        names.extend(n for n in self.shown if n not in names)
        if "tenant" not in names:
            names.append("tenant")
        return names

    def select_list(self) -> str:
        """`selected()` as a SELECT list (the tenant as its look-up where there is one)."""
        return ", ".join(
            f"{self.tenant} AS tenant" if n == "tenant" and self.tenant != "tenant" else n
            for n in self.selected()
        )

    @property
    def action(self) -> str:
        return "deleted" if self.delete else "redacted"


def _sync_reference(row: Mapping[str, Any]) -> str:
    return f"{row['integration']}.{row['sync']}/{row['tenant']}"


TABLES: tuple[PersonalTable, ...] = (
    PersonalTable(
        "events",
        ("id",),
        (
            Column("body", "whole", ERASED_BODY, binary=True),
            Column("headers", "whole", "{}"),
            Column("error", "parts"),
            Column("dedup_key", "key"),
            Column("provider_id", "key"),
        ),
        status=("status", ("pending",), "ignored"),
    ),
    PersonalTable(
        "jobs",
        ("id",),
        (
            Column("spec", "whole", ERASED_JSON),
            Column("context", "whole", ERASED_JSON),
            Column("result", "parts"),
            Column("last_error", "parts"),
            Column("idempotency_key", "key"),
            Column("schedule_key", "key"),
        ),
        status=("status", ("queued", "running", "dead"), "cancelled"),
    ),
    PersonalTable(
        "job_attempts",
        ("seq",),
        (Column("error", "parts"), Column("answer", "parts")),
        reference=lambda row: f"{row['job_id']}#{row['attempt']}",
        tenant="(SELECT j.tenant FROM jobs j WHERE j.id = job_attempts.job_id)",
        shown=("job_id", "attempt"),
    ),
    PersonalTable(
        "messages",
        ("id",),
        (Column("recipient", "row"), Column("timeline", "row"), Column("provider_id", "row")),
        delete=True,
    ),
    PersonalTable(
        "opt_outs",
        ("tenant", "kind", "address"),
        (Column("address", "row"), Column("reason", "row")),
        delete=True,
        reference=lambda row: f"{row['kind']}/{row['tenant']}",
    ),
    PersonalTable(
        "function_calls",
        ("id",),
        (
            Column("request", "whole", ERASED_JSON),
            Column("answer", "parts"),
            Column("steps", "parts"),
            Column("idempotency_key", "key"),
        ),
    ),
    PersonalTable(
        "records",
        ("integration", "tenant", "sync", "record_id"),
        (Column("record_id", "row"), Column("data", "whole", ERASED_JSON)),
        reference=lambda row: f"{_sync_reference(row)}/{row['record_id']}",
    ),
    PersonalTable("sync_runs", ("id",), (Column("error", "parts"),)),
    PersonalTable(
        "sync_state",
        ("integration", "tenant", "sync"),
        (Column("cursor", "clear"), Column("resume", "clear")),
        reference=_sync_reference,
    ),
)


# Every other table, and why it is not searched: a new table must be listed in one of the two
# (tests/store/test_people.py reads both schemas).
NOT_PERSONAL = {
    "credentials": "tenants' secrets, encrypted",
    "oauth_tokens": "tenants' tokens, encrypted",
    "schema_version": "the layout's version",
    "rate_limits": "integration names",
    "rate_starts": "integration names and times",
    "rate_leases": "integration names and times",
    "breakers": "integration names and counters",
    "breaker_trials": "integration names and times",
    "leaders": "roles and replica ids",
}


# ---- what was found, what was erased ----------------------------------------------------------


@dataclass(slots=True)
class FoundRows:
    keys: list[tuple[Any, ...]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PersonFound:
    """The person's rows per table (every table of TABLES, found or not)."""

    person: Person
    tables: dict[str, FoundRows]

    @property
    def total(self) -> int:
        return sum(len(f.keys) for f in self.tables.values())

    def as_dict(self) -> dict[str, Any]:
        """What the people API answers: counts and references, never the data."""
        by_name = {t.name: t for t in TABLES}
        return {
            "email": self.person.email,
            "phone": f"+{self.person.phone}" if self.person.phone else None,
            "tenant": self.person.tenant,
            "total": self.total,
            "tables": {
                name: {
                    "count": len(found.keys),
                    "references": found.references[:REFERENCES],
                    "erase": by_name[name].action,
                }
                for name, found in self.tables.items()
            },
        }


@dataclass(slots=True)
class Erased:
    """How many rows of each table an erase changed (kept and redacted, or deleted)."""

    person: Person
    redacted: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    # SQLite: the file was rewritten and its WAL emptied, so no old copy of a row remains;
    # False when another connection kept the WAL from being emptied.
    compacted: bool = True

    @property
    def total(self) -> int:
        return sum(self.redacted.values()) + sum(self.deleted.values())


# ---- SQL both backends run ------------------------------------------------------------------

Mark = Callable[[int], str]


def matching_sql(
    table: PersonalTable, mark: Mark, condition: Callable[[Column, str], str], tenant: bool
) -> str:
    """SELECT the rows of `table` any searched column of which `condition` (given the column
    and the pattern's placeholder) holds for; the pattern is argument 1, the tenant 2."""
    searched = " OR ".join(
        f"({c.name} IS NOT NULL AND {condition(c, mark(1))})" for c in table.columns
    )
    scope = f" AND {table.tenant} = {mark(2)}" if tenant else ""
    return (
        f"SELECT {table.select_list()} FROM {table.name}"  # noqa: S608
        f" WHERE ({searched}){scope}"
    )


def row_sql(table: PersonalTable, mark: Mark, *, lock: bool = False) -> str:
    where = " AND ".join(f"{k} = {mark(n)}" for n, k in enumerate(table.key, 1))
    return (
        f"SELECT {table.select_list()} FROM {table.name} WHERE {where}"  # noqa: S608
        + (" FOR UPDATE" if lock else "")
    )


def delete_sql(table: PersonalTable, mark: Mark) -> str:
    where = " AND ".join(f"{k} = {mark(n)}" for n, k in enumerate(table.key, 1))
    return f"DELETE FROM {table.name} WHERE {where}"  # noqa: S608


def update_sql(table: PersonalTable, columns: Sequence[str], mark: Mark) -> str:
    sets = ", ".join(f"{c} = {mark(n)}" for n, c in enumerate(columns, 1))
    where = " AND ".join(f"{k} = {mark(n)}" for n, k in enumerate(table.key, len(columns) + 1))
    return f"UPDATE {table.name} SET {sets} WHERE {where}"  # noqa: S608


def row_matches(table: PersonalTable, row: Mapping[str, Any], matcher: PersonMatcher) -> bool:
    return any(matcher.found(row[c.name]) for c in table.columns)


def found_rows(
    table: PersonalTable, rows: Sequence[Sequence[Any]], matcher: PersonMatcher
) -> FoundRows:
    """The rows (as `table.selected()` reads them) that are the person's."""
    names = table.selected()
    found = FoundRows()
    for values in rows:
        row = dict(zip(names, values, strict=True))
        if row_matches(table, row, matcher):
            found.keys.append(tuple(row[k] for k in table.key))
            found.references.append(table.reference(row))
    order = sorted(range(len(found.keys)), key=lambda i: found.references[i])
    found.keys = [found.keys[i] for i in order]
    found.references = [found.references[i] for i in order]
    return found


Change = tuple[Literal["delete"], None] | tuple[Literal["update"], dict[str, Any]]


def planned(table: PersonalTable, values: Sequence[Any], matcher: PersonMatcher) -> Change | None:
    """What erasing does to one row (read as `table.selected()`): delete it, update these
    columns, or nothing (it is not, or no longer, the person's)."""
    row = dict(zip(table.selected(), values, strict=True))
    if not row_matches(table, row, matcher):
        return None
    if table.delete or any(c.erase == "row" and matcher.found(row[c.name]) for c in table.columns):
        return ("delete", None)
    changes: dict[str, Any] = {}
    for column in table.columns:
        value = row[column.name]
        if value is None:
            continue
        if column.erase == "whole":
            changes[column.name] = column.marker
        elif column.erase == "clear":
            changes[column.name] = None
        elif column.erase == "parts" and matcher.found(value):
            changes[column.name] = matcher.substituted(value)
        elif column.erase == "key" and matcher.found(value):
            changes[column.name] = one_way(str(value))
    if table.status is not None:
        name, statuses, new = table.status
        if row[name] in statuses:
            changes[name] = new
    return ("update", changes)

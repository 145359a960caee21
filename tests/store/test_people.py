"""Finding a person in stored text: the forms an email and a phone number are stored in, what
must not match (a longer address or number, another country's), what an erase leaves, and the
PostgreSQL prefilter letting through everything the exact pattern matches."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.errors import UsageError
from gateway.store import SQLiteStore, open_store
from gateway.store.people import ERASED, NOT_PERSONAL, TABLES, Person, PersonMatcher, one_way
from tests.helpers.postgres import POSTGRES_URL, fresh_schema, unavailable

JANE = Person.of("Jane.Doe@Example.com", "+1 (415) 555-0123")
GERMAN = Person.of(None, "0049 151 12345678")

FOUND = [
    (JANE, "jane.doe@example.com"),
    (JANE, "JANE.DOE@EXAMPLE.COM"),
    (JANE, '{"a": {"b": [1, {"c": "Jane.Doe@example.com"}]}}'),
    (JANE, "email=jane.doe%40example.com&x=1"),
    (JANE, "%3Cjane.doe%40example.com%3E"),
    (JANE, '"jane.doe\\u0040example.com"'),
    (JANE, '"Contact:\\njane.doe@example.com"'),
    (JANE, "Jane Doe <jane.doe@example.com>"),
    (JANE, "+14155550123"),
    (JANE, "14155550123"),
    (JANE, "To=%2B14155550123&From=x"),
    (JANE, "+1 (415) 555-0123"),
    (JANE, "+1-415-555-0123"),
    (JANE, "%2B1+%28415%29+555-0123"),
    (JANE, "call (415) 555-0123 today"),
    (JANE, "415.555.0123"),
    (GERMAN, "+4915112345678"),
    (GERMAN, "004915112345678"),
    (GERMAN, "+49 (0)151 12345678"),
    (GERMAN, "0151 1234 5678"),
    (GERMAN, "015112345678"),
]
NOT_FOUND = [
    (JANE, "xjane.doe@example.com"),
    (JANE, "jane.doe@example.community"),
    (JANE, "jane.doe@example.com.au"),
    (JANE, "jane@example.com"),
    (JANE, "+141555501234"),
    (JANE, "+1 415 555 0124"),
    (JANE, "24155550123"),
    (JANE, "+44 415 555 0123"),  # the same national digits in another country
    (GERMAN, "+4915112345679"),
    (GERMAN, "+43 151 12345678"),
]


@pytest.mark.parametrize(("person", "text"), FOUND)
def test_the_forms_a_person_is_stored_in_are_found(person: Person, text: str) -> None:
    assert PersonMatcher(person).found(text)
    assert PersonMatcher(person).found(text.encode())  # bytes (event bodies) alike


@pytest.mark.parametrize(("person", "text"), NOT_FOUND)
def test_a_longer_or_other_address_or_number_is_not_found(person: Person, text: str) -> None:
    assert not PersonMatcher(person).found(text)


def test_substitution_leaves_nothing_to_find_and_the_rest_as_it_was() -> None:
    matcher = PersonMatcher(JANE)
    text = '{"to": "+1 (415) 555-0123", "cc": "bob@example.org", "email": "JANE.DOE@example.com"}'
    replaced = matcher.substituted(text)
    assert replaced == f'{{"to": "{ERASED}", "cc": "bob@example.org", "email": "{ERASED}"}}'
    assert not matcher.found(replaced)
    assert one_way("k") == one_way("k") != one_way("j")
    assert not matcher.found(one_way("jane.doe@example.com"))


@pytest.mark.parametrize(
    ("email", "phone", "message"),
    [
        (None, None, "name the person by email, phone or both"),
        ("  ", "", "name the person by email, phone or both"),
        ("jane", None, "email 'jane' is not an email address: expected name@domain"),
        (None, "call me", "phone 'call me' is not a phone number"),
        (None, "+1 555", "phone '+1 555' has 4 digits: expected an international number"),
    ],
)
def test_an_unusable_person_is_a_usage_error(
    email: str | None, phone: str | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("+", r"\+")):
        Person.of(email, phone)


def test_a_person_is_kept_normalised() -> None:
    assert (JANE.email, JANE.phone, JANE.tenant) == ("jane.doe@example.com", "14155550123", None)
    assert GERMAN.phone == "4915112345678"
    assert Person.of("a@b.io", None, "demo").described() == "email a@b.io in tenant demo"


def test_postgres_prefilter_lets_through_all_the_exact_pattern_finds() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    import asyncpg

    async def check() -> list[tuple[str, bool, bool]]:
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            results = []
            for person, text in [*FOUND, *NOT_FOUND]:
                as_text = await connection.fetchval("SELECT $1 ~* $2", text, person.prefilter())
                as_bytes = await connection.fetchval(
                    "SELECT encode($1::bytea, 'escape') ~* $2", text.encode(), person.prefilter()
                )
                results.append((text, bool(as_text), bool(as_bytes)))
            return results
        finally:
            await connection.close()

    results = asyncio.run(check())
    found = {text for _, text in FOUND}
    assert [r for r in results if r[0] in found and not (r[1] and r[2])] == []


def test_every_table_of_both_stores_is_searched_or_said_why_not(tmp_path: Path) -> None:
    """A table added later must say whether it holds personal data (people.py)."""
    covered = {t.name for t in TABLES} | set(NOT_PERSONAL)

    async def sqlite_tables() -> set[str]:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        await store.open()
        try:
            rows = await store.reader.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        finally:
            await store.close()
        return {r[0] for r in rows}

    async def postgres_tables(url: str) -> set[str]:
        import asyncpg

        store = open_store(url)
        await store.open()
        await store.close()
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            rows = await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1",
                url.rsplit("search_path=", 1)[1],
            )
        finally:
            await connection.close()
        return {r[0] for r in rows}

    found = asyncio.run(sqlite_tables())
    assert "records" in found and found - covered == set()
    with fresh_schema() as url:
        found = asyncio.run(postgres_tables(url))
    assert "leaders" in found and found - covered == set()

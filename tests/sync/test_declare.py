"""Declaring syncs: what lint accepts and refuses (schema, expression variables per place), and
the small pure pieces: Link headers, positions, body paths, record planning."""

from __future__ import annotations

import textwrap

import pytest

from gateway.config.lint import lint_documents
from gateway.config.syncs import SyncSpec
from gateway.store.sync_model import StoredRecord
from gateway.sync.incremental import Progress, put, set_path
from gateway.sync.pagination import Position, link_target
from gateway.sync.records import Incoming, plan_page, read_record, truthy
from tests.helpers.sync_harness import acme_yaml

GOOD = """
    endpoint: list_things
    schedule: {every: 15m}
    query: {mode: "{{ 'full' if state.full else 'changes' }}", from: "{{ now | isoformat }}"}
    paginate: {style: offset, in: body, offset_param: skip, limit_param: take, limit: 10}
    records: "{{ response.data }}"
    record: {id: "{{ record.id }}", updated_at: "{{ record.updated }}"}
    incremental:
      style: since
      in: body
      param: filter.updated.gte
      value: "{{ state.since | shift('-5m') | isoformat }}"
    conflict: provider_wins
    emit: {created: thing.created}
"""


def _lint(sync: str) -> list[str]:
    result = lint_documents({"integrations.d/acme.yaml": acme_yaml(sync)})
    return [d.text() for d in result.diagnostics]


def test_a_full_declaration_lints_clean() -> None:
    assert _lint(GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("in: body, offset_param", "in: header, offset_param", "[schema-enum]"),
        ("style: since", "style: sometimes", "[schema-enum]"),
        ('value: "{{ state.since', 'value: "{{ response.since', "variable 'response'"),
        ('records: "{{ response.data }}"', 'records: "{{ record.data }}"', "variable 'record'"),
        ("conflict: provider_wins", "conflict: newest", "[schema-enum]"),
        ("conflict: provider_wins", "lease: 5m", "unknown key 'lease'"),
    ],
)
def test_mistakes_are_named(old: str, new: str, expected: str) -> None:
    broken = textwrap.dedent(GOOD).replace(old, new)
    assert broken != textwrap.dedent(GOOD), old
    found = _lint(broken)
    assert any(expected in line for line in found), found


def test_link_header_relations() -> None:
    header = (
        '<https://api.test/items?page=1>; rel="first", '
        '<https://api.test/items?page=3>; rel="next last", '
        "<https://api.test/items?page=9>; rel=prev"
    )
    assert link_target(header) == "https://api.test/items?page=3"
    assert link_target(header, "prev") == "https://api.test/items?page=9"
    assert link_target(header, "other") is None
    assert link_target("") is None


def test_positions_round_trip_through_json() -> None:
    for position in (Position(url="https://x/y"), Position(page=3), Position(cursor="c")):
        assert Position.load(position.dump()) == position


def test_body_paths_and_query_names() -> None:
    body = {"filter": {"kind": "a"}, "limit": 5}
    assert set_path(body, "filter.since", 9) == {"filter": {"kind": "a", "since": 9}, "limit": 5}
    assert body == {"filter": {"kind": "a"}, "limit": 5}  # not changed in place
    assert put({"a": 1}, None, "query", "created[gte]", 7) == ({"a": 1, "created[gte]": 7}, None)


def test_progress_keeps_the_newest_since_and_the_last_token() -> None:
    spec = _spec("incremental: {style: since, param: s}")
    progress = Progress({"since": "2026-01-01T00:00:00Z", "since_ts": 1767225600.0})
    older = _incoming("a", "2025-12-01T00:00:00Z")
    progress.observe([older])
    assert progress.cursor(spec) == {"since": "2026-01-01T00:00:00Z", "since_ts": 1767225600.0}
    progress.observe([_incoming("b", "2026-02-01T00:00:00Z"), older])
    assert progress.cursor(spec)["since"] == "2026-02-01T00:00:00Z"
    assert Progress.load(progress.dump()) == progress


def test_truthiness_of_rendered_flags() -> None:
    assert [truthy(v) for v in (True, "true", "True", "1", "yes", 1)] == [True] * 6
    assert [truthy(v) for v in (False, "false", "False", "", "0", "none", 0, None)] == [False] * 8


def test_a_record_twice_on_one_page_meets_its_first_copy() -> None:
    spec = _spec()
    first, second = _incoming("a", "2026-01-02T00:00:00Z"), _incoming("a", "2026-01-01T00:00:00Z")
    plan = plan_page(spec, [first, second], {}, None)
    assert (plan.counts.created, plan.counts.conflicts) == (1, 1)
    assert [w.updated_at for w in plan.writes] == ["2026-01-02T00:00:00Z"]


def test_deleting_what_is_already_deleted_changes_nothing() -> None:
    spec = _spec()
    gone = _incoming("a", None, deleted=True)
    stored = {"a": StoredRecord("a", "other-hash", None, True)}
    plan = plan_page(spec, [gone], stored, None)
    assert (plan.counts.unchanged, plan.writes) == (1, [])


def _spec(extra: str = "") -> SyncSpec:
    declared = {
        "endpoint": "x",
        "schedule": {"every": "1h"},
        "records": "{{ response }}",
        "record": {"id": "{{ record.id }}", "updated_at": "{{ record.u }}"},
    }
    if extra:
        import yaml

        declared.update(yaml.safe_load(extra))
    return SyncSpec.build("acme", "things", declared)


def _incoming(record_id: str, updated: str | None, *, deleted: bool = False) -> Incoming:
    record = {"id": record_id, "u": updated or "", "deleted": deleted}
    found = read_record(_spec(), record, {}, 0)
    return Incoming(
        found.record_id,
        found.updated_at,
        found.updated_ts,
        deleted,
        found.data,
        found.content_hash,
    )

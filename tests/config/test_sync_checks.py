"""Lint of `as_webhook` and sync examples: what a sync needs to deliver records as webhooks,
and each example record run through the wrapping, the webhook's id and type and its mapping."""

from __future__ import annotations

import textwrap

import pytest

from gateway.config.lint import lint_documents
from tests.helpers.integrations import acme, api, webhook

EVENT_DOC = """\
---
kind: event
name: thing.made
fields:
  name: {type: string, required: true}
  size: {type: integer}
"""
MAP = {"made": '{emit: thing.made, data: {name: "{{ body.thing.name }}", size: "{{ body.size }}"}}'}
SYNC = """\
syncs:
  things:
    endpoint: list_things
    schedule: {every: 1h}
    records: "{{ response.data }}"
    record: {id: "{{ record.id }}", updated_at: "{{ record.updated }}"}
    as_webhook:
      when: "{{ record.state != 'draft' and (record.due | datetime) > now }}"
      max_age: 1d
      body: {id: "{{ record.id }}", type: made, size: 3, thing: {name: "{{ record.name }}"}}
    examples:
      live:
        record: {id: t1, name: Ada, state: live, due: "2025-06-11T00:00:00Z", updated: "2025-06-10T00:00:00Z"}
      draft:
        description: not delivered (when), so its missing name is not read
        record: {id: t2, state: draft, due: "2025-06-11T00:00:00Z", updated: "2025-06-10T00:00:00Z"}
      note:
        record: {id: t3, name: "{{ not a template }}", state: live, due: "2025-06-11T00:00:00Z", updated: "2025-06-10T00:00:00Z"}
"""
API = api(endpoints={"list_things": "{method: GET, path: /things}"})


def _lint(text: str) -> list[str]:
    result = lint_documents({"integrations.d/acme.yaml": text + EVENT_DOC})
    return [d.text() for d in result.diagnostics]


def _acme(sync: str = SYNC, hook: str | None = None) -> str:
    return acme(API, webhook(map=MAP) if hook is None else hook, sync)


def test_a_declared_as_webhook_with_examples_lints_clean() -> None:
    assert _lint(_acme()) == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            acme(API, SYNC),
            "as_webhook feeds records to webhook.map, and this integration has no webhook",
        ),
        (
            _acme(hook=webhook(map=MAP).replace('id: "{{ body.id }}", ', "")),
            "as_webhook needs webhook.event.id",
        ),
        (
            _acme(hook=webhook(map=MAP).replace("webhook:\n", "webhook:\n  format: form\n")),
            "as_webhook stores each record as a JSON body; this webhook's format is form",
        ),
        (
            _acme(SYNC.replace(', updated_at: "{{ record.updated }}"', "")),
            "max_age is measured from record.updated_at, which this sync does not declare",
        ),
    ],
    ids=["no-webhook", "no-event-id", "form", "max-age-without-updated-at"],
)
def test_what_as_webhook_needs_of_the_webhook_is_an_error(document: str, expected: str) -> None:
    found = _lint(document)
    assert any(expected in line and "[sync-as-webhook]" in line for line in found), found


def test_as_webhook_without_examples_is_a_warning() -> None:
    bare = SYNC.split("    examples:")[0]
    found = _lint(_acme(bare))
    assert len(found) == 1, found
    assert "warning: as_webhook without examples" in found[0]
    assert "[sync-example-missing]" in found[0]


def test_an_example_delivered_as_a_type_webhook_map_does_not_map_is_an_error() -> None:
    found = _lint(_acme(SYNC.replace("type: made", "type: built")))
    expected = (
        "sync example 'live': as_webhook delivers it as event type 'built', which webhook.map "
        "does not map (it maps: made) [sync-example-unmapped]"
    )
    assert any(line.endswith(expected) for line in found), found


def test_a_field_the_wrapping_reads_and_the_example_lacks_is_named_where_it_is_read() -> None:
    text = _acme(SYNC.replace("{{ record.name }}", "{{ record.title }}"))
    found = _lint(text)
    line = text.splitlines().index(
        next(x for x in text.splitlines() if "record.title" in x)
    ) + 1  # fmt: skip
    assert any(
        f"acme.yaml:{line}:" in f
        and "sync example 'live': it has no field 'title'" in f
        and "[example-missing-field]" in f
        for f in found
    ), found


def test_the_mapping_is_held_to_the_event_contract_for_a_sync_example() -> None:
    found = _lint(_acme(SYNC.replace("size: 3", "size: three")))
    assert any(
        "sync example 'live' of syncs.things: thing.made.size:" in f and "[contract-type]" in f
        for f in found
    ), found


def test_as_webhook_expressions_read_record_tenant_and_now_only() -> None:
    found = _lint(_acme(SYNC.replace('{{ record.id }}", type', '{{ response.id }}", type')))
    assert any("variable 'response' is not available here" in f for f in found), found


def test_a_sync_example_that_does_not_parse_as_the_records_expressions_want_is_named() -> None:
    found = _lint(_acme(SYNC.replace("record: {id: t1,", "record: {ident: t1,")))
    assert any("sync example 'live': it has no field 'id'" in f for f in found), found


def test_the_example_is_seen_at_its_updated_at_so_lint_does_not_depend_on_the_day() -> None:
    # due a day after updated: delivered whatever today is; due before it: not delivered
    past = SYNC.replace(
        'due: "2025-06-11T00:00:00Z", updated: "2025-06-10T00:00:00Z"}\n      draft',
        'due: "2025-06-09T00:00:00Z", updated: "2025-06-10T00:00:00Z"}\n      draft',
    ).replace("type: made", "type: built")
    assert past != SYNC
    found = _lint(_acme(past))
    assert not any("sync example 'live'" in f for f in found), found
    assert any("sync example 'note'" in f for f in found), found


def test_a_shipped_wrapping_reads_what_its_example_has() -> None:
    """The shipped Cal.com bookings example goes through BOOKING_CREATED's mapping: a field the
    mapping needs that the wrapping does not make is reported."""
    from tests.helpers import REPO

    calcom = (REPO / "integrations.d" / "calcom.yaml").read_text()
    broken = calcom.replace("            name: \"{{ record.hosts[0].name | default('') }}\"\n", "")
    assert broken != calcom
    events = (REPO / "integrations.d" / "events.yaml").read_text()
    result = lint_documents(
        {"integrations.d/calcom.yaml": broken, "integrations.d/events.yaml": events}
    )
    found = [d.text() for d in result.diagnostics if d.severity == "error"]
    assert any(
        "sync example 'booking_accepted' of syncs.bookings: booking.created requires "
        "organizer_name" in f
        for f in found
    ), textwrap.indent("\n".join(found), "  ")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "max_age: 1d",
            "max_age: soon",
            "as_webhook.max_age: 'soon' is not valid; expected a duration",
        ),
        (
            "max_age: 1d",
            "max_age: 1d\n      bogus: 1",
            "unknown key 'bogus' in syncs.things.as_webhook",
        ),
        ("record: {id: t1,", "recrod: {id: t1,", "missing required key 'record'"),
    ],
)
def test_schema_mistakes_in_as_webhook_are_named_where_they_stand(
    old: str, new: str, expected: str
) -> None:
    broken = SYNC.replace(old, new)
    assert broken != SYNC
    found = _lint(_acme(broken))
    assert any(expected in f for f in found), found


def test_as_webhook_true_delivers_each_record_as_the_body_it_is() -> None:
    from datetime import UTC, datetime

    from gateway.config.pipeline import Pipeline
    from gateway.config.syncs import SyncSpec

    raw = {
        "endpoint": "list_things",
        "schedule": {"every": "1h"},
        "records": "{{ response.data }}",
        "record": {"id": "{{ record.id }}"},
        "as_webhook": True,
    }
    spec = SyncSpec.build("acme", "things", raw)
    assert spec.as_webhook is not None and spec.as_webhook.body is None
    pipeline = Pipeline.build({"event": {"id": "{{ body.id }}", "type": "{{ body.kind }}"}})
    record = {"id": "evt_9", "kind": "made"}
    delivery = spec.as_webhook.deliver(
        pipeline, record, integration="acme", tenant="t1", tenant_vars={}, now=datetime.now(UTC)
    )
    assert delivery is not None
    assert (delivery.payload, delivery.provider_id, delivery.type) == (record, "evt_9", "made")
    off = SyncSpec.build("acme", "things", {**raw, "as_webhook": False})
    assert off.as_webhook is None
    bodies = """\
syncs:
  things:
    endpoint: list_things
    schedule: {every: 1h}
    records: "{{ response.data }}"
    record: {id: "{{ record.id }}"}
    as_webhook: true
    examples:
      made: {record: {id: evt_1, type: made, thing: {name: Ada}}}
      unnamed: {record: {id: evt_2, type: made, thing: {}}}
"""
    found = _lint(_acme(bodies))
    assert len(found) == 1 and "sync example 'unnamed'" in found[0], found


def test_the_webhook_expressions_read_the_body_as_it_is_stored() -> None:
    import json
    from datetime import UTC, datetime

    from gateway.config.pipeline import Pipeline
    from gateway.config.syncs import AsWebhook

    wrapping = AsWebhook.build("things", {"body": {"id": "{{ record.id }}", "at": "{{ now }}"}})
    assert wrapping is not None
    pipeline = Pipeline.build({"event": {"id": "{{ body.id }}:{{ body.at[:4] }}"}})
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    delivery = wrapping.deliver(
        pipeline, {"id": "t1"}, integration="acme", tenant="default", tenant_vars={}, now=now
    )
    assert delivery is not None and delivery.failures == []
    stored = {"id": "t1", "at": "2026-01-02 03:04:05+00:00"}
    assert json.loads(delivery.body) == delivery.payload == stored
    assert delivery.provider_id == "t1:2026"  # a slice of text: it read the stored JSON

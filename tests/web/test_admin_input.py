"""Admin API parameters and bodies that are not what they should be are 400s in the one error
shape, never 500s: non-ASCII digits (`int()` takes `²` and `١٢`), bodies nested past the JSON
parser's recursion limit, values of the wrong type."""

from __future__ import annotations

import pytest

from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN, AppFactory

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ODD_NUMBERS = [
    "²",
    "١٢",
    "\uff11\uff10",
    "1e3",
    "-1",
    "0",
    "501",
    "99999999999999999999",
    " 5",
    "",
    "x",
]


@pytest.mark.parametrize("path", ["/admin/api/syncs", "/admin/api/events", "/admin/api/jobs"])
@pytest.mark.parametrize("limit", ODD_NUMBERS)
def test_a_limit_that_is_not_ascii_digits_in_range_is_a_400(
    make_client: AppFactory, path: str, limit: str
) -> None:
    client = make_client(REPO / "integrations.d")
    answer = client.get(path, params={"limit": limit}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "bad_request"
    assert "limit" in answer.json()["error"]["message"]


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", ["²", "١٢٣", "nan", "inf", "1e400", "9" * 30, "not a time"])
def test_a_time_that_is_not_a_time_is_a_400(make_client: AppFactory, name: str, value: str) -> None:
    client = make_client(REPO / "integrations.d")
    answer = client.get("/admin/api/jobs", params={name: value}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "bad_request"


def test_times_still_read_epoch_seconds_and_iso_8601(make_client: AppFactory) -> None:
    client = make_client(REPO / "integrations.d")
    for value in ("1767225600", "1767225600.5", "2026-01-01T00:00:00Z"):
        answer = client.get("/admin/api/jobs", params={"since": value}, headers=AUTH)
        assert answer.status_code == 200, (value, answer.text)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"status": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"status": ' + b"[" * 500 + b"]" * 500 + b"}",
        b'{"status": {"a": 1}}',
        b'{"status": true}',
        b"\xff\xfe",
        b"[1]",
        b"{",
    ],
)
def test_a_retry_body_that_is_not_a_flat_json_object_is_a_400(
    make_client: AppFactory, body: bytes
) -> None:
    client = make_client(REPO / "integrations.d")
    answer = client.post("/admin/api/jobs/retry", content=body, headers=AUTH)
    assert answer.status_code == 400, answer.text[:200]
    assert answer.json()["error"]["code"] == "bad_request"


def test_a_flat_retry_body_still_retries(make_client: AppFactory) -> None:
    client = make_client(REPO / "integrations.d")
    for body in (b"", b"{}", b'{"integration": "stripe", "since": 1767225600}'):
        answer = client.post("/admin/api/jobs/retry", content=body, headers=AUTH)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "queued", "retried": 0}

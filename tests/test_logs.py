"""`--log-format json`: one object per line with the context fields; nothing else leaks."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from gateway.logs import JsonFormatter, StderrHandler, log_context


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("gateway", logging.ERROR, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_json_line_carries_the_context_and_the_extra_fields() -> None:
    formatter = JsonFormatter()
    with log_context(job_id="job_1", event_id="evt_1", integration="acme", tenant=None):
        line = formatter.format(_record("job %s is dead", "job_1", tenant="clinic"))
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["message"] == "job job_1 is dead"
    assert parsed["level"] == "error"
    assert parsed["logger"] == "gateway"
    assert (parsed["job_id"], parsed["event_id"]) == ("job_1", "evt_1")
    assert (parsed["integration"], parsed["tenant"]) == ("acme", "clinic")


def test_the_context_ends_with_its_block() -> None:
    with log_context(job_id="job_1"):
        pass
    parsed = json.loads(JsonFormatter().format(_record("idle")))
    assert "job_id" not in parsed


def test_a_json_line_holds_only_known_fields_never_other_record_attributes() -> None:
    record = _record("calling", secret_token="sk_live_123", authorization="Bearer sk_live_123")
    line = JsonFormatter().format(record)
    assert "sk_live_123" not in line
    assert set(json.loads(line)) == {"time", "level", "logger", "message"}


def test_an_exception_is_one_field_of_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "gateway", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_the_handler_writes_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    handler = StderrHandler()
    logger = logging.getLogger("test.stderr-of-the-moment")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("one")
        first.close()  # as a test's captured stream is closed while a server thread still logs
        monkeypatch.setattr(sys, "stderr", second)
        logger.warning("two")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert second.getvalue() == "two\n"

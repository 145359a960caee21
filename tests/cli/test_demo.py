"""`gateway demo`: a fresh database each run, examples moved to now, and each provider call
printed with the event, flow and action that made it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config.example_times import shift_times
from gateway.errors import UsageError
from tests.helpers import REPO
from tests.helpers.servers import free_port, wait_healthy

BOOKING = ["simulate", "calcom", "booking_created", "--tenant", "demo"]


class Demo:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in the demo's output:\n{''.join(self.lines)}")


@contextmanager
def running_demo(folder: Path, *extra: str) -> Iterator[Demo]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--port", str(port),
         "--integrations", str(REPO / "integrations.d"), *extra],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    demo: Demo | None = None
    try:
        wait_healthy(url, process)  # type: ignore[arg-type]
        demo = Demo(process, url)
        yield demo
    finally:
        process.terminate()
        process.wait(timeout=20)
        if demo is not None:
            demo.reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def test_the_demo_plays_a_call_that_books_and_shows_the_booking_and_its_confirmation(
    tmp_path: Path,
) -> None:
    with running_demo(tmp_path) as demo:
        asked = demo.wait_for("call    -> POST /functions/retell/book_appointment/demo", 20)
        assert "Jane Doe" in asked
        answer = demo.wait_for("agent   <- ", timeout=20)
        assert answer.startswith("agent   <- 200 Booked for ")
        booking = demo.wait_for("booking    ", timeout=20)
        assert "for Jane Doe" in booking and "BOOKING_CREATED posted -> 200" in booking
        made = demo.wait_for("provider <- POST /calcom/v2/bookings -> 201", timeout=20)
        assert "[event" not in made  # made by the function during the call, not by a flow
        sms = demo.wait_for("flow booking-confirmation, action sms-confirmation", timeout=20)
        assert "provider <- POST /twilio/" in sms
        mail = demo.wait_for("flow booking-confirmation, action email-confirmation", timeout=20)
        assert "provider <- POST /sendgrid/v3/mail/send -> 202" in mail


def _simulate(folder: Path, url: str, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    for line in (folder / "var" / "demo.env").read_text().splitlines():
        name, _, value = line.partition("=")
        monkeypatch.setenv(name, value)
    argv = [*BOOKING, "--url", url, "--integrations", str(REPO / "integrations.d"), *extra]
    return main([*argv, "--db", f"sqlite:///{folder / 'var' / 'demo.db'}"])


def test_the_demo_shows_the_reminder_and_who_made_each_call_and_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_demo(tmp_path, "--no-call") as demo:  # what the demo prints comes from here
        # The booking 24 hours and 3 seconds from now: its reminder is due in 3 seconds.
        assert _simulate(tmp_path, demo.url, monkeypatch, "--at", "payload.startTime=24h3s") == 0
        assert '"accepted"' in capsys.readouterr().out
        confirmation = demo.wait_for("flow booking-confirmation", timeout=15)
        assert "provider <- POST /twilio/" in confirmation or "[event evt_" in confirmation
        # Due, the reminder asks Cal.com whether the booking still stands, then texts.
        looked_up = demo.wait_for("flow booking-reminder, action schedule-reminder,", 20)
        assert "provider <- GET /calcom/v2/bookings/" in looked_up
        reminder = demo.wait_for("flow booking-reminder, action schedule-reminder/sms", 20)
        assert "provider <- POST /twilio/" in reminder and "[event evt_" in reminder
    with running_demo(tmp_path) as demo:  # a second run: the same webhook is new again
        assert _simulate(tmp_path, demo.url, monkeypatch) == 0
        out = capsys.readouterr().out
        assert '"accepted"' in out and '"duplicate"' not in out


def test_shift_times_moves_every_time_of_the_body_by_as_much() -> None:
    example = {
        "headers": {"X-Sent": "2025-06-10T14:02:11Z"},  # headers are left alone
        "body": {
            "createdAt": "2025-06-10T14:02:11.538Z",
            "payload": {
                "startTime": "2025-06-12T08:00:00Z",
                "endTime": "2025-06-12T10:30:00+02:00",
                "slots": ["2025-06-12T09:00:00", "not a time"],
                "count": 3,
            },
        },
    }
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    shifted = shift_times(example, "payload.startTime", moment)
    payload = shifted["body"]["payload"]
    assert payload["startTime"] == "2030-01-02T03:04:05Z"
    assert payload["endTime"] == "2030-01-02T05:34:05+02:00"  # 30 minutes after, its own zone
    assert payload["slots"] == ["2030-01-02T04:04:05", "not a time"]
    assert shifted["body"]["createdAt"] == "2029-12-31T09:06:16.538Z"
    assert payload["count"] == 3 and shifted["headers"] == example["headers"]
    assert example["body"]["payload"]["startTime"] == "2025-06-12T08:00:00Z"  # a copy
    with pytest.raises(UsageError, match=r"no ISO 8601 time at 'payload\.nope'"):
        shift_times(example, "payload.nope", moment)


def test_simulate_at_refuses_what_is_not_field_equals_duration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for bad in ("payload.startTime", "payload.startTime=soon", "payload.startTime=24h junk"):
        with pytest.raises(SystemExit) as exited:
            main([*BOOKING, "--at", bad])
        assert exited.value.code == 2, bad
    assert "FIELD=DURATION" in capsys.readouterr().err

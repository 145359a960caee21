"""Three replicas of `gateway serve` on one PostgreSQL schema (real processes): they all come
up when started at the same instant; a killed leader is replaced within its lease, a stopped
one hands over at once; 300 SMS jobs to a provider declared at 25 a second never
reach it faster, even after one replica is killed with SIGKILL mid-run, and every SMS is sent
exactly once; the sync scheduled every 2 s runs once per interval, not once per replica.

The provider stand-in honours the idempotency key (as Twilio and Stripe do): a job a killed
replica had in flight is run again by another, with the same key, and acts once. Skipped,
saying why, when no PostgreSQL answers (tests/helpers/postgres.py).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.helpers.postgres import fresh_schema
from tests.helpers.servers import gateway_processes
from tests.helpers.signatures import stripe_header

SECRET = "whsec_replicas"
PER_SECOND = 25
JOBS = 300
SYNC_EVERY = 2.0

INTEGRATION = """\
kind: integration
name: acme
api:
  base_url: http://127.0.0.1:{port}
  auth: {{type: bearer, token: "${{secret:ACME_KEY}}"}}
  timeout: 5s
  rate_limit: {{per_second: {per_second}, per_hour: 100000, max_wait: 30s}}
  retry: {{max_attempts: 20, backoff: constant, base: 1s, jitter: false}}
  endpoints:
    send_sms: {{method: POST, path: /sms, idempotency_header: Idempotency-Key}}
    list_things: {{method: GET, path: /things}}
webhook:
  verify:
    scheme: hmac
    algorithm: sha256
    secret: ${{secret:ACME_SECRET}}
    signature: {{header: Acme-Signature, format: pairs, key: v1}}
    timestamp: {{param: t, tolerance: 5m, direction: past}}
    signed: "{{timestamp}}.{{body}}"
  event: {{id: "{{{{ body.id }}}}", type: "{{{{ body.type }}}}"}}
  map:
    booking.made: {{emit: booking.made, data: {{id: "{{{{ body.id }}}}"}}}}
syncs:
  things:
    endpoint: list_things
    schedule: {{every: {every}s}}
    records: "{{{{ response.data }}}}"
    record: {{id: "{{{{ record.id }}}}"}}
"""
FLOW = """\
kind: flow
name: confirm-by-sms
event: booking.made
actions:
  - name: sms
    call: {endpoint: acme.send_sms, body: {id: "{{ event.data.id }}"}}
"""


class Provider(ThreadingHTTPServer):
    """Records every request; acts once per idempotency key."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.sms: list[tuple[float, str, str]] = []  # (arrival, idempotency key, body id)
        self.sent: dict[str, str] = {}  # idempotency key -> the body id it sent
        self.syncs: list[float] = []


class _Handler(BaseHTTPRequestHandler):
    server: Provider

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        content = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def do_POST(self) -> None:
        arrived = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = self.headers.get("Idempotency-Key", "")
        with self.server.lock:
            self.server.sms.append((arrived, key, body["id"]))
            self.server.sent.setdefault(key, body["id"])
        time.sleep(0.01)
        self._answer(201, {"sid": key})

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.syncs.append(time.monotonic())
        self._answer(200, {"data": []})


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def most_in_any_window(times: list[float], seconds: float) -> int:
    ordered = sorted(times)
    best = j = 0
    for i, at in enumerate(ordered):
        while ordered[j] + seconds <= at:
            j += 1
        best = max(best, i - j + 1)
    return best


def _post(url: str, n: int, client: httpx.Client) -> None:
    body = json.dumps({"id": f"bk_{n:03d}", "type": "booking.made"}).encode()
    response = client.post(
        f"{url}/webhooks/acme",
        content=body,
        headers={"Acme-Signature": stripe_header(body, SECRET)},
    )
    assert response.status_code == 200, response.text


def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    import asyncio

    import asyncpg

    async def read() -> list[tuple[object, ...]]:
        connection = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    return asyncio.run(read())


def _leader_pid(url: str) -> int | None:
    rows = _fetch(url, "SELECT holder FROM leaders WHERE until > gateway_now()")
    return int(str(rows[0][0]).split(":")[1]) if rows else None


def test_three_replicas_share_limits_send_once_and_sync_once(
    tmp_path: Path, provider: Provider
) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    port = provider.server_address[1]
    (folder / "acme.yaml").write_text(
        INTEGRATION.format(port=port, per_second=PER_SECOND, every=f"{SYNC_EVERY:g}")
    )
    (folder / "flow.yaml").write_text(FLOW)
    env = {"ACME_SECRET": SECRET, "ACME_KEY": "sk_acme"}
    extra = ["--job-lease", "3s", "--leader-lease", "3s"]
    with fresh_schema() as url, gateway_processes(3, folder, url, env, extra) as replicas:
        # all three started at the same instant and came up (no DDL deadlock)
        started = time.monotonic()
        with httpx.Client(timeout=10) as client:
            for n in range(JOBS):
                _post(replicas[n % 3].url, n, client)
        deadline = time.monotonic() + 20
        while len(provider.sent) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        leader = _leader_pid(url)
        victim = next(r for r in replicas if r.process.pid != leader)
        victim.kill()  # mid-run: it holds jobs claimed, some in flight
        deadline = time.monotonic() + 40
        while len(provider.sent) < JOBS and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # anything sent late would show as a second send
        elapsed = time.monotonic() - started
        starts = [float(row[0]) for row in _fetch(url, "SELECT started FROM rate_starts")]  # type: ignore[arg-type]

    arrivals = [at for at, _, _ in provider.sms]
    ids = Counter(body_id for body_id in provider.sent.values())
    assert set(ids) == {f"bk_{n:03d}" for n in range(JOBS)}  # every SMS sent...
    assert max(ids.values()) == 1  # ...exactly once: one idempotency key per SMS
    resent = len(provider.sms) - JOBS
    assert resent <= 16 * 3, f"{resent} repeated requests"  # only what the victim held
    # never faster than declared, whichever replica sent: the limiter's log (the database's
    # clock) holds at most PER_SECOND starts in any second, exactly...
    assert len(starts) >= JOBS
    assert most_in_any_window(starts, 1.0) == PER_SECOND
    # ...and so does what the provider saw, but for the time between a permit and its request
    # reaching the provider (tens of ms on a busy machine: 20% of a window scaled to a second,
    # a rounding error of the minute-long windows providers declare)
    assert most_in_any_window(arrivals, 0.8) <= PER_SECOND
    assert max(arrivals) - min(arrivals) >= JOBS / PER_SECOND - 1.5
    # the sync ran on one replica at a time: once per interval, not three times
    syncs = sorted(provider.syncs)
    assert len(syncs) >= 3
    assert len(syncs) <= elapsed / SYNC_EVERY + 1
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(syncs)]
    # Replicas each running the sync would run it within milliseconds of each other; a new
    # leader taking over after the kill may run it early, so a loaded machine sees gaps of
    # half an interval and a little less.
    assert min(gaps) > SYNC_EVERY / 4, gaps


def test_a_killed_leader_is_replaced_within_the_lease_and_one_stopped_hands_over(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(
        INTEGRATION.format(port=9, per_second=PER_SECOND, every="3600")
    )
    env = {"ACME_SECRET": SECRET, "ACME_KEY": "sk_acme"}
    lease = 2.0
    with (
        fresh_schema() as url,
        gateway_processes(3, folder, url, env, ["--leader-lease", f"{lease:g}s"]) as replicas,
    ):
        by_pid = {r.process.pid: r for r in replicas}

        def leader_after(previous: int | None, within: float) -> int:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                found = _leader_pid(url)
                if found is not None and found != previous and found in by_pid:
                    return found
                time.sleep(0.05)
            raise AssertionError(f"no new leader within {within}s")

        first = leader_after(None, lease)
        killed_at = time.monotonic()
        by_pid.pop(first).kill()
        second = leader_after(first, lease + 1.0)
        assert time.monotonic() - killed_at <= lease + 1.0
        stopped = by_pid.pop(second)
        stopped.process.terminate()  # a clean shutdown gives the lease up
        stopped.process.wait(timeout=10)
        handed_at = time.monotonic()
        third = leader_after(second, lease)
        assert third in by_pid
        # at another replica's next claim (every third of the lease), long before the lease
        # it last renewed (at least two thirds of it left) would have run out
        assert time.monotonic() - handed_at < lease / 2


def test_a_tenant_stored_or_removed_reaches_every_replica_within_the_ttl(tmp_path: Path) -> None:
    import asyncio

    from cryptography.fernet import Fernet

    from gateway.credentials.secrets import Cipher
    from gateway.store.postgres import PostgresStore

    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(
        INTEGRATION.format(port=9, per_second=PER_SECOND, every="3600")
    )
    key = Fernet.generate_key().decode()
    ttl = 1.0
    env = {
        "ACME_SECRET": SECRET,
        "ACME_KEY": "sk_acme",
        "GATEWAY_SECRET_KEY": key,
        "GATEWAY_CREDENTIALS_TTL": f"{ttl:g}s",
    }
    tenant_secret = "whsec_tenant_new"

    def status(replica_url: str, n: int) -> int:
        body = json.dumps({"id": f"evt_t_{n}", "type": "booking.made"}).encode()
        return httpx.post(
            f"{replica_url}/webhooks/acme/t_new",
            content=body,
            headers={"Acme-Signature": stripe_header(body, tenant_secret)},
            timeout=5,
        ).status_code

    def until(expected: int, urls: list[str]) -> float:
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < ttl + 3:
            n += 1
            if all(status(u, n * 10 + i) == expected for i, u in enumerate(urls)):
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"replicas did not answer {expected} within {ttl + 3}s")

    async def change(url: str, store: bool) -> None:
        db = PostgresStore(url)
        await db.open()
        try:
            if store:
                token = Cipher([key]).encrypt(tenant_secret)
                await db.set_credential("t_new", "acme", "ACME_SECRET", token)
            else:
                assert await db.delete_credential("t_new", "acme", "ACME_SECRET")
        finally:
            await db.close()

    with fresh_schema() as url, gateway_processes(3, folder, url, env) as replicas:
        urls = [r.url for r in replicas]
        assert [status(u, i) for i, u in enumerate(urls)] == [404, 404, 404]
        asyncio.run(change(url, store=True))  # as `gateway credentials set` does, anywhere
        assert until(200, urls) <= ttl + 1.0
        asyncio.run(change(url, store=False))
        assert until(404, urls) <= ttl + 1.0

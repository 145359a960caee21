"""An event answered 200 survives SIGKILL of the server mid-load."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from tests.helpers.integrations import acme, webhook
from tests.helpers.servers import gateway_process
from tests.helpers.signatures import stripe_header

SECRET = "whsec_durability"
ACME = acme(webhook())


def _load(url: str, acknowledged: list[str], stop: threading.Event, workers: int = 8) -> None:
    counter = iter(range(10**9))
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                with lock:
                    n = next(counter)
                body = json.dumps({"id": f"evt_{n}", "type": "load.test"}).encode()
                try:
                    response = client.post(
                        f"{url}/webhooks/acme",
                        content=body,
                        headers={"Acme-Signature": stripe_header(body, SECRET)},
                    )
                except httpx.TransportError:
                    return  # the server died under us: that request was never acknowledged
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(response.json()["event_id"])

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_every_acknowledged_event_survives_sigkill(tmp_path: Path) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(ACME)
    db = tmp_path / "gateway.db"
    env = {"ACME_SECRET": SECRET}
    acknowledged: list[str] = []
    stop = threading.Event()
    with gateway_process(folder, db, env) as server:
        loader = threading.Thread(target=_load, args=(server.url, acknowledged, stop))
        loader.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 400 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()  # mid-load: requests are in flight
        stop.set()
        loader.join()
    assert len(acknowledged) >= 400
    with gateway_process(folder, db, env):  # restart: recovery from the WAL
        pass
    with sqlite3.connect(db) as connection:
        stored = {row[0] for row in connection.execute("SELECT id FROM events")}
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged events lost"

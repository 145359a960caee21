"""A sync engine on a temporary SQLite file, calling a mock provider (httpx.MockTransport),
with a fake clock and a sleep that only records: shared by the tests in tests/sync/ and tests/cli/."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from gateway.config.model import Config, load_config
from gateway.credentials.secrets import SecretSource
from gateway.outbound import MemoryTokenStore, OutboundClient
from gateway.store import SQLiteStore
from gateway.store.sync_model import StoredRecord, SyncKey, SyncRunQuery, SyncState
from gateway.sync.runner import RunSummary, SyncRunner
from tests.helpers.integrations import BASE_URL, BEARER, acme, api

BASE = BASE_URL
T0 = 1_750_000_000.0
Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]

ACME = acme(
    api(
        auth=BEARER,
        retry="{max_attempts: 3, backoff: constant, base: 2s, jitter: false, retry_on: [429, 5xx, network]}",
        endpoints={
            "list_things": "{method: GET, path: /things}",
            "search_things": "{method: POST, path: /things/search}",
            "calendar": '{method: GET, path: "/users/{user}/delta", headers: {Prefer: odata.maxpagesize=2}}',
        },
    ),
    "syncs:\n  things:\n",
)


def acme_yaml(sync: str, base: str = ACME) -> str:
    """`base` (the acme integration, up to ``syncs: things:``) with the sync `things`."""
    return base + textwrap.indent(textwrap.dedent(sync).strip("\n"), "    ") + "\n"


def write_config(
    tmp_path: Path, sync: str, extra: Mapping[str, str] | None = None, base: str = ACME
) -> Path:
    folder = tmp_path / "integrations.d"
    folder.mkdir(exist_ok=True)
    (folder / "acme.yaml").write_text(acme_yaml(sync, base))
    for name, text in (extra or {}).items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Harness:
    """`async with Harness(tmp_path, sync_yaml, handler) as h: await h.run()`."""

    def __init__(
        self,
        tmp_path: Path,
        sync: str,
        handler: Handler,
        *,
        extra: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        lease: float = 600.0,
        base: str = ACME,
    ) -> None:
        self.environ = {"ACME_KEY": "sk_test_acme", **(environ or {})}
        folder = write_config(tmp_path, sync, extra, base)
        self.config: Config = load_config(folder, self.environ)
        self.store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        self.clock = Clock()
        self.sleeps: list[float] = []
        self.requests: list[httpx.Request] = []
        self.handler = handler
        self.events_woken = 0
        self.outbound = OutboundClient(
            self.config,
            SecretSource(self.environ),
            MemoryTokenStore(),
            transport=httpx.MockTransport(self._handle),
        )
        self.runner = SyncRunner(
            self.config,
            self.store,
            self.outbound,
            clock=self.clock,
            sleep=self._sleep,
            lease=lease,
            on_events=self._woken,
        )

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.handler(request)
        if not isinstance(answer, httpx.Response):
            answer = await answer
        return answer

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def _woken(self) -> None:
        self.events_woken += 1

    async def __aenter__(self) -> Harness:
        await self.store.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.outbound.aclose()
        await self.store.close()

    key = SyncKey("acme", "default", "things")

    async def run(self, *, full: bool = False, tenant: str = "default") -> RunSummary:
        return await self.runner.run("acme", "things", tenant, full=full)

    async def record(self, record_id: str) -> StoredRecord | None:
        return await self.store.get_sync_record(self.key, record_id)

    async def data(self, record_id: str) -> Any:
        found = await self.record(record_id)
        assert found is not None and found.data is not None
        return json.loads(found.data)

    async def state(self) -> SyncState:
        found = await self.store.get_sync_state(self.key)
        assert found is not None
        return found

    async def cursor(self) -> Any:
        state = await self.state()
        return json.loads(state.cursor) if state.cursor else None

    async def counts(self) -> tuple[int, int]:
        return await self.store.count_sync_records(self.key)

    async def runs(self) -> list[Any]:
        return await self.store.list_sync_runs(SyncRunQuery(limit=100))


def query(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def body(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def thing(n: int, updated: int | None = None, **extra: Any) -> dict[str, Any]:
    """Record n, updated at minute `updated` (default n) after T0, ISO 8601."""
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(T0 + 60 * (n if updated is None else updated), UTC)
    return {
        "id": f"t{n}",
        "name": f"thing {n}",
        "updated": moment.isoformat().replace("+00:00", "Z"),
        **extra,
    }

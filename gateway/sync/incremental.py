"""Incremental state: the since value (the newest updated_at seen) or the provider's opaque
token, where it goes in a request, and what a run has learnt of the next one so far.

The committed cursor is ``{"since": raw, "since_ts": seconds}`` or ``{"token": text}``; it only
changes when a run commits its last page. Until then a run's progress is kept beside its resume
point, so a resumed run goes on with the state it started with.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.config.syncs import SyncSpec
from gateway.expr.expressions import RENDER_ERRORS
from gateway.sync.records import Incoming
from gateway.sync.spec import SyncError


def set_path(target: Any, dotted: str, value: Any) -> dict[str, Any]:
    """A copy of the mapping `target` with `value` at the dotted path (maps made as needed)."""
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    node = result
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}
        node = node[part]
    node[parts[-1]] = value
    return result


def put(query: Any, body: Any, into: str, name: str, value: Any) -> tuple[Any, Any]:
    """(query, body) with `value` at `name`: a query parameter, or a dotted path in the body."""
    if into == "body":
        return query, set_path(body, name, value)
    result = dict(query) if isinstance(query, Mapping) else {}
    result[name] = value  # a query parameter's name is taken as written (created[gte])
    return result, body


@dataclass
class Progress:
    """The incremental state a run started from, and what it has seen since."""

    start: dict[str, Any] = field(default_factory=dict)
    since: Any = None
    since_ts: float | None = None
    token: str | None = None

    @property
    def full(self) -> bool:
        return not self.start

    def observe(self, records: Sequence[Incoming]) -> None:
        for record in records:
            if record.updated_ts is not None and (
                self.since_ts is None or record.updated_ts > self.since_ts
            ):
                self.since, self.since_ts = record.updated_at, record.updated_ts

    def observe_token(self, spec: SyncSpec, variables: Mapping[str, Any]) -> None:
        inc = spec.incremental
        if inc is None or inc.token is None:
            return
        try:
            found = inc.token.render(variables)
        except RENDER_ERRORS as exc:
            raise SyncError(f"incremental token ({inc.token.source.strip()}): {exc}") from None
        if found not in (None, ""):
            self.token = str(found)

    def cursor(self, spec: SyncSpec) -> dict[str, Any]:
        """The incremental state to commit when the run finishes."""
        inc = spec.incremental
        if inc is None:
            return {}
        if inc.style == "token":
            token = self.token or self.start.get("token")
            return {"token": token} if token else {}
        start_ts = self.start.get("since_ts")
        if self.since_ts is not None and (start_ts is None or self.since_ts > start_ts):
            return {"since": self.since, "since_ts": self.since_ts}
        return dict(self.start)

    def dump(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "since": self.since,
            "since_ts": self.since_ts,
            "token": self.token,
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Progress:
        return cls(
            dict(data.get("start") or {}),
            data.get("since"),
            data.get("since_ts"),
            data.get("token"),
        )


def state_variables(progress: Progress) -> dict[str, Any]:
    """What ``state`` is in a sync's templates."""
    return {
        "since": progress.start.get("since"),
        "token": progress.start.get("token"),
        "full": progress.full,
    }


def start_url(spec: SyncSpec, progress: Progress) -> str | None:
    """The stored token when it is a whole URL to call (Graph deltaLink)."""
    inc = spec.incremental
    token = progress.start.get("token")
    if inc is not None and inc.style == "token" and inc.token_is_url and token:
        return str(token)
    return None


def apply(
    spec: SyncSpec,
    progress: Progress,
    query: Any,
    body: Any,
    *,
    tenant: Mapping[str, Any],
    now: datetime,
) -> tuple[Any, Any]:
    """(query, body) with the since value or token put where the sync declares."""
    inc = spec.incremental
    if inc is None or inc.param is None or inc.token_is_url:
        return query, body
    stored = progress.start.get("since" if inc.style == "since" else "token")
    if stored is None:
        return query, body
    value = stored
    if inc.value is not None:
        variables = {"state": state_variables(progress), "tenant": tenant, "now": now}
        try:
            value = inc.value.render(variables)
        except RENDER_ERRORS as exc:
            raise SyncError(f"incremental value ({inc.value.source.strip()}): {exc}") from None
    return put(copy.deepcopy(query), copy.deepcopy(body), inc.into, inc.param, value)

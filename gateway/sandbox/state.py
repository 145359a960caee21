"""The sandbox's state: the rules in force and the requests received.

The server's event loop writes it and tests read it from their own thread, so every access
holds one lock; ``wait_for_requests`` blocks the calling thread (never call it on the loop).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.sandbox.recording import RecordedRequest
from gateway.sandbox.rules import ResponseRule, RuleError

RuleLike = ResponseRule | Mapping[str, Any]


@dataclass
class _Active:
    rule: ResponseRule
    remaining: int | None  # None: unlimited


@dataclass(frozen=True)
class Matched:
    """The rule that answers a request (None: the default answer) and its path wildcards."""

    request: RecordedRequest
    rule: ResponseRule | None
    wildcards: list[str]


def as_rules(rules: Iterable[RuleLike]) -> list[ResponseRule]:
    out: list[ResponseRule] = []
    for index, rule in enumerate(rules):
        if isinstance(rule, ResponseRule):
            out.append(rule)
            continue
        try:
            out.append(ResponseRule.from_dict(rule))
        except RuleError as exc:
            raise RuleError(f"rules[{index}]: {exc}") from None
    return out


def _under(path: str, prefix: str | None) -> bool:
    if not prefix:
        return True
    base = prefix.rstrip("/")
    return path == base or path.startswith(base + "/")


class Sandbox:
    """Rules in order (the first that matches answers) and the requests received, in order.

    ``record_limit`` bounds memory in long demos and benchmarks: the oldest requests are
    forgotten first. Sequence numbers keep counting across resets, so templated ids stay unique.
    """

    def __init__(
        self,
        rules: Iterable[RuleLike] = (),
        *,
        default_status: int = 200,
        record_limit: int | None = 10_000,
    ) -> None:
        self._cond = threading.Condition()
        self._loaded = tuple(as_rules(rules))
        self._active = [_Active(r, r.times) for r in self._loaded]
        self._requests: deque[RecordedRequest] = deque(maxlen=record_limit)
        self._seq = 0
        self.default_status = default_status
        self.closing = False  # set on shutdown: delayed answers stop waiting

    @property
    def loaded_rules(self) -> tuple[ResponseRule, ...]:
        return self._loaded

    def add_rules(self, rules: Iterable[RuleLike], *, first: bool = True) -> list[ResponseRule]:
        """Add rules ahead of all others (``first``, so later overrides win) or after them."""
        added = as_rules(rules)
        entries = [_Active(r, r.times) for r in added]
        with self._cond:
            self._active = entries + self._active if first else self._active + entries
        return added

    def reset_rules(self) -> None:
        """Back to the loaded rules, with their ``times`` counters restored."""
        with self._cond:
            self._active = [_Active(r, r.times) for r in self._loaded]

    def clear_requests(self) -> int:
        with self._cond:
            count = len(self._requests)
            self._requests.clear()
            return count

    def reset(self) -> None:
        """Forget the recorded requests and the added rules."""
        with self._cond:
            self._requests.clear()
            self._active = [_Active(r, r.times) for r in self._loaded]

    def rules(self) -> list[tuple[ResponseRule, int | None]]:
        """The rules in matching order with how many answers each has left (None: unlimited)."""
        with self._cond:
            return [(a.rule, a.remaining) for a in self._active]

    def requests(
        self, path_prefix: str | None = None, method: str | None = None, after: int = 0
    ) -> list[RecordedRequest]:
        """Recorded requests, oldest first; optionally under a path prefix (``/twilio``)."""
        with self._cond:
            return self._select(path_prefix, method, after)

    def wait_for_requests(
        self,
        count: int = 1,
        *,
        path_prefix: str | None = None,
        method: str | None = None,
        timeout: float = 5.0,
    ) -> list[RecordedRequest]:
        """Block until ``count`` matching requests were recorded; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._select(path_prefix, method, 0)
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    where = f" under {path_prefix}" if path_prefix else ""
                    raise TimeoutError(
                        f"expected {count} request(s){where} within {timeout}s, got {len(found)}"
                    )
                self._cond.wait(left)

    def _select(
        self, path_prefix: str | None, method: str | None, after: int
    ) -> list[RecordedRequest]:
        wanted = method.upper() if method else None
        return [
            r
            for r in self._requests
            if r.seq > after and _under(r.path, path_prefix) and wanted in (None, r.method)
        ]

    def amend(self, seq: int, *, status: int | None) -> None:
        """Correct the recorded status of request ``seq`` (when rendering its answer failed)."""
        with self._cond:
            for index, request in enumerate(self._requests):
                if request.seq == seq:
                    self._requests[index] = dataclasses.replace(request, status=status)
                    return

    def receive(self, request: RecordedRequest) -> Matched:
        """Number and record a request, and pick its rule (using up one of its ``times``)."""
        with self._cond:
            self._seq += 1
            request = dataclasses.replace(request, seq=self._seq)
            rule: ResponseRule | None = None
            wildcards: list[str] = []
            for active in self._active:
                if active.remaining == 0:
                    continue
                found = active.rule.match(request)
                if found is not None:
                    if active.remaining is not None:
                        active.remaining -= 1
                    rule, wildcards = active.rule, found
                    break
            if rule is None:
                request = dataclasses.replace(request, status=self.default_status)
            elif rule.fault == "drop":
                request = dataclasses.replace(request, rule=rule.label, status=None, fault="drop")
            else:
                request = dataclasses.replace(
                    request, rule=rule.label, status=rule.status, fault=rule.fault
                )
            self._requests.append(request)
            self._cond.notify_all()
            return Matched(request, rule, wildcards)

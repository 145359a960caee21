"""The process probes: ``/livez`` (the process runs and answers) and ``/readyz`` (it can do
its work: database writable, configuration loaded, the background tasks of its role running,
not shutting down). Both are unauthenticated and cheap; ``/readyz`` answers 503 naming the
checks that fail, so a load balancer stops sending before the process stops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.config.model import Config
from gateway.store.interfaces import Lifecycle

# How long a database check may take before readiness calls it failed.
DATABASE_TIMEOUT = 2.0


@dataclass
class Readiness:
    """What /readyz reports. The app registers its background tasks as it starts them;
    `drain()` (on SIGTERM) turns readiness off before anything stops."""

    config: Config | None
    store: Lifecycle
    role: str = "all"
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    scheduler_running: Callable[[], bool] | None = None
    started: bool = False
    draining: bool = False
    draining_since: float | None = None

    def drain(self) -> None:
        if not self.draining:
            self.draining = True
            self.draining_since = time.time()

    async def checks(self) -> dict[str, str]:
        """Each check's name -> "ok", or why it fails."""
        found: dict[str, str] = {}
        found["shutdown"] = "shutting down" if self.draining else "ok"
        found["configuration"] = "ok" if self.config is not None and self.started else "not loaded"
        try:
            await asyncio.wait_for(self.store.check_writable(), timeout=DATABASE_TIMEOUT)
            found["database"] = "ok"
        except TimeoutError:
            found["database"] = f"not writable within {DATABASE_TIMEOUT:g}s"
        except Exception as exc:  # the probe reports it; it must not fail itself
            found["database"] = f"not writable: {type(exc).__name__}: {str(exc)[:200]}"
        for name, task in sorted(self.tasks.items()):
            if task.done():
                found[name] = "stopped"
            else:
                found[name] = "ok"
        if self.scheduler_running is not None:
            found["scheduler"] = "ok" if self.scheduler_running() else "stopped"
        return found

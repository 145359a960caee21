"""Leadership: one replica on a shared database runs what must run once (scheduled syncs,
retention), under a lease with a term.

The leader renews its lease every third of it; a replica that is not leader tries to take it
as often, and does once the lease lapsed (a killed leader is replaced within one lease). A
replica counts itself leader only until its own lease would end, measured from before it
asked, so two replicas never both believe they lead. `stop` gives the role up at once. With no
shared database (SQLite: one process) the process is always the leader.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from gateway.store.interfaces import Coordination

log = logging.getLogger("gateway.leadership")
DEFAULT_LEASE = 15.0


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leadership:
    def __init__(
        self,
        shared: Coordination | None,
        name: str = "leader",
        *,
        lease: float = DEFAULT_LEASE,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shared = shared
        self.name = name
        self.lease = lease
        self.holder = holder or holder_name()
        self.clock = clock
        self.term: int | None = None
        self._until = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        if self.shared is None:
            return True
        return self.term is not None and self.clock() < self._until

    async def claim(self) -> bool:
        """Take or renew the role once; whether this replica leads now."""
        if self.shared is None:
            return True
        asked = self.clock()
        try:
            term = await self.shared.claim_leadership(self.name, self.holder, self.lease)
        except Exception:
            log.exception("could not renew the %s lease", self.name)
            return self.is_leader
        if term is not None and term != self.term:
            log.info("%s became %s (term %d)", self.holder, self.name, term)
        elif term is None and self.term is not None:
            log.info("%s is no longer %s", self.holder, self.name)
        self.term = term
        self._until = asked + self.lease if term is not None else 0.0
        return term is not None

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            await self.claim()

    async def start(self) -> None:
        if self.shared is None:
            return
        await self.claim()
        self._task = asyncio.create_task(self._keep())

    async def stop(self) -> None:
        """Stop renewing and give the role up, so another replica takes it at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.shared is not None and self.term is not None:
            self.term = None
            try:
                await self.shared.resign_leadership(self.name, self.holder)
            except Exception:
                log.exception("could not give up the %s lease", self.name)

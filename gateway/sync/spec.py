"""The declared syncs of a configuration, as the engine looks them up (compiled in
`gateway.config.syncs`)."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.config.model import Config, Integration
from gateway.config.syncs import SyncSpec
from gateway.errors import GatewayError, UsageError


class SyncError(GatewayError):
    """A sync that cannot go on: a bad response, an expression that fails on it, ..."""


class UnknownSync(SyncError, UsageError):
    """No such integration, or it declares no such sync."""


def integration_syncs(integration: Integration) -> dict[str, SyncSpec]:
    return dict(integration.syncs)


def declared_syncs(config: Config) -> Iterator[SyncSpec]:
    """Every sync of every integration, in name order."""
    for name in sorted(config.integrations):
        yield from integration_syncs(config.integrations[name]).values()


def find_sync(config: Config, integration: str, name: str) -> SyncSpec:
    found = config.integrations.get(integration)
    if found is None:
        raise UnknownSync(f"no integration '{integration}'")
    syncs = integration_syncs(found)
    if name not in syncs:
        known = ", ".join(sorted(syncs)) or "none"
        raise UnknownSync(f"integration '{integration}' has no sync '{name}' (its syncs: {known})")
    return syncs[name]

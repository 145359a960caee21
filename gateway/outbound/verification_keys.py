"""Verification keys fetched from a provider by key id (Plaid's ``/webhook_verification_key/get``),
through the outbound engine: the integration's auth, rate limit and breaker apply.

Keys are cached per integration, tenant and key id for the verifier's ``keys.cache``, in a
bounded cache (least recently used first out). A key id the provider does not know (or a key
it cannot load) is remembered as unknown for `MISS_TTL` seconds, so forged requests naming
made-up ids cost one fetch each, not one per request; a fetch that fails (network, 5xx,
breaker open) is not remembered and is logged as an ERROR. Either way the request fails
closed. Concurrent requests naming the same missing key share one fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from gateway.outbound.caller import Caller
from gateway.outbound.failures import OutboundError, PermanentError
from gateway.verify.verifier import (
    FetchesKeys,
    KeyFetch,
    SecretLookup,
    VerificationFailed,
    Verifier,
    WebhookRequest,
    fetches_keys,
)

log = logging.getLogger("gateway.outbound.verification_keys")

MAX_KEYS = 1024
MISS_TTL = 60.0
_UNKNOWN = object()
CacheKey = tuple[str, str, str]


class VerificationKeys:
    """The fetched keys of every integration whose verifier fetches them."""

    def __init__(
        self,
        caller: Caller,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._caller = caller
        self._max = max_keys
        self._clock = clock
        self._cache: OrderedDict[CacheKey, tuple[float, Any]] = OrderedDict()
        self._fetching: dict[CacheKey, asyncio.Future[Any]] = {}
        self.fetches = 0  # answered fetches, for tests and the log

    async def verify(
        self,
        integration: str,
        tenant: str,
        verifier: FetchesKeys,
        request: WebhookRequest,
        secrets: SecretLookup,
        now: float,
    ) -> None:
        """Verify `request` with the key its token names, fetched when not cached."""
        kid = verifier.key_id(request)
        key = await self._key((integration, tenant, kid), verifier)
        verifier.verify_with_key(request, secrets, now, key)

    async def _key(self, where: CacheKey, verifier: FetchesKeys) -> Any:
        cached = self._cache.get(where)
        if cached is not None:
            expires, key = cached
            if self._clock() < expires:
                self._cache.move_to_end(where)
                if key is _UNKNOWN:
                    raise VerificationFailed(f"unknown key id {where[2]!r}")
                return key
            del self._cache[where]
        running = self._fetching.get(where)
        if running is not None:  # another request is fetching this key: wait for it
            key = await asyncio.shield(running)
        else:
            running = asyncio.get_running_loop().create_future()
            self._fetching[where] = running
            try:
                key = await self._fetch(where, verifier)
            except Exception as exc:
                running.set_exception(exc)
                running.exception()  # retrieved: the waiters (if any) raise it too
                raise
            except BaseException:
                running.cancel()
                raise
            else:
                running.set_result(key)
            finally:
                del self._fetching[where]
        if key is _UNKNOWN:
            raise VerificationFailed(f"unknown key id {where[2]!r}")
        return key

    async def _fetch(self, where: CacheKey, verifier: FetchesKeys) -> Any:
        integration, tenant, kid = where
        fetch = verifier.key_fetch
        assert fetch is not None
        try:
            result = await self._call(integration, tenant, fetch, kid)
        except PermanentError as exc:
            if exc.status is None:  # not asked (a credential is missing, ...): not remembered
                log.error("%s/%s: key %r not fetched: %s", integration, tenant, kid, exc.reason)
                raise VerificationFailed("the key endpoint cannot be called") from None
            # the provider answered: it does not know this id
            log.warning("%s/%s: key %r not fetched: %s", integration, tenant, kid, exc.reason)
            self._remember(where, _UNKNOWN, MISS_TTL)
            return _UNKNOWN
        except OutboundError as exc:  # the endpoint failed: every such request is refused
            log.error("%s/%s: key %r not fetched: %s", integration, tenant, kid, exc.reason)
            raise VerificationFailed("the key endpoint failed") from None
        self.fetches += 1
        try:
            document = result.json()
            key = verifier.load_key(document, kid)
        except (ValueError, VerificationFailed) as exc:
            log.warning("%s/%s: key %r not usable: %s", integration, tenant, kid, exc)
            self._remember(where, _UNKNOWN, MISS_TTL)
            return _UNKNOWN
        self._remember(where, key, fetch.cache)
        return key

    async def _call(self, integration: str, tenant: str, fetch: KeyFetch, kid: str) -> Any:
        given = {fetch.kid_name: kid}
        return await self._caller.call(
            integration,
            fetch.endpoint,
            tenant=tenant,
            params=given if fetch.kid_in == "path" else None,
            query=given if fetch.kid_in == "query" else None,
            body=given if fetch.kid_in == "body" else None,
        )

    def _remember(self, where: CacheKey, key: Any, ttl: float) -> None:
        self._cache[where] = (self._clock() + ttl, key)
        self._cache.move_to_end(where)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)


async def verify_request(
    keys: VerificationKeys | None,
    integration: str,
    tenant: str,
    verifier: Verifier,
    request: WebhookRequest,
    secrets: SecretLookup,
    now: float,
) -> None:
    """What the webhook and function doors call: `verifier.verify`, or with a fetched key
    when its keys are fetched (fails closed when there is nothing to fetch them with)."""
    fetching = fetches_keys(verifier)
    if fetching is None:
        verifier.verify(request, secrets, now)
        return
    if keys is None:
        raise VerificationFailed("the token's key is fetched, and nothing fetches keys here")
    await keys.verify(integration, tenant, fetching, request, secrets, now)

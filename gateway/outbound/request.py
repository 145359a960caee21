"""Build the HTTP request for one endpoint call: URL with path parameters, merged defaults,
json or form body, idempotency header and timeout.

Defaults come from the YAML (``api.headers``, then the endpoint's headers, query and body) and
may hold templates that see ``tenant``; the caller's values are used as given (a flow renders
its own), win over the defaults, and dicts merge one level deep. Secrets (``${secret:NAME}``)
anywhere in them are resolved last, so a secret's text is never read as a template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpx
from jinja2 import TemplateError

from gateway.config.api import Api, Endpoint
from gateway.expr.expressions import compile_value
from gateway.outbound.failures import RequestBuildError
from gateway.outbound.formencode import flatten, form_encode, scalar
from gateway.outbound.redactor import Redactor

USER_AGENT = "yaml-gateway/0.1"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_Pairs = list[tuple[str, str | int | float | bool | None]]
_CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}


@lru_cache(maxsize=2048)
def parsed_url(url: str) -> httpx.URL:
    """`httpx.URL(url)`, parsed once: an endpoint's URL repeats call after call, and httpx
    checks every character of it on each parse (URL objects are immutable: safe to share)."""
    return httpx.URL(url)


def find_endpoint(api: Api, name: str) -> Endpoint:
    """The api's endpoint `name`; a `RequestBuildError` naming the ones it has otherwise."""
    found = api.endpoints.get(name)
    if found is None:
        known = ", ".join(sorted(api.endpoints)) or "none"
        raise RequestBuildError(
            f"integration {api.integration} has no endpoint {name!r} (it has: {known})"
        )
    return found


def fill_path(endpoint: Endpoint, params: Mapping[str, Any]) -> str:
    """The endpoint's path with each {placeholder} replaced by its URL-quoted parameter."""

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        value = params.get(name)
        text = "" if value is None else scalar(value)
        if text in ("", ".", ".."):
            needed = ", ".join(_PLACEHOLDER.findall(endpoint.path))
            state = "missing" if value is None else f"{text!r}, not a path segment"
            raise RequestBuildError(
                f"{endpoint.label}: path parameter {name!r} is {state}"
                f" (path {endpoint.path} takes: {needed})"
            )
        return quote(text, safe="")

    return _PLACEHOLDER.sub(replace, endpoint.path)


def merge(default: Any, given: Any) -> Any:
    """The caller's value wins; two dicts merge one level deep."""
    if given is None:
        return default
    if isinstance(default, Mapping) and isinstance(given, Mapping):
        return {**default, **given}
    return given


# An api's and its endpoints' defaults (headers, params, query, body), compiled once: they are
# the loaded config's, never changed, and rendered on every call. Keyed by identity, the value
# kept alive with its renderer so that an id is never reused while it is cached.
_COMPILED: dict[int, tuple[Any, Callable[[Mapping[str, Any]], Any]]] = {}
_COMPILED_MAX = 4096


def _compiled(value: Any) -> Callable[[Mapping[str, Any]], Any]:
    found = _COMPILED.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    if len(_COMPILED) >= _COMPILED_MAX:  # configs reloaded many times: start over
        _COMPILED.clear()
    render = compile_value(value)
    _COMPILED[id(value)] = (value, render)
    return render


@lru_cache(maxsize=256)
def _timeout(seconds: float) -> dict[str, Any]:
    return httpx.Timeout(seconds).as_dict()


def _render(value: Any, variables: Mapping[str, Any], what: str, endpoint: Endpoint) -> Any:
    try:
        return _compiled(value)(variables)
    except (TemplateError, TypeError, ValueError) as exc:
        raise RequestBuildError(f"{endpoint.label}: {what} template failed: {exc}") from exc


def _query_pairs(query: Any, endpoint: Endpoint) -> _Pairs:
    if query is None:
        return []
    if not isinstance(query, Mapping):
        raise RequestBuildError(f"{endpoint.label}: query must be a mapping, not {query!r}")
    pairs: _Pairs = []
    for key, value in query.items():
        if isinstance(value, list | tuple) and all(not isinstance(v, Mapping) for v in value):
            pairs.extend((str(key), scalar(v)) for v in value if v is not None)  # repeat key
        else:
            pairs.extend(flatten(value, str(key)))
    return pairs


def _encode(body: Any, endpoint: Endpoint) -> bytes | None:
    if body is None:
        return None
    if endpoint.encoding == "form":
        if not isinstance(body, Mapping):
            raise RequestBuildError(
                f"{endpoint.label}: a form body must be a mapping, not {type(body).__name__}"
            )
        return form_encode(body)
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise RequestBuildError(f"{endpoint.label}: the body is not JSON: {exc}") from exc


def same_origin(api: Api, endpoint: Endpoint, url: str) -> str:
    """`url` if it is an absolute http(s) URL on the scheme, host and port of the api's base
    URL; a `RequestBuildError` otherwise."""
    try:
        target, base = httpx.URL(url), httpx.URL(api.base_url)
    except httpx.InvalidURL as exc:
        raise RequestBuildError(f"{endpoint.label}: invalid URL: {exc}") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise RequestBuildError(f"{endpoint.label}: {url!r} is not an absolute http(s) URL")
    if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
        raise RequestBuildError(
            f"{endpoint.label}: {target.scheme}://{target.host} is not the api's host"
            f" ({base.scheme}://{base.host}): its credentials are not sent there"
        )
    return url


def build_request(
    api: Api,
    endpoint: Endpoint,
    redactor: Redactor,
    *,
    variables: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    query: Any = None,
    body: Any = None,
    headers: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    url: str | None = None,
) -> httpx.Request:
    """The request for one call, without authentication (see `auth`).

    `url`: call this absolute URL (a next page or delta link the provider returned) instead of
    the endpoint's path, with the endpoint's method, headers and authentication but not its
    default query (such a URL carries its own). It must be on the host of ``api.base_url``:
    the credentials never go anywhere else."""
    absolute = url is not None
    if url is not None:
        url = same_origin(api, endpoint, url)
    else:
        defaults = _render(endpoint.params, variables, "params", endpoint)
        given = {**defaults, **dict(params or {})}
        path = fill_path(endpoint, redactor.resolve_tree(given, "params"))
        url = path if path.startswith(("http://", "https://")) else api.base_url.rstrip("/") + path

    final_headers = httpx.Headers({"User-Agent": USER_AGENT})
    for what, source in (
        ("api.headers", _render(api.headers, variables, "api.headers", endpoint)),
        ("headers", _render(endpoint.headers, variables, "headers", endpoint)),
        ("headers", headers or {}),
    ):
        resolved = redactor.resolve_tree(dict(source), what)
        final_headers.update({k: scalar(v) for k, v in resolved.items() if v is not None})
    default_query = None if absolute else _render(endpoint.query, variables, "query", endpoint)
    merged_query = merge(default_query, query)
    merged_body = merge(_render(endpoint.body, variables, "body", endpoint), body)
    content = _encode(redactor.resolve_tree(merged_body, "body"), endpoint)
    if content is not None and "content-type" not in final_headers:
        final_headers["Content-Type"] = _CONTENT_TYPES[endpoint.encoding]
    if endpoint.idempotency_header and idempotency_key:
        final_headers[endpoint.idempotency_header] = idempotency_key
    pairs = _query_pairs(redactor.resolve_tree(merged_query, "query"), endpoint)
    try:
        target = parsed_url(url)
        if pairs:  # merged into a query the path may have (a param named in both: ours)
            target = target.copy_merge_params(httpx.QueryParams(pairs))
        return httpx.Request(
            endpoint.method,
            target,
            headers=final_headers,
            content=content,
            extensions={"timeout": dict(_timeout(endpoint.timeout))},
        )
    except httpx.InvalidURL as exc:
        raise RequestBuildError(f"{endpoint.label}: invalid URL: {exc}") from exc

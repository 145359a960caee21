"""Logging and error reporting set-up for the server process."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

_SCRUB = ("authorization", "cookie", "signature", "token", "secret", "password", "api_key")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request's full URL at INFO: an API key sent in the query would leak.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# Query parameters that carry a secret whatever the configuration declares: tokens and keys
# sent in URLs (OAuth, API keys, Meta's subscription handshake). Every handshake's
# `token.query` is added from the configuration. Names are compared case-insensitively.
SECRET_QUERY_PARAMETERS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "client_secret",
        "password",
        "signature",
        "sig",
        "code",
        "verify_token",
        "hub.verify_token",
    }
)
REDACTED = "[redacted]"
ACCESS_LOGGER = "uvicorn.access"


def redact_query(target: str, secret: frozenset[str]) -> str:
    """A request target (path?query as sent) with the values of `secret` parameters
    (lower-case names) replaced by [redacted]."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    items = []
    for item in query.split("&"):
        name, assign, _value = item.partition("=")
        if assign and unquote_plus(name).strip().lower() in secret:
            item = f"{name}={REDACTED}"
        items.append(item)
    return f"{path}?{'&'.join(items)}"


class AccessLogRedaction(logging.Filter):
    """Redacts secret query parameters from the targets an access log line holds."""

    def __init__(self, parameters: Iterable[str] = ()) -> None:
        super().__init__()
        self.parameters = frozenset(
            name.lower() for name in (*SECRET_QUERY_PARAMETERS, *parameters)
        )

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query(arg, self.parameters) if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        return True


def install_access_log_redaction(parameters: Iterable[str]) -> None:
    """Redact the built-in secret parameters and `parameters` in uvicorn's access log."""
    logging.getLogger(ACCESS_LOGGER).addFilter(AccessLogRedaction(parameters))


def _scrub(event: Any, _hint: Any) -> Any:
    """Drop header values and bodies that may carry secrets before an event leaves the process."""
    request = event.get("request") if isinstance(event, dict) else None
    if isinstance(request, dict):
        headers = request.get("headers")
        if isinstance(headers, dict):
            for name in list(headers):
                if any(word in name.lower() for word in _SCRUB):
                    headers[name] = "[Filtered]"
        request.pop("data", None)
        request.pop("cookies", None)
    return event


def init_sentry(dsn: str) -> None:
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,  # frame locals hold raw headers: tokens, signatures
        before_send=_scrub,
        traces_sample_rate=0.0,
    )

"""Logging and error reporting set-up for the server process."""

from __future__ import annotations

import logging
from typing import Any

_SCRUB = ("authorization", "cookie", "signature", "token", "secret", "password", "api_key")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request's full URL at INFO: an API key sent in the query would leak.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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

"""Logging and error reporting set-up for the server process.

Two formats: ``text`` (one readable line) and ``json`` (one object per line, for a log
shipper). A JSON line carries the event id, job id, integration and tenant where they are
known: given with ``extra={...}`` on the call, or set for a whole block of work with
`log_context` (a context variable, so concurrent tasks do not mix theirs). Only those names
and the message go out: a record's other attributes (arguments, locals) never do.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_plus

_SCRUB = ("authorization", "cookie", "signature", "token", "secret", "password", "api_key")
LOG_FORMATS = ("text", "json")
CONTEXT_FIELDS = ("event_id", "job_id", "integration", "tenant")

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "gateway_log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Within the block, every log line of this task carries these fields (None: left out)."""
    current = dict(_context.get() or {})
    current.update({k: v for k, v in fields.items() if v is not None and k in CONTEXT_FIELDS})
    token = _context.set(current)
    try:
        yield
    finally:
        _context.reset(token)


def context_fields(record: logging.LogRecord) -> dict[str, str]:
    """The context fields of a record: the task's `log_context`, then the call's `extra`."""
    found = dict(_context.get() or {})
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = str(value)
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, and the
    exception's traceback as text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **context_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record is emitted, not the stream that was
    there when logging was configured: a thread that logs after stderr was swapped (a test's
    captured stream closed, a daemon's redirected stderr) still writes somewhere open."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = StderrHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
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


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn's own logging: its default for text, else through the root handler (JSON)."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "uvicorn": {"level": "INFO", "propagate": True, "handlers": []},
            "uvicorn.error": {"level": "INFO", "propagate": True, "handlers": []},
            "uvicorn.access": {"level": "INFO", "propagate": True, "handlers": []},
        },
    }


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

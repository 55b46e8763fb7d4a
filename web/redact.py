"""Keep observatory keys out of every log line: in a URL (`?hashtag=...`, also URL-encoded inside
another parameter such as a login page's `next=`) and in an `Authorization` header.

Seed-era scripts put the key in the query string, so request lines carry it; gunicorn's access
log (:class:`RedactingAccessLogger`) and the app's own log handlers (:class:`RedactingFilter`)
pass every line through :func:`redact` before it is written.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
_KEY_IN_URL = re.compile(r"(hashtag(?:=|%3D|%253D))[^&\s\"'#;]*", re.IGNORECASE)
_AUTH_HEADER = re.compile(r"((?:Token|Bearer|Basic)\s+)[^\s\"',;]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the value of every `hashtag=` parameter and credential header replaced."""
    return _AUTH_HEADER.sub(rf"\1{REDACTED}", _KEY_IN_URL.sub(rf"\1{REDACTED}", text))


class RedactingFilter(logging.Filter):
    """A handler filter that rewrites the formatted message of each record through redact()."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of `logger` (the root logger by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class RedactingAccessLogger(Logger):
    """gunicorn's logger (`logger_class` in deploy/gunicorn.conf.py) with keys redacted from the
    access log's atoms (request line, query, referrer, headers) and from its error log."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            install(log)

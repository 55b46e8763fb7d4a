"""Keep observatory keys out of every log line: in a URL (`?hashtag=...`, however its name is
percent-encoded: `?%68ashtag=`, `?HASHTAG=`, or encoded again inside another parameter such as a
login page's `next=`), in a credential (`Authorization: Token ...`, also `Token%20...`) and in the
headers that carry one (`Authorization`, `Cookie`).

Seed-era scripts put the key in the query string, so request lines carry it; gunicorn's access
log (:class:`RedactingAccessLogger`) and the app's own log handlers (:class:`RedactingFilter`)
pass every line through :func:`redact` before it is written. Names are decoded before they are
compared, so no spelling of the parameter that the server would read, or a browser would send,
slips through; values are replaced up to the next separator, encoded or not.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
#: Parameters whose value is a key.
SECRET_PARAMS = frozenset({"hashtag"})
#: Request headers whose whole value is a credential (gunicorn's `{name}i` access-log atoms).
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
#: `name=value` in a URL or form, the `=` itself possibly percent-encoded (once or twice).
_PARAM = re.compile(
    r"(?P<name>[^\s&=\"'#;]+?)(?P<eq>=|%3D|%253D)(?P<value>[^&\s\"'#;]*)", re.IGNORECASE
)
_SEPARATORS = re.compile(r"[?&;/\s]")
_CREDENTIAL = re.compile(r"((?:Token|Bearer|Basic)(?:\s|%20|\+|%2520)+)[^\s\"',;&]+", re.IGNORECASE)


def _decoded_name(raw: str) -> str:
    """The parameter name a server reads from `raw` (the text before `=`): percent-decoded until
    stable (at most three times), its last `?`/`&`-separated segment, lower-cased."""
    for _ in range(3):
        decoded = unquote_plus(raw)
        if decoded == raw:
            break
        raw = decoded
    return _SEPARATORS.split(raw.strip())[-1].lower()


def _param(m: re.Match) -> str:
    if _decoded_name(m["name"]) in SECRET_PARAMS:
        return f"{m['name']}{m['eq']}{REDACTED}"
    # The value may itself be an encoded URL with parameters (`next=%2Fx%3Fhashtag%3D...`).
    return f"{m['name']}{m['eq']}{_PARAM.sub(_param, m['value'])}"


def redact(text: str) -> str:
    """`text` with the value of every key parameter and credential replaced."""
    return _CREDENTIAL.sub(rf"\1{REDACTED}", _PARAM.sub(_param, text))


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


def _atom(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name.startswith("{") and name.endswith("}i") and name[1:-2].lower() in SECRET_HEADERS:
        return REDACTED if value not in ("", "-") else value
    return redact(value)


class RedactingAccessLogger(Logger):
    """gunicorn's logger (`logger_class` in deploy/gunicorn.conf.py) with keys redacted from the
    access log's atoms (request line, query, referrer, credential headers) and its error log."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: _atom(k, v) for k, v in atoms.items()}

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            install(log)

"""Whether a request wants JSON or HTML: `outputFormat`/`format` first, then the Accept header.

HTML stays the default for browsers and for the seed's plain curl calls.
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import HTTPException


def requested_format() -> str | None:
    """`json`, `html`, `csv` or None; never raises, even when the form itself is unreadable."""
    try:
        values = request.values
    except HTTPException:  # e.g. the body was too large to parse
        values = request.args
    fmt = (values.get("outputFormat") or values.get("format") or "").lower()
    return fmt if fmt in ("json", "html", "csv") else None


def wants_json() -> bool:
    return output_format() == "json"


def output_format() -> str:
    """`html`, `json` or `csv`: `?format=`/`outputFormat=` first, then a JSON body (its sender
    reads JSON), then the Accept header."""
    fmt = requested_format()
    if fmt is not None:
        return fmt
    if request.is_json:
        return "json"
    accept = request.accept_mimetypes
    return "json" if accept["application/json"] > accept["text/html"] else "html"

"""Whether a request wants JSON or HTML: `outputFormat`/`format` first, then the Accept header.

HTML stays the default for browsers and for the seed's plain curl calls.
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import HTTPException


def requested_format() -> str | None:
    """`json`, `html`, `csv` or None; never raises, even when the form itself is unreadable."""
    try:
        form = request.form
    except HTTPException:  # e.g. the body was too large to parse
        form = {}
    values = [form, request.args]  # the body wins over the query string
    fmt = next((v[k] for v in values for k in ("outputFormat", "format") if v.get(k)), "").lower()
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

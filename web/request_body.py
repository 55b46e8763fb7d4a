"""Small request bodies are read whole before their form is parsed."""

from __future__ import annotations

from flask import request

#: Bodies up to this size are read from the server in one call before the form is parsed: a
#: typical catalogue upload then costs gunicorn and Werkzeug ~1.8 ms less CPU than when the
#: multipart parser pulls it through the server's reader in 64 KiB pieces (bench/bench_load.py).
#: Larger bodies stream as before, their files spooled to disk, so memory stays bounded.
READ_AT_ONCE_BYTES = 8 * 1024 * 1024


def cached_body() -> bytes | None:
    """A small multipart body, read once and kept (the form parser reads this copy), or None
    for a larger one, which streams."""
    length = request.content_length
    if length and length <= READ_AT_ONCE_BYTES and request.mimetype == "multipart/form-data":
        return request.get_data(parse_form_data=False)
    return None


def read_small_body() -> None:
    cached_body()

"""How the static assets travel: compressed (brotli or gzip, by flask-compress, for every text
answer: pages, JSON, CSV, scripts, styles) and, for files that never change under their URL,
cached by browsers for a year.

`asset(filename)` (a template global) is `/static/<filename>?v=<content hash>`: a changed file
gets a new URL, so the old one may be cached for a year ("immutable"); a request without the
current hash is answered with revalidation only. BokehJS and Swagger UI carry their package's
version in their URL and are cached the same way by their own views.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask, request, url_for
from flask_compress import Compress

YEAR_S = 365 * 86400
#: Text answers worth compressing (images are compressed already).
COMPRESSED_TYPES = [
    "text/html", "text/css", "text/csv", "text/plain", "text/javascript",
    "application/javascript", "application/json", "image/svg+xml",
]  # fmt: skip
#: Static views whose streamed files still answer If-None-Match with a 304 when compressed.
FILE_VIEWS = ["static", "alert_pages.bokehjs", "openapi.asset"]


class FileCache:
    """flask-compress's cache, kept for the static files alone: their compressed bytes are made
    once per process (brotli of BokehJS costs ~0.2 s) and bounded by the set of files. Other
    answers get an empty key and are never stored."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, key: str, value: bytes) -> None:
        if not key.endswith(";"):
            self.data[key] = value


def cache_key(req) -> str:
    """The file's path for a static file (its query only picks the caching), else empty."""
    return req.path if req.endpoint in FILE_VIEWS else ""


def content_hashes(folder: Path) -> dict[str, str]:
    """filename → the first 12 hex digits of its SHA-256, for every file of `folder`."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        for p in folder.iterdir()
        if p.is_file()
    }


def init_app(app: Flask) -> None:
    app.config.update(
        COMPRESS_MIMETYPES=COMPRESSED_TYPES,
        COMPRESS_ALGORITHM=["br", "gzip"],
        COMPRESS_ALGORITHM_STREAMING=["br", "deflate"],  # the few answers that stream
        COMPRESS_CACHE_BACKEND=FileCache,
        COMPRESS_CACHE_KEY=cache_key,
    )
    Compress(app)

    @app.after_request  # runs before flask-compress's (after_request runs in reverse order)
    def buffer_files(resp):
        """Static files are sent whole, not streamed: then gzip is offered as well as brotli,
        the answer has a Content-Length, and If-None-Match still gets its 304."""
        if request.endpoint in FILE_VIEWS and resp.direct_passthrough and resp.status_code == 200:
            resp.direct_passthrough = False
            resp.set_data(resp.get_data())
        return resp

    hashes = content_hashes(Path(app.static_folder))

    def asset(filename: str) -> str:
        return url_for("static", filename=filename, v=hashes.get(filename))

    app.jinja_env.globals["asset"] = asset
    send_static = app.view_functions["static"]

    def static(filename: str):
        resp = send_static(filename=filename)
        current = hashes.get(filename)
        if current is not None and request.args.get("v") == current:
            resp.cache_control.no_cache = None
            resp.cache_control.max_age = YEAR_S
            resp.cache_control.public = True
            resp.cache_control.immutable = True
        else:  # an unversioned or stale URL: use it, but ask again next time
            resp.cache_control.max_age = 0
            resp.cache_control.no_cache = True
        return resp

    app.view_functions["static"] = static

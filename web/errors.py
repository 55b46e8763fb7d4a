"""One error shape for every endpoint: JSON `{"error", "detail"}` for scripts, a page for people."""

from __future__ import annotations

import logging
from typing import TypeVar

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from blobstore import StoreFull, StoreUnavailable
from web.negotiation import FormatNotAcceptable, wants_json
from web.request_body import cached_body

log = logging.getLogger(__name__)
Num = TypeVar("Num", int, float)


class ApiError(Exception):
    """An error whose message tells the user what to fix."""

    def __init__(self, status: int, error: str, detail: str | None = None):
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


def parse_bounded(name: str, raw: str, cast: type[Num], lo: Num, hi: Num) -> Num:
    """`raw` as a number in [lo, hi], or a 422 naming the field (NaN and inf are out of range)."""
    try:
        value = cast(raw)
    except ValueError:
        kind = "an integer" if cast is int else "a number"
        raise ApiError(422, f"{name} must be {kind}", f"got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise ApiError(422, f"{name} out of range", f"{name} must be between {lo} and {hi}")
    return value


def too_large_detail(limit: int) -> str:
    """What an over-size upload is told: what calserv takes, and how to make a file fit."""
    return (
        f"uploads are limited to {limit / 1e6:.3g} MB: a SExtractor catalogue, an RA DEC MAG "
        "table or a FITS image; compress an image (.fits.gz or .fz) or send its catalogue"
    )


def error_response(status: int, error: str, detail: str | None = None) -> Response:
    # A too-large body or URL is not read for its outputFormat: JSON unless a browser asked.
    unreadable = status in (413, 414, 431) and "text/html" not in request.headers.get("Accept", "")
    if unreadable or wants_json():
        resp = jsonify(error=error, detail=detail)
        resp.status_code = status
    else:
        html = render_template("error.html", status=status, error=error, detail=detail)
        resp = Response(html, status, mimetype="text/html")
    if status in (429, 503, 507):
        resp.headers["Retry-After"] = {429: "30", 503: "5", 507: "60"}[status]
    return resp


def too_large_reason(app: Flask) -> tuple[str, str]:
    """Why a body was refused as too large: the whole upload, the number of form parts or one
    text field (Werkzeug raises the same 413 for each; the refusal must say which).

    Small multipart bodies are read before parsing (`web.request_body`), so their parts can be
    counted here; for a larger one both form limits are named.
    """
    limit, parts = app.config["MAX_CONTENT_LENGTH"], app.config["MAX_FORM_PARTS"]
    field_mb = app.config["MAX_FORM_MEMORY_SIZE"] / 1e6
    if (request.content_length or 0) > limit or request.mimetype != "multipart/form-data":
        return "upload too large", too_large_detail(limit)
    boundary = request.mimetype_params.get("boundary", "").encode()
    body = cached_body()
    if boundary and body and body.count(b"--" + boundary) - 1 > parts:
        return "too many form parts", f"a form has at most {parts} fields and files"
    if boundary and body:
        return "form field too large", (
            f"a text field holds at most {field_mb:.3g} MB; send data as a file part"
        )
    return "form too large", (
        f"a text field holds at most {field_mb:.3g} MB and a form at most {parts} parts"
    )


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api(e: ApiError):
        return error_response(e.status, e.error, e.detail)

    @app.errorhandler(FormatNotAcceptable)
    def _not_acceptable(e: FormatNotAcceptable):
        resp = jsonify(e.body())
        resp.status_code = 406
        return resp

    @app.errorhandler(OperationalError)
    def _db_down(e: OperationalError):
        log.error("database unavailable: %s", e.orig)
        return error_response(
            503, "the database is unavailable", "calserv is restarting a service; retry shortly"
        )

    @app.errorhandler(StoreUnavailable)
    def _store_down(e: StoreUnavailable):
        log.error("event=store_unavailable error=%r", str(e))
        return error_response(
            503, "the file store is unavailable", "nothing was stored; retry shortly"
        )

    @app.errorhandler(StoreFull)
    def _store_full(e: StoreFull):
        log.error("event=store_full error=%r", str(e))
        return error_response(
            507, "the upload disk is full", "nothing was stored; retry in a few minutes"
        )

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        if e.code == 413:
            error, detail = too_large_reason(app)
            return error_response(413, error, detail)
        detail = {404: f"no such page: {request.path}"}.get(e.code or 500, e.description)
        resp = error_response(e.code or 500, e.name.lower(), detail)
        if e.code == 405:  # RFC 9110: a 405 lists the methods the resource supports
            resp.headers["Allow"] = dict(e.get_headers())["Allow"]
        return resp

    @app.errorhandler(Exception)
    def _internal(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error", "the operators have been told; retry later")

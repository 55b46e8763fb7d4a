"""Which representation a request wants: `outputFormat`/`format` first, then the Accept header.

HTML stays the default for browsers and for the seed's plain curl calls. The endpoints that serve
data (lists, light curves, job status) name the formats they have and call :func:`negotiate`: a
format they do not have, asked for by name or by Accept, is a 406 listing the ones they do.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import request
from werkzeug.exceptions import HTTPException

#: Every format calserv writes, and the media types (Accept) that ask for it; the first is the
#: one the answer is sent as.
MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "html": ("text/html",),
    "json": ("application/json",),
    "csv": ("text/csv",),
    "votable": ("application/x-votable+xml", "application/votable+xml"),
    "ecsv": ("text/x-ecsv", "text/ecsv"),
    "fits": ("application/fits",),
}
#: The astronomy table formats (web.tables), served wherever a list or light curve is.
TABLE_FORMATS = ("votable", "ecsv", "fits")
#: The downloads the HTML pages of lists and light curves link to: (format, label, media type).
DOWNLOADS = tuple(
    (f, label, MEDIA_TYPES[f][0])
    for f, label in (("csv", "CSV"), ("votable", "VOTable"), ("ecsv", "ECSV"), ("fits", "FITS"))
)


class FormatNotAcceptable(Exception):
    """A format the endpoint does not have: answered 406, always as JSON listing `formats`."""

    def __init__(self, error: str, formats: Sequence[str]):
        super().__init__(error)
        self.error, self.formats = error, tuple(formats)

    def body(self) -> dict:
        return {
            "error": self.error,
            "detail": f"ask for one of {', '.join(self.formats)} (format=, or Accept)",
            "formats": {f: MEDIA_TYPES[f][0] for f in self.formats},
        }


def format_param() -> str:
    """The `outputFormat` or `format` asked for (lower case; the body wins over the query
    string), or "" when none; never raises, even when the form itself is unreadable."""
    try:
        form = request.form
    except HTTPException:  # e.g. the body was too large to parse
        form = {}
    values = [form, request.args]
    return next((v[k] for v in values for k in ("outputFormat", "format") if v.get(k)), "").lower()


def negotiate(formats: Sequence[str]) -> str:
    """The format of `formats` this request wants; `formats[0]` is the default (no parameter,
    no Accept header, `*/*`). An unknown parameter or an Accept header none of them satisfies
    raises :class:`FormatNotAcceptable` (406)."""
    wanted = format_param()
    if wanted:
        if wanted in formats:
            return wanted
        raise FormatNotAcceptable(f"unknown format {wanted[:40]!r}", formats)
    if not request.headers.get("Accept", "").strip():
        return "json" if request.is_json and "json" in formats else formats[0]
    by_type = {t: f for f in formats for t in MEDIA_TYPES[f]}
    best = request.accept_mimetypes.best_match(list(by_type))
    if best is None:
        raise FormatNotAcceptable("no format this endpoint has is acceptable", formats)
    return by_type[best]


def wants_json() -> bool:
    """True unless a page is wanted: errors and job answers are JSON for every data format
    (`json`, `csv`, `votable`...), and for an Accept header that prefers JSON or refuses HTML."""
    wanted = format_param()
    if wanted:
        return wanted != "html"
    if request.is_json:
        return True
    accept = request.accept_mimetypes
    if not request.headers.get("Accept", "").strip():
        return False
    return accept["application/json"] > accept["text/html"] or not accept["text/html"]


def output_format() -> str:
    """`html` or `json` for the pages that have only those (login): `?format=`/`outputFormat=`,
    a JSON body, then the Accept header."""
    return "json" if wants_json() else "html"

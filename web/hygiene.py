"""Text that reaches the database, a response header or a spreadsheet: what calserv accepts.

Identifiers (alert names, IVORNs, keys) are one line of printable text: a control character in one
(NUL, CR/LF, TAB, ESC...) is never meant, Postgres cannot store NUL, and CR/LF in a name would split
the header of its CSV download. An invisible format character (Unicode category Cf: the bidi
overrides and isolates, zero-width spaces and joiners, BOM, soft hyphen) would make a name read
differently from what it is (`abc\u202egnp.exe` shows as `abcexe.png`) or make two names that look
the same differ. Free text (comments) may hold line breaks and tabs, nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from web.errors import ApiError

#: C0 controls, DEL, C1 controls and the Unicode line/paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: In header values, which WSGI decodes as latin-1: UTF-8 bytes read as C1 there, so only C0.
_CONTROL_IN_HEADER = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
#: A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def header_has_control(value: str) -> bool:
    """A control character other than TAB in a header value (as WSGI gives it)."""
    return _CONTROL_IN_HEADER.search(value) is not None


def _category_ranges(category: str) -> str:
    """A regex character-class body of the code points of the Basic Multilingual Plane in
    Unicode `category`."""
    points = [c for c in range(0x10000) if unicodedata.category(chr(c)) == category]
    spans, start = [], points[0]
    for prev, cur in zip(points, [*points[1:], None], strict=True):
        if cur != prev + 1:
            spans.append(
                re.escape(chr(start)) + ("-" + re.escape(chr(prev)) if prev > start else "")
            )
            start = cur
    return "".join(spans)


#: The invisible format characters (Unicode category Cf) of the Basic Multilingual Plane, as a
#: regex character-class body for the API's description.
FORMAT_CHARACTERS_BMP = _category_ranges("Cf")


def format_character(value: str) -> str | None:
    """The first invisible format character (Unicode category Cf) in `value`, or None."""
    return next((c for c in value if unicodedata.category(c) == "Cf"), None)


def single_line(field: str, value: str) -> str:
    """`value` unchanged, or a 422 naming `field` when it holds a control character or an
    invisible format character."""
    if has_control(value):
        raise ApiError(
            422, f"{field} contains a control character", "use printable text on one line"
        )
    hidden = format_character(value)
    if hidden is not None:
        raise ApiError(
            422,
            f"{field} contains an invisible formatting character "
            f"(U+{ord(hidden):04X} {unicodedata.name(hidden, 'format character')})",
            "remove bidirectional overrides, zero-width and other invisible characters",
        )
    return value


def free_text(field: str, value: str) -> str:
    """`value` unchanged, or a 422 when it holds a control character other than tab/line break."""
    if _CONTROL_IN_TEXT.search(value):
        raise ApiError(
            422, f"{field} contains a control character", "only tabs and line breaks are allowed"
        )
    return value


def local_path(target: str | None) -> str | None:
    """`target` when it is a path on this site (`/...`), else None: no open redirects.

    Browsers drop tabs and line breaks from URLs and read `\\` as `/`, so `/\\t/evil.com` and
    `/\\evil.com` lead off-site: any control character, whitespace or backslash is refused.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if has_control(target) or "\\" in target or any(c.isspace() for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet runs as a formula: text starting with `=`, `+`, `-`, `@`,
    a tab or CR gets a leading `'`. Numbers stay as they are: a negative magnitude is data."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value

"""Read an alert list: the Gaia Science Alerts `alerts.csv` or a TNS search's CSV export.

Gaia layout: a header line `#Name,Date,RaDeg,DecDeg,AlertMag,HistoricMag,HistoricStdDev,Class,
Published,Comment,TNSid`, one alert per line, text fields quoted when they hold commas. A new Gaia
alert gets the IVORN ``ivo://gaia-alerts/<Name>`` (calserv's own convention: the list carries no
IVORN) and the page ``https://gsaweb.ast.cam.ac.uk/alerts/alert/<Name>``.

TNS layout (the CSV of a search on wis-tns.org): quoted columns `"ID","Name","RA","DEC","Obj.
Type",...,"Disc. Internal Name",...,"Discovery Mag/Flux","Discovery Filter","Discovery Date
(UT)",...,"Remarks"`, positions sexagesimal (or degrees). A TNS object is keyed by its TNS name
without the prefix (`2016dbs` of `AT 2016dbs`, which becomes `SN 2016dbs` when classified), gets
``ivo://tns/<2016dbs>`` and ``https://www.wis-tns.org/object/<2016dbs>``, and is matched to a known
alert by that key or by its discovery (internal) names, e.g. `Gaia16aye`.

Columns are found by name, in any order. A row that cannot be read is rejected with its line and
the reason; the others are kept. A file whose header is neither layout raises FeedFormatError.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from urllib.parse import quote

GAIA_COLUMNS = (
    "Name", "Date", "RaDeg", "DecDeg", "AlertMag", "HistoricMag", "HistoricStdDev", "Class",
    "Published", "Comment", "TNSid",
)  # fmt: skip
GAIA_IVORN = "ivo://gaia-alerts/{name}"
GAIA_PAGE = "https://gsaweb.ast.cam.ac.uk/alerts/alert/{name}"
TNS_REQUIRED = ("Name", "RA", "DEC")
TNS_IVORN = "ivo://tns/{tns}"
TNS_PAGE = "https://www.wis-tns.org/object/{tns}"
#: `AT 2016dbs`, `SN2016dbs`, `2016dbs`: the prefix says what it is (so far), the rest names it.
_TNS_NAME = re.compile(r"^\s*(?:[A-Za-z]{1,4}\s*)?(\d{4}[a-z]{2,4})\s*$")
#: C0/C1 controls and line separators: never in a name; free text may hold tabs and newlines.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
MAX_NAME = 100


class FeedFormatError(ValueError):
    """The text is not an alert list calserv knows; the message says why."""


@dataclass(frozen=True)
class FeedAlert:
    """One alert as a list gives it; `tns_name` is the TNS key (`2016dbs`), `aliases` other
    names it is known by (a TNS object's discovery names)."""

    name: str
    ivorn: str
    ra: float
    dec: float
    url: str | None = None
    tns_name: str | None = None
    aliases: tuple[str, ...] = ()
    alert_mag: float | None = None
    classification: str | None = None
    published: str | None = None
    discovered: str | None = None
    comment: str | None = None


@dataclass
class Parsed:
    kind: str  #: "gaia" or "tns"
    alerts: list[FeedAlert] = field(default_factory=list)
    #: `line N: why` of each row that was not read.
    rejected: list[str] = field(default_factory=list)


class RowError(ValueError):
    pass


def tns_key(text: str | None) -> str | None:
    """`2016dbs` of `AT 2016dbs`, `AT2016dbs`, `SN 2016dbs` or `2016dbs`; None otherwise."""
    m = _TNS_NAME.match(text or "")
    return m.group(1) if m else None


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"{what} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise RowError(f"{what} {text[:40]!r} is not finite")
    return value


def _optional_number(text: str, what: str) -> float | None:
    return _number(text, what) if text else None


def _angle(text: str, what: str, hours: bool) -> float:
    """Degrees from `123.456`, or sexagesimal `hh:mm:ss.s` (`hours`) / `±dd:mm:ss.s`."""
    parts = re.split(r"[:\s]+", text.strip())
    if len(parts) == 1:
        return _number(text, what)
    if len(parts) != 3:
        raise RowError(f"{what} {text[:40]!r} is neither degrees nor sexagesimal")
    sign = -1.0 if parts[0].startswith("-") else 1.0
    a, m, s = (abs(_number(p, what)) for p in parts)
    if m >= 60 or s >= 60:
        raise RowError(f"{what} {text[:40]!r}: minutes and seconds must be below 60")
    return sign * (a + m / 60 + s / 3600) * (15.0 if hours else 1.0)


def _name(text: str, what: str = "Name") -> str:
    if not text:
        raise RowError(f"{what} is empty")
    if _CONTROL.search(text):
        raise RowError(f"{what} {text[:40]!r} contains a control character")
    if len(text) > MAX_NAME:
        raise RowError(f"{what} {text[:40]!r}... is longer than {MAX_NAME} characters")
    return text


def _text(text: str, what: str, limit: int | None = None) -> str | None:
    """Free text (tabs and line breaks allowed), or with `limit` one line cut to `limit`."""
    if not text:
        return None
    if (_CONTROL if limit is not None else _CONTROL_IN_TEXT).search(text):
        raise RowError(f"{what} contains a control character")
    return text[:limit] if limit is not None else text


def _check_position(ra: float, dec: float) -> None:
    if not (0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0):
        raise RowError(f"ra/dec out of range ({ra:g}, {dec:g}): ra in [0, 360), dec in [-90, 90]")


def _gaia(rec: dict[str, str]) -> FeedAlert:
    name = _name(rec.get("Name", ""))
    ra, dec = _number(rec.get("RaDeg", ""), "RaDeg"), _number(rec.get("DecDeg", ""), "DecDeg")
    _check_position(ra, dec)
    date = _text(rec.get("Date", ""), "Date", 40)
    return FeedAlert(
        name=name,
        ivorn=GAIA_IVORN.format(name=name),
        ra=ra,
        dec=dec,
        url=GAIA_PAGE.format(name=quote(name, safe="")),
        tns_name=tns_key(rec.get("TNSid")),
        alert_mag=_optional_number(rec.get("AlertMag", ""), "AlertMag"),
        classification=_text(rec.get("Class", ""), "Class", 200),
        published=_text(rec.get("Published", ""), "Published", 40) or date,
        discovered=date,
        comment=_text(rec.get("Comment", ""), "Comment"),
    )


def _tns(rec: dict[str, str]) -> FeedAlert:
    name = _name(rec.get("Name", ""))
    key = tns_key(name)
    if key is None:
        raise RowError(f"Name {name[:40]!r} is not a TNS name such as 'AT 2016dbs'")
    ra = _angle(rec.get("RA", ""), "RA", hours=True)
    dec = _angle(rec.get("DEC", ""), "DEC", hours=False)
    _check_position(ra, dec)
    internal = [n.strip() for n in rec.get("Disc. Internal Name", "").split(",") if n.strip()]
    mag = rec.get("Discovery Mag/Flux", "")
    return FeedAlert(
        name=name,
        ivorn=TNS_IVORN.format(tns=key),
        ra=ra,
        dec=dec,
        url=TNS_PAGE.format(tns=key),
        tns_name=key,
        aliases=tuple(_name(n, "Disc. Internal Name") for n in internal),
        alert_mag=_optional_number(mag, "Discovery Mag/Flux"),
        classification=_text(rec.get("Obj. Type", ""), "Obj. Type", 200),
        discovered=_text(rec.get("Discovery Date (UT)", ""), "Discovery Date (UT)", 40),
        comment=_text(rec.get("Remarks", ""), "Remarks"),
    )


def parse(text: str) -> Parsed:
    """The alerts of a Gaia alerts CSV or a TNS CSV export, in file order, and the rows that
    could not be read; FeedFormatError when the header is neither layout."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), skipinitialspace=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise FeedFormatError(f"line 1: {e}") from None
    if header is None:
        raise FeedFormatError("the file is empty")
    names = [h.strip().lstrip("#").strip() for h in header]
    if all(c in names for c in ("Name", "RaDeg", "DecDeg")):
        parsed, read_row = Parsed("gaia"), _gaia
    elif all(c in names for c in TNS_REQUIRED):
        parsed, read_row = Parsed("tns"), _tns
    else:
        raise FeedFormatError(
            f"the header names neither a Gaia alerts list (#{','.join(GAIA_COLUMNS)}) nor a "
            f"TNS export ({', '.join(TNS_REQUIRED)}, ...)"
        )
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            parsed.rejected.append(f"line {reader.line_num}: {e}")
            continue
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) > len(names):
            parsed.rejected.append(
                f"line {reader.line_num}: {len(row)} fields, the header names {len(names)}"
            )
            continue
        rec = {k: v.strip() for k, v in zip(names, row, strict=False)}
        try:
            parsed.alerts.append(read_row(rec))
        except RowError as e:
            parsed.rejected.append(f"line {reader.line_num}: {e}")
    return parsed

"""Import the Gaia Science Alerts list (the `alerts.csv` published by the Gaia alerts team).

Format: a header line `#Name,Date,RaDeg,DecDeg,AlertMag,HistoricMag,HistoricStdDev,Class,
Published,Comment,TNSid`, then one alert per line; text fields may be quoted and contain commas.

Alerts are upserted by name, so importing a newer list again updates the known alerts and adds the
new ones. A new alert gets the IVORN ``ivo://gaia-alerts/<Name>`` (calserv's own convention: the
list carries no IVORN) and the alert page ``https://gsaweb.ast.cam.ac.uk/alerts/alert/<Name>``
(the URL convention documented with the Gaia DR3 science-alerts table). An alert already known by
name (e.g. inserted by `POST /newevent` with its VOEvent IVORN) keeps its IVORN.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Alert
from web.alert_registry import validate_alert
from web.errors import ApiError
from web.hygiene import free_text, single_line

COLUMNS = (
    "Name",
    "Date",
    "RaDeg",
    "DecDeg",
    "AlertMag",
    "HistoricMag",
    "HistoricStdDev",
    "Class",
    "Published",
    "Comment",
    "TNSid",
)
IVORN_PREFIX = "ivo://gaia-alerts/"
PAGE_URL = "https://gsaweb.ast.cam.ac.uk/alerts/alert/{name}"


class ImportFormatError(ValueError):
    """The file is not in the Gaia alerts format; the message says where and why."""


@dataclass(frozen=True)
class GaiaAlert:
    name: str
    ra: float
    dec: float
    alert_mag: float | None
    classification: str | None
    published: str | None
    comment: str | None
    discovered: str | None = None

    @property
    def ivorn(self) -> str:
        return IVORN_PREFIX + self.name

    @property
    def url(self) -> str:
        """The alert's page on the Gaia alerts site; the name is percent-encoded into it."""
        return PAGE_URL.format(name=quote(self.name, safe=""))


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def _float(text: str, what: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ImportFormatError(f"line {line}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ImportFormatError(f"line {line}: {what} {text!r} is not finite")
    return value


def parse_gaia_alerts(text: str) -> Iterator[GaiaAlert]:
    """The alerts of a Gaia alerts CSV, in file order; raises ImportFormatError on bad lines."""
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    header = next(reader, None)
    if header is None:
        raise ImportFormatError("the file is empty")
    names = [h.strip().lstrip("#").strip() for h in header]
    missing = [c for c in ("Name", "RaDeg", "DecDeg") if c not in names]
    if missing:
        raise ImportFormatError(f"header lacks {', '.join(missing)}; expected #{','.join(COLUMNS)}")
    for row in reader:
        line = reader.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < len(names):
            row = row + [""] * (len(names) - len(row))
        rec = {k: v.strip() for k, v in zip(names, row, strict=False)}
        mag = rec.get("AlertMag", "")
        yield GaiaAlert(
            name=rec["Name"],
            ra=_float(rec["RaDeg"], "RaDeg", line),
            dec=_float(rec["DecDeg"], "DecDeg", line),
            alert_mag=_float(mag, "AlertMag", line) if mag else None,
            classification=rec.get("Class") or None,
            published=(rec.get("Published") or rec.get("Date") or None),
            discovered=rec.get("Date") or None,
            comment=rec.get("Comment") or None,
        )


def upsert_alerts(s: Session, alerts: list[GaiaAlert]) -> ImportReport:
    """Insert new alerts and update known ones (by name) in the session; the caller commits."""
    report = ImportReport()
    known = {
        a.name: a for a in s.scalars(select(Alert).where(Alert.name.in_([g.name for g in alerts])))
    }
    for g in alerts:
        try:
            validate_alert(g.ivorn, g.name, g.ra, g.dec, g.url)
            single_line("Class", g.classification or "")
            single_line("Published", g.published or "")
            free_text("Comment", g.comment or "")
        except ApiError as e:
            raise ImportFormatError(f"alert {g.name!r}: {e.error} ({e.detail})") from None
        fields = {
            "ra": g.ra,
            "dec": g.dec,
            "alert_mag": g.alert_mag,
            "classification": g.classification[:200] if g.classification else None,
            "published": g.published[:40] if g.published else None,
            "discovered": g.discovered[:40] if g.discovered else None,
            "comment": g.comment,
        }
        row = known.get(g.name)
        if row is None:
            row = Alert(ivorn=g.ivorn, name=g.name, url=g.url, **fields)
            s.add(row)
            known[g.name] = row
            report.added += 1
        elif any(getattr(row, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(row, k, v)
            report.updated += 1
        else:
            report.unchanged += 1
    return report

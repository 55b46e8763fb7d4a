"""Lists and light curves as astronomy tables: VOTable, ECSV and FITS, written by astropy.

The endpoints hand over the rows they already have (dicts, as their JSON shows them) and a few
facts about the table (the alert, the page); this module gives every column its type, unit, UCD
and description and writes the file. Nothing is computed here. astropy is imported on the first
table asked for, so creating the app and answering JSON or CSV never loads numpy.

- ECSV and FITS carry `date_obs` as an astropy `Time` (UTC); the VOTable as an ISO 8601 string
  (`xtype="timestamp"`, DALI) beside `mjd`, whose FIELD refers to a UTC MJD `TIMESYS`.
- The table's facts (e.g. the alert's IVORN, name and position) are ECSV `meta`, FITS header
  keywords (upper case: `IVORN`, `OBJECT`, `RA`, `DEC`...) and, in the VOTable, PARAMs with units
  and UCDs plus INFOs of the results RESOURCE (which pyvo's `DALResults` reads), whose
  `QUERY_STATUS` is `OVERFLOW` when the page holds fewer rows than the list.
- Lists (flags, warnings) are one text cell, their entries joined by "; ".
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Response

from web.negotiation import MEDIA_TYPES

if TYPE_CHECKING:  # astropy itself is imported by the first table asked for
    from astropy.table import Table

SUFFIXES = {"votable": "vot", "ecsv": "ecsv", "fits": "fits"}
LIST_SEPARATOR = "; "


@dataclass(frozen=True)
class Col:
    """How a column is typed and described: `kind` is float, int, bool, str or time."""

    kind: str
    unit: str | None = None
    ucd: str | None = None
    description: str = ""


_MAG = "mag"
#: Every column calserv serves, by name; an unknown name is typed from its values.
COLUMNS: dict[str, Col] = {
    "mjd": Col("float", "d", "time.epoch", "Modified Julian Date of the observation (UTC)"),
    "date_obs": Col("time", None, "time.epoch", "date of the observation, ISO 8601 UTC"),
    "last_mjd": Col("float", "d", "time.epoch", "MJD of the latest point (UTC)"),
    "last_date_obs": Col("time", None, "time.epoch", "date of the latest point, ISO 8601 UTC"),
    "mag": Col("float", _MAG, "phot.mag", "calibrated magnitude; the upper limit when limit"),
    "magerr": Col("float", _MAG, "stat.error;phot.mag", "its 1-sigma error; -1 for a limit"),
    "mag_err": Col("float", _MAG, "stat.error;phot.mag", "its 1-sigma error; -1 for a limit"),
    "caliberr": Col("float", _MAG, "stat.error", "zero-point uncertainty of the calibration"),
    "limit": Col("bool", None, "meta.code", "true: not detected, mag is an upper limit"),
    "limiting_mag": Col("float", _MAG, "phot.mag", "5-sigma limiting magnitude of the frame"),
    "zeropoint": Col("float", _MAG, "phot.mag;arith.zp", "magnitude zero point"),
    "zeropoint_err": Col("float", _MAG, "stat.error", "zero-point uncertainty"),
    "zeropoint_order": Col("int", None, "meta.code", "spatial order of the zero point model"),
    "colour_term": Col("float", None, "arith.factor", "colour coefficient of the fit"),
    "scatter": Col("float", _MAG, "stat.stdev", "robust scatter of the calibration stars"),
    "npoints": Col("int", None, "meta.number", "calibration stars, or points of an alert"),
    "outlier_fraction": Col("float", None, "arith.factor", "fraction of matched stars rejected"),
    "match_dist": Col("float", "arcsec", "pos.angDistance", "crossmatch radius used"),
    "ra": Col("float", "deg", "pos.eq.ra", "right ascension (ICRS)"),
    "dec": Col("float", "deg", "pos.eq.dec", "declination (ICRS)"),
    "alert_mag": Col("float", _MAG, "phot.mag", "magnitude in the alert"),
    "exptime": Col("float", "s", "time.duration;obs.exposure", "exposure time"),
    "processing_time": Col("float", "s", "time.duration", "seconds the calibration took"),
    "filter": Col("str", None, "meta.id;instr.filter", "band of the calibration"),
    "survey": Col("str", None, "meta.id", "reference survey of the zero point"),
    "observatory": Col("str", None, "meta.id;instr.tel", "observatory that sent the frame"),
    "alert": Col("str", None, "meta.id;meta.main", "name of the alert"),
    "name": Col("str", None, "meta.id;meta.main", "name of the alert"),
    "ivorn": Col("str", None, "meta.ref.ivoid", "IVORN of the alert"),
    "followup_id": Col("int", None, "meta.id", "id of the follow-up point"),
    "job_id": Col("str", None, "meta.id", "id of the calibration job"),
    "attempts": Col("int", None, "meta.number", "runs of the job"),
    "dry_run": Col("bool", None, "meta.code", "true: calibrated, not stored as a point"),
    "target_flags": Col("str", None, "meta.code.qual", "conditions of the measurement"),
    "warnings": Col("str", None, "meta.note", "what to be careful with"),
}
#: URL columns (their UCD).
for _name in ("url", "url_page", "job_url", "plot_url", "status_url", "lightcurve_url"):
    COLUMNS[_name] = Col("str", None, "meta.ref.url", "")


@dataclass(frozen=True)
class TableInfo:
    """What a table is about: a title, and facts (name → value) such as the alert's IVORN and
    position, or the page of a list (`total` rows, `page`, `per_page`)."""

    title: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    #: Fewer rows here than in the whole list (a page of it).
    truncated: bool = False


def table_response(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str,
    info: TableInfo,
    filename: str,
) -> Response:
    """`rows` (their `columns`) as a `fmt` file download (`votable`, `ecsv` or `fits`)."""
    body = serialize(rows, columns, fmt, info)
    resp = Response(body, mimetype=MEDIA_TYPES[fmt][0])
    safe = re.sub(r"[^\w.+-]", "_", f"{filename}.{SUFFIXES[fmt]}", flags=re.ASCII)
    resp.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return resp


def serialize(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str, info: TableInfo
) -> bytes:
    """The file's bytes: `rows` as a `fmt` table."""
    table = build_table(rows, columns, info, fmt)
    if fmt == "votable":
        return _votable(table, info)
    out = io.BytesIO() if fmt == "fits" else io.StringIO()
    table.write(out, format="fits" if fmt == "fits" else "ascii.ecsv")
    value = out.getvalue()
    return value if isinstance(value, bytes) else value.encode()


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _kind(name: str, values: list) -> str:
    spec = COLUMNS.get(name)
    if spec is not None:
        return spec.kind
    present = [v for v in values if v is not None]
    for kind, types in (("bool", bool), ("int", int), ("float", int | float)):
        if present and all(isinstance(v, types) for v in present):
            return kind
    return "str"


def build_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], info: TableInfo, fmt: str
) -> Table:
    """The astropy Table of `rows`: typed columns, masked where a value is None, with units,
    UCDs and descriptions; `fmt` decides how times and text are stored."""
    import numpy as np
    from astropy.table import MaskedColumn, Table
    from astropy.time import Time

    # The VOTable has its own places for these (_votable); its writer reads `name` and `ID`.
    meta = {} if fmt == "votable" else _meta_values({"title": info.title, **info.facts}, fmt)
    table = Table(meta=meta)
    for name in columns:
        values = [_cell(row.get(name)) for row in rows]
        kind = _kind(name, values)
        mask = [v is None for v in values]
        spec = COLUMNS.get(name, Col(kind))
        if kind == "time" and fmt != "votable" and not (fmt == "fits" and any(mask)):
            iso = ["2000-01-01T00:00:00" if v is None else v.rstrip("Z") for v in values]
            when = Time(iso, format="isot", scale="utc", precision=3)
            if any(mask):
                when[np.array(mask)] = np.ma.masked
            table[name] = when
            table[name].info.description = spec.description
            continue
        if kind in ("time", "str"):
            texts = ["" if v is None else str(v) for v in values]
            if fmt == "fits":  # FITS text is bytes: UTF-8 keeps every name
                data = np.array([t.encode() for t in texts] or [b""], dtype=bytes)[: len(texts)]
            else:
                data = np.array(texts or [""], dtype=str)[: len(texts)]
        else:
            dtype = {"float": float, "int": np.int64, "bool": bool}[kind]
            zero = {"float": np.nan, "int": 0, "bool": False}[kind]
            data = np.array([zero if v is None else v for v in values], dtype=dtype)
        # FITS has no null boolean: astropy would write a masked one as True
        fill = {"bool": False}.get(kind)
        column = MaskedColumn(data, name=name, mask=mask, unit=spec.unit, fill_value=fill)
        column.description = spec.description or None
        if spec.ucd:
            column.meta["ucd"] = spec.ucd
        if kind == "time":
            column.meta["xtype"] = "timestamp"
        table.add_column(column)
    return table


def _meta_values(facts: Mapping[str, Any], fmt: str) -> dict:
    """The facts as table meta: FITS header keywords are upper-case ASCII, at most 8 characters
    (`name` is the standard `OBJECT`); other formats keep the names."""
    if fmt != "fits":
        return {k: v for k, v in facts.items() if v is not None}
    out = {}
    for key, value in facts.items():
        if value is None:
            continue
        keyword = "OBJECT" if key == "name" else key.upper()[:8]
        if isinstance(value, str):  # header cards are ASCII: others written as \u escapes
            value = value.encode("ascii", "backslashreplace").decode()
        out[keyword] = value
    return out


def _votable(table: Table, info: TableInfo) -> bytes:
    """The table as a VOTable 1.4 whose RESOURCE is a DAL results one (pyvo reads it): facts as
    PARAMs (with units and UCDs when calserv knows the name) and INFOs, `mjd` tied to a UTC MJD
    time system."""
    from astropy.io.votable.tree import Info, Param, TimeSys, VOTableFile

    vot = VOTableFile.from_table(table)
    resource = vot.resources[0]
    resource.type = "results"
    status = "OVERFLOW" if info.truncated else "OK"
    resource.infos.append(Info(ID="query_status", name="QUERY_STATUS", value=status))
    resource.time_systems.append(
        TimeSys(
            ID="utc_mjd",
            timeorigin="MJD-origin",
            timescale="UTC",
            refposition="TOPOCENTER",
            config={"version_1_4_or_later": True},  # written as VOTable 1.4
        )
    )
    element = resource.tables[0]
    element.name = re.sub(r"\W+", "_", info.title, flags=re.ASCII).strip("_") or "table"
    element.description = info.title
    for key, value in info.facts.items():
        if value is None:
            continue
        resource.infos.append(Info(ID=f"info_{key}", name=key, value=str(value)))
        spec = COLUMNS.get(key)
        datatype, arraysize = _param_type(value)
        param = Param(
            vot,
            name=key,
            ID=f"param_{key}",
            value=value,
            datatype=datatype,
            arraysize=arraysize,
            unit=spec.unit if spec else None,
            ucd=spec.ucd if spec else None,
        )
        element.params.append(param)
    for f in element.fields:
        if f.name in ("mjd", "last_mjd"):
            f.ref = "utc_mjd"
    out = io.BytesIO()
    vot.write(out)
    return out.getvalue()


def _param_type(value: Any) -> tuple[str, str | None]:
    if isinstance(value, bool):
        return "boolean", None
    if isinstance(value, int):
        return "long", None
    if isinstance(value, float):
        return "double", None
    return "unicodeChar", "*"

"""The calibration result's vocabulary, written once: its keys, their types and meaning, the
follow-up row they are stored in, and the public light-curve row made from that.

Numpy-free (the web tier imports it without the science stack). `CalibrationResult.to_dict`
fills it, the worker stores it, the job JSON, the follow-up lists and the light curve show it.
The batch client keeps its own copy of the keys it records (its wire contract); a test checks
that the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The `mag_err` (light curve: `magerr`) of an upper limit, whose `mag` is the limiting magnitude.
LIMIT_MAG_ERR = -1.0


@dataclass(frozen=True)
class ResultField:
    """One key of a result: its JSON type, what it means, who sets it and its default."""

    name: str
    type: type
    meaning: str
    nullable: bool = False
    default: Any = None
    #: "calib" (`CalibrationResult.to_dict`) or "worker" (added when the job is stored).
    source: str = "calib"


_F = ResultField
RESULT_FIELDS: tuple[ResultField, ...] = (
    _F("survey", str, "reference survey of the zero point, e.g. GaiaDR3"),
    _F("filter", str, "band of the frame's calibration, e.g. V"),
    _F("mag", float, "calibrated magnitude of the alert; the limiting magnitude when `limit`"),
    _F("mag_err", float, f"its 1-sigma error; {LIMIT_MAG_ERR:g} when `limit`"),
    _F("limit", bool, "true when the alert was not detected: `mag` is an upper limit"),
    _F("limiting_mag", float, "the frame's 5-sigma limiting magnitude", nullable=True),
    _F("zeropoint", float, "magnitude zero point (catalogue to reference system)"),
    _F("zeropoint_err", float, "its 1-sigma uncertainty (the light curve's `caliberr`)"),
    _F("colour_term", float, "colour coefficient of the fit", nullable=True),
    _F("colour_term_err", float, "its 1-sigma uncertainty", nullable=True),
    _F("fwhm", float, "the frame's typical FWHM (arcsec) when measured", nullable=True),
    _F("scatter", float, "robust scatter of the calibration stars (mag)", nullable=True),
    _F("npoints", int, "calibration stars kept in the fit"),
    _F("outlier_fraction", float, "fraction of matched stars rejected", nullable=True),
    _F("match_dist", float, "crossmatch radius used (arcsec)", nullable=True),
    _F("ra", float, "position of the measured source (the alert's for a limit), deg"),
    _F("dec", float, "position of the measured source (the alert's for a limit), deg"),
    _F("zeropoint_order", int, "spatial order of the zero-point model, 0 = constant", default=0),
    _F("target_flags", list, "conditions of the alert's measurement, e.g. blended", default=()),
    _F("warnings", list, "conditions of the calibration the user should know", default=()),
    _F("candidates", list, "every survey/band fit considered, the chosen one marked", default=()),
    _F("log", list, "the pipeline's decisions, in order", default=()),
    _F("cutout_url", str, "URL of the alert's image cutout (FITS uploads)", nullable=True),
    _F(
        "instrument_checks",
        dict,
        "the frame against its instrument's history (once it has 5 frames): "
        "zeropoint_offset, colour_term_offset, depth_offset, fwhm_ratio, flags "
        "(zeropoint_low, zeropoint_high, colour_term_mismatch, depth_low, seeing_poor)",
        nullable=True,
        source="worker",
    ),
    _F("processing_time", float, "seconds the calibration took", nullable=True, source="worker"),
)
RESULT_KEYS = tuple(f.name for f in RESULT_FIELDS)
FIELDS = {f.name: f for f in RESULT_FIELDS}

#: Follow-up row column ← result key (the row also holds the job's mjd, exptime, comment).
FOLLOWUP_COLUMNS = {
    "survey": "survey",
    "filter": "filter",
    "mag": "mag",
    "mag_err": "mag_err",
    "is_limit": "limit",
    "limiting_mag": "limiting_mag",
    "zeropoint": "zeropoint",
    "zeropoint_err": "zeropoint_err",
    "zeropoint_order": "zeropoint_order",
    "npoints": "npoints",
    "scatter": "scatter",
    "target_flags": "target_flags",
    "warnings": "warnings",
}
#: The public light-curve row (CSV and JSON): `magerr` is `mag_err` (LIMIT_MAG_ERR for a limit),
#: `caliberr` the zero-point uncertainty, `limit` true for an upper limit; `date_obs` (the MJD
#: in ISO 8601 UTC) comes with the row's context, as mjd does.
LIGHTCURVE_COLUMNS = (
    "mjd", "date_obs", "mag", "magerr", "caliberr", "filter", "survey", "observatory",
    "followup_id", "limit",
)  # fmt: skip
#: What the light curve's JSON adds to each row (lists do not fit the CSV); `outlier`: the point
#: disagrees with most same-night points of other observatories in its band.
LIGHTCURVE_JSON_COLUMNS = (
    *LIGHTCURVE_COLUMNS, "zeropoint_order", "target_flags", "warnings", "outlier",
)  # fmt: skip


def default(name: str) -> Any:
    """The value of a key calib did not set (a fresh list for list keys)."""
    value = FIELDS[name].default
    return list(value) if isinstance(value, tuple) else value


def json_value(name: str, value: Any) -> Any:
    """`value` as the JSON type of key `name`: python scalars, None for a missing or non-finite
    number (numpy scalars convert too), lists as lists."""
    kind = FIELDS[name].type
    if value is None:
        return default(name)
    if kind is float:
        value = float(value)
        return value if math.isfinite(value) else None
    if kind is list:
        return [dict(v) if isinstance(v, Mapping) else v for v in value]
    return kind(value)


def result_dict(values: Mapping[str, Any]) -> dict:
    """The JSON result of a calibration from `values` (key → value); keys calib does not set
    yet get their defaults; the limit rule is applied."""
    out = {
        f.name: json_value(f.name, values.get(f.name)) for f in RESULT_FIELDS if f.source == "calib"
    }
    if out["limit"]:
        out["mag_err"] = LIMIT_MAG_ERR
    return out


def followup_values(result: Mapping[str, Any]) -> dict:
    """The follow-up row's columns from a stored result (defaults for keys it lacks)."""
    return {
        column: result[key] if result.get(key) is not None else default(key)
        for column, key in FOLLOWUP_COLUMNS.items()
    }


def followup_result(row: Any) -> dict:
    """The result keys of a follow-up row (an ORM object or a mapping), with the limit rule."""
    get = row.get if isinstance(row, Mapping) else lambda column: getattr(row, column)
    out = {key: get(column) for column, key in FOLLOWUP_COLUMNS.items()}
    if out["limit"]:
        out["mag_err"] = LIMIT_MAG_ERR
    return out


def lightcurve_row(result: Mapping[str, Any], **context: Any) -> dict:
    """A light-curve row from a follow-up's result keys; `context` gives mjd, observatory,
    followup_id (and anything else the caller shows)."""
    return {
        **context,
        "mag": result["mag"],
        "magerr": result["mag_err"],
        "caliberr": result["zeropoint_err"],
        "filter": result["filter"],
        "survey": result["survey"],
        "limit": result["limit"],
        "zeropoint": result["zeropoint"],
        "zeropoint_order": result["zeropoint_order"],
        "target_flags": result["target_flags"],
        "warnings": result["warnings"],
        "npoints": result["npoints"],
        "outlier": False,  # judged against the other points (`calib.intercalibration`)
    }

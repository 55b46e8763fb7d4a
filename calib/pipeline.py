"""Calibrate a frame end to end: clean, match each survey, fit each band, choose, measure."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from . import schema
from .catalog import SourceCatalog
from .clean import clean_catalog
from .errors import CalibrationError
from .match import MatchRadius, apply_shift, auto_crossmatch, crossmatch
from .reference import RefCatalog
from .target import limiting_magnitude, measure_target
from .zeropoint import ZeroPointFit, colour_for_band, fit_zeropoint

# A correct band needs a small colour term; a colour term this large means the frame was
# matched to another band whose colour relation happens to fit (e.g. an R frame against I).
MAX_PLAUSIBLE_COLOUR_TERM = 0.3
_AUTOMATIC = ("", "no", "none", "auto", "0")
_FORCE_RE = re.compile(r"^\s*([^/\s]+)\s*/\s*([^/\s]+)\s*$")


def parse_force_filter(value: str | None) -> tuple[str | None, str | None] | None:
    """Parse ``forceFilter``: ``None`` for automatic, else ``(survey, band)``.

    ``'no'``, ``''`` or ``None`` mean automatic; ``'APASS/V'`` forces both; ``any`` on either
    side leaves that side free (``'any/V'`` -> ``(None, 'V')``).
    """
    if value is None or value.strip().lower() in _AUTOMATIC:
        return None
    match = _FORCE_RE.match(value)
    if match is None:
        raise ValueError(
            f"forceFilter {value!r} is not understood; use 'no' for automatic, SURVEY/FILTER "
            "(e.g. APASS/V), any/FILTER or SURVEY/any"
        )
    survey, band = (None if part.lower() == "any" else part for part in match.groups())
    if survey is None and band is None:
        return None
    return survey, band


@dataclass
class Candidate:
    """One survey/band zero-point fit considered for the frame."""

    survey: str
    band: str
    fit: ZeroPointFit
    match: MatchRadius
    chosen: bool = False

    @property
    def plausible(self) -> bool:
        ct = self.fit.colour_term
        return ct is None or abs(ct) <= MAX_PLAUSIBLE_COLOUR_TERM

    def rank(self) -> tuple[bool, float]:
        """Sort key: plausible colour term first, then lowest zero-point uncertainty."""
        return (not self.plausible, self.fit.zeropoint_err or math.inf)

    def to_dict(self) -> dict:
        f = self.fit
        return {
            "survey": self.survey,
            "filter": self.band,
            "zeropoint": _num(f.zeropoint),
            "zeropoint_err": _num(f.zeropoint_err),
            "colour_term": _num(f.colour_term),
            "scatter": _num(f.scatter),
            "npoints": int(f.npoints),
            "outlier_fraction": _num(f.outlier_fraction),
            "ok": bool(f.ok),
            "reason": f.reason,
            "chosen": self.chosen,
        }


@dataclass
class CalibrationResult:
    """Calibrated measurement of the alert on one frame (`calib.schema` describes its JSON).

    ``fit`` is the chosen zero-point fit, with the per-star arrays used by the plot.
    """

    survey: str
    filter: str
    mag: float
    mag_err: float
    limit: bool
    limiting_mag: float | None
    zeropoint: float
    zeropoint_err: float
    colour_term: float | None
    scatter: float
    npoints: int
    outlier_fraction: float
    match_dist: float
    ra: float
    dec: float
    candidates: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    fit: ZeroPointFit | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-safe dict of `calib.schema.RESULT_FIELDS`: python scalars, ``None`` for NaN."""
        keys = [k for k in schema.RESULT_KEYS if hasattr(self, k)]
        return schema.result_dict({k: getattr(self, k) for k in keys})


def _num(value):
    """Python float for numbers (None for None/NaN/inf); other values unchanged."""
    if value is None or isinstance(value, (str, bool)):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def calibrate(
    catalog: SourceCatalog,
    refs: Sequence[RefCatalog],
    target_ra: float,
    target_dec: float,
    *,
    match_dist_arcsec: float | None = None,
    force_filter: str | None = None,
    allowed_filters: Sequence[str] | None = None,
) -> CalibrationResult:
    """Calibrate ``catalog`` against every reference survey and measure the alert.

    Parameters
    ----------
    catalog : SourceCatalog
        The frame's sources, instrumental magnitudes.
    refs : sequence of RefCatalog
        Reference stars covering the frame, one entry per survey.
    target_ra, target_dec : float
        Alert position, ICRS degrees.
    match_dist_arcsec : float, optional
        Crossmatch radius; ``None`` or 0 chooses it per survey from the astrometric offsets,
        correcting a systematic shift of the catalogue first.
    force_filter : str, optional
        ``forceFilter`` as uploaded (see `parse_force_filter`); honoured exactly.
    allowed_filters : sequence of str, optional
        The observatory's filters: the automatic choice stays among them when one passes.

    Raises
    ------
    CalibrationError
        No survey/band passes the quality gates, or the forced one is unavailable or fails.
    ValueError
        ``force_filter`` is malformed.
    """
    forced = parse_force_filter(force_filter)
    log = [f"catalogue: {len(catalog)} sources ({catalog.format}; {_describe(catalog)})"]
    if match_dist_arcsec is not None and not (
        math.isfinite(match_dist_arcsec) and match_dist_arcsec >= 0
    ):
        raise CalibrationError(
            f"matchDist must be a non-negative number of arcsec, not {match_dist_arcsec}"
        )
    cleaned, rejected = clean_catalog(catalog)
    dropped = ", ".join(f"{k} {v}" for k, v in rejected.items() if v) or "none"
    log.append(f"cleaning: kept {len(cleaned)} of {len(catalog)} sources (rejected: {dropped})")
    if len(cleaned) == 0:
        raise CalibrationError(
            f"no usable sources in the catalogue after cleaning "
            f"({len(catalog)} rejected: {dropped})"
        )
    if not refs:
        raise CalibrationError("no reference catalogue covers the field")

    candidates = []
    for ref in refs:
        candidates.extend(_fit_survey(cleaned, ref, match_dist_arcsec, log))
    chosen = _choose(candidates, forced, allowed_filters, len(cleaned), log)
    chosen.chosen = True
    fit = chosen.fit
    log.append(
        f"chosen {chosen.survey}/{chosen.band}: zero point {fit.zeropoint:.3f} ± "
        f"{fit.zeropoint_err:.3f} from {fit.npoints} stars"
    )

    shift = chosen.match
    raw_ra, raw_dec = apply_shift(
        catalog.ra, catalog.dec, shift.shift_ra_arcsec, shift.shift_dec_arcsec
    )
    shifted = replace(catalog, ra=raw_ra, dec=raw_dec)  # shares the other columns
    inst_limit = limiting_magnitude(cleaned.mag, cleaned.mag_err)
    limiting_mag = fit.zeropoint + inst_limit
    target = measure_target(
        shifted,
        target_ra,
        target_dec,
        shift.radius_arcsec,
        fit.zeropoint,
        fit.zeropoint_err,
        limiting_mag,
    )
    if target.limit:
        log.append(
            f"target: no source within {shift.radius_arcsec:.2f} arcsec of the alert; "
            f"upper limit {target.mag:.2f} (S/N = 5)"
        )
    else:
        flagged = f", FLAGS {target.flags}" if target.flags else ""
        log.append(
            f"target: source at {target.separation_arcsec:.2f} arcsec{flagged}; "
            f"{chosen.band} = {target.mag:.3f} ± {target.mag_err:.3f}"
        )
    return CalibrationResult(
        survey=chosen.survey,
        filter=chosen.band,
        mag=target.mag,
        mag_err=target.mag_err,
        limit=target.limit,
        limiting_mag=target.limiting_mag,
        zeropoint=fit.zeropoint,
        zeropoint_err=fit.zeropoint_err,
        colour_term=fit.colour_term,
        scatter=fit.scatter,
        npoints=fit.npoints,
        outlier_fraction=fit.outlier_fraction,
        match_dist=shift.radius_arcsec,
        ra=target.ra,
        dec=target.dec,
        candidates=[c.to_dict() for c in candidates],
        log=log,
        fit=fit,
    )


def _describe(catalog: SourceCatalog) -> str:
    return ", ".join(f"{role}={name}" for role, name in catalog.columns.items())


def _fit_survey(
    cleaned: SourceCatalog, ref: RefCatalog, match_dist: float | None, log: list[str]
) -> list[Candidate]:
    """Match the cleaned catalogue to one survey and fit each of its bands."""
    if match_dist:
        match = MatchRadius(float(match_dist), 0.0, 0.0, 0)
        how = "given"
        i1, i2, _ = crossmatch(cleaned.ra, cleaned.dec, ref.ra, ref.dec, match.radius_arcsec)
    else:
        match, i1, i2, _ = auto_crossmatch(cleaned.ra, cleaned.dec, ref.ra, ref.dec)
        how = (
            f"automatic; catalogue shifted by {match.shift_ra_arcsec:+.2f}, "
            f"{match.shift_dec_arcsec:+.2f} arcsec"
        )
    log.append(
        f"{ref.survey}: {len(ref)} reference stars, {len(i1)} matched within "
        f"{match.radius_arcsec:.2f} arcsec ({how})"
    )
    bands = list(ref.bands)
    candidates = []
    for band, (mag, err) in ref.bands.items():
        with np.errstate(invalid="ignore"):
            good = np.isfinite(mag[i2]) & (np.abs(mag[i2]) < 50)
        j1, j2 = i1[good], i2[good]
        colour_bands = colour_for_band(band, bands)
        colour = colour_name = None
        if colour_bands is not None:
            blue, red = (ref.bands[b][0][j2] for b in colour_bands)
            colour, colour_name = blue - red, "-".join(colour_bands)
        fit = fit_zeropoint(
            cleaned.mag[j1],
            cleaned.mag_err[j1],
            mag[j2],
            err[j2],
            colour=colour,
            colour_name=colour_name,
        )
        if fit.npoints == 0 and len(j1) == 0:
            fit.reason = (
                f"no reference stars matched within {match.radius_arcsec:.1f} arcsec "
                f"(0 of {len(cleaned)} sources); check the astrometry or matchDist"
            )
        candidates.append(Candidate(ref.survey, band, fit, match))
        log.append(_describe_fit(ref.survey, band, fit))
    return candidates


def _describe_fit(survey: str, band: str, fit: ZeroPointFit) -> str:
    if fit.zeropoint is None:
        return f"{survey}/{band}: rejected, {fit.reason}"
    colour = f", colour term {fit.colour_term:+.3f} ({fit.colour})" if fit.colour else ""
    text = (
        f"{survey}/{band}: zero point {fit.zeropoint:.3f} ± {fit.zeropoint_err:.3f}{colour}, "
        f"scatter {fit.scatter:.3f}, {fit.npoints} stars, {fit.outlier_fraction:.0%} outliers"
    )
    return text if fit.ok else f"{text}; rejected, {fit.reason}"


def _choose(
    candidates: list[Candidate],
    forced: tuple[str | None, str | None] | None,
    allowed_filters: Sequence[str] | None,
    n_sources: int,
    log: list[str],
) -> Candidate:
    """Apply the forced filter or the observatory's filters, then take the best passing fit."""
    pool = candidates
    if forced is not None:
        survey, band = forced
        pool = [
            c
            for c in candidates
            if (survey is None or c.survey.lower() == survey.lower())
            and (band is None or c.band == band)
        ]
        wanted = f"{survey or 'any'}/{band or 'any'}"
        if not pool:
            available = ", ".join(f"{c.survey}/{c.band}" for c in candidates) or "none"
            raise CalibrationError(f"forced filter {wanted} not available; available: {available}")
        log.append(f"forced filter {wanted}: {len(pool)} candidate(s)")
    passing = [c for c in pool if c.fit.ok]
    if not passing:
        raise CalibrationError(_failure_message(pool, n_sources))
    if forced is None and allowed_filters:
        allowed = [c for c in passing if c.band in set(allowed_filters)]
        if allowed:
            passing = allowed
        else:
            log.append(
                f"none of the observatory's filters ({', '.join(allowed_filters)}) calibrates; "
                "choosing among all bands"
            )
    return min(passing, key=Candidate.rank)


def _failure_message(pool: list[Candidate], n_sources: int) -> str:
    if all(c.fit.npoints == 0 and c.fit.zeropoint is None for c in pool):
        radius = max(c.match.radius_arcsec for c in pool)
        return (
            f"no reference stars matched within {radius:.1f} arcsec (0 of {n_sources} sources); "
            "check the astrometry or matchDist"
        )
    reasons = "; ".join(f"{c.survey}/{c.band}: {c.fit.reason}" for c in pool)
    return f"no survey/filter passed the quality checks ({reasons})"

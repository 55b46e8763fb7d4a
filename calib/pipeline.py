"""Calibrate a frame and measure the alert on it: `calibrate`, the composition the worker calls.

`calib.frame.calibrate_frame` cleans the catalogue, matches each survey, fits each band and
chooses one (`CalibratedFrame`); `calib.alert.measure_alert` measures the alert in the frame's
catalogue (`AlertMeasurement`). The image path (`calib.imaging`) shares the first and measures
the alert by forced photometry instead. docs/calibration.md explains each rule with its numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import schema
from .alert import AlertMeasurement, measure_alert
from .catalog import SourceCatalog
from .frame import CalibratedFrame, calibrate_frame
from .instrument import BandHistory
from .reference import RefCatalog
from .zeropoint import ZeroPointFit


@dataclass
class CalibrationResult:
    """Calibrated measurement of the alert on one frame (`calib.schema` describes its JSON).

    ``zeropoint`` and ``zeropoint_err`` are evaluated at the target (``zeropoint_order`` is the
    order of the polynomial over the frame, 0 for a constant). ``target_flags`` lists which of
    ``saturated``, ``blended``, ``edge``, ``offset`` apply; ``warnings`` are sentences a user
    should read, ``target_notes`` those of them about the catalogue's measurement of the target
    (an image measures the target again, and replaces them). ``fit`` is the chosen zero-point
    fit, with the per-star arrays of the plot; ``astrometric_sigma`` (arcsec) the Rayleigh
    sigma of the calibrators' offsets from their reference positions.
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
    zeropoint_order: int = 0
    colour_term_err: float | None = None
    fwhm: float | None = None
    astrometric_sigma: float = 0.0
    candidates: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    target_flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    target_notes: list[str] = field(default_factory=list)
    fit: ZeroPointFit | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-safe dict of `calib.schema.RESULT_FIELDS`: python scalars, ``None`` for NaN."""
        keys = [k for k in schema.RESULT_KEYS if hasattr(self, k)]
        return schema.result_dict({k: getattr(self, k) for k in keys})


def calibrate(
    catalog: SourceCatalog,
    refs: Sequence[RefCatalog],
    target_ra: float,
    target_dec: float,
    *,
    match_dist_arcsec: float | None = None,
    force_filter: str | None = None,
    allowed_filters: Sequence[str] | None = None,
    instrument_history: Mapping[str, BandHistory] | None = None,
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
    match_dist_arcsec, force_filter, allowed_filters, instrument_history
        As `calib.frame.calibrate_frame`.

    Raises
    ------
    CalibrationError
        Invalid alert position, no survey/band passes the quality gates, a match no better
        than chance, the forced band is unavailable or fails, or ``force_filter`` is
        malformed. Nothing else is raised for what the observer sent.
    """
    alert = (target_ra, target_dec)
    frame = calibrate_frame(
        catalog,
        refs,
        alert,
        match_dist_arcsec=match_dist_arcsec,
        force_filter=force_filter,
        allowed_filters=allowed_filters,
        instrument_history=instrument_history,
    )
    return calibration_result(frame, measure_alert(frame, alert))


def calibration_result(frame: CalibratedFrame, alert: AlertMeasurement) -> CalibrationResult:
    """The result of the alert measured on the frame: the frame's log and warnings, then the
    measurement's."""
    target, fit, chosen = alert.target, frame.fit, frame.chosen
    return CalibrationResult(
        survey=frame.survey,
        filter=frame.band,
        mag=target.mag,
        mag_err=target.mag_err,
        limit=target.limit,
        limiting_mag=target.limiting_mag,
        zeropoint=alert.zeropoint,
        zeropoint_err=alert.zeropoint_err,
        colour_term=fit.colour_term,
        colour_term_err=chosen.colour_term_err if fit.colour_term is not None else None,
        fwhm=frame.fwhm_arcsec if frame.geometry.fwhm_measured else None,
        scatter=fit.scatter,
        npoints=fit.npoints,
        outlier_fraction=fit.outlier_fraction,
        match_dist=frame.match_radius_arcsec,
        ra=target.ra,
        dec=target.dec,
        zeropoint_order=fit.order,
        astrometric_sigma=frame.astrometric_sigma,
        candidates=[c.to_dict() for c in frame.candidates],
        log=(frame.log + alert.log).lines(),
        target_flags=target.target_flags,
        warnings=[*frame.warnings, *target.notes],
        target_notes=list(target.notes),
        fit=fit,
    )

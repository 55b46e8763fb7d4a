"""Measure the alert on a calibrated frame: a magnitude, or an upper limit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import SourceCatalog
from .clean import JUNK_MAG
from .match import unit_vectors
from .schema import LIMIT_MAG_ERR

SNR_LIMIT = 5.0
ERR_AT_LIMIT = 2.5 / np.log(10) / SNR_LIMIT  # 0.2171 mag: magnitude error at S/N = 5


@dataclass
class TargetMeasurement:
    """Calibrated magnitude of the alert, or an upper limit (``limit=True``, ``mag_err=-1``).

    ``ra, dec`` are the measured source's position (the alert position for a limit);
    ``separation_arcsec`` and ``flags`` describe the matched source.
    """

    mag: float
    mag_err: float
    limit: bool
    limiting_mag: float
    ra: float
    dec: float
    separation_arcsec: float | None = None
    flags: int | None = None


def limiting_magnitude(mag: np.ndarray, mag_err: np.ndarray) -> float | None:
    """Magnitude where the error reaches 0.2171 mag (S/N = 5), same system as ``mag``.

    Preferably the median magnitude of sources whose error is within 25% of 0.2171 (robust
    to outliers in magnitude). With too few of those, log10(err) is fitted linearly against
    magnitude on sources with 0.02 < err < 1 (faint-end errors grow as 10**(0.4 m)) and
    solved for S/N = 5, extrapolating at most 1 mag past the faintest source. Without usable
    errors, the faintest reliable detections (99th percentile of magnitudes) stand in.
    ``None`` for an empty catalogue.
    """
    mag = np.asarray(mag, dtype=np.float64)
    err = np.asarray(mag_err, dtype=np.float64)
    finite = np.isfinite(mag) & (np.abs(mag) < JUNK_MAG)
    if not finite.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        near_limit = finite & (np.abs(np.log(err / ERR_AT_LIMIT)) < np.log(1.25))
    if near_limit.sum() >= 5:
        return float(np.median(mag[near_limit]))
    extrapolated = _limit_from_error_trend(mag, err, finite)
    if extrapolated is not None:
        return extrapolated
    # Computed only here: a percentile of a large catalogue costs more than the rest.
    return float(np.percentile(mag[finite], 99))


def _limit_from_error_trend(mag: np.ndarray, err: np.ndarray, finite: np.ndarray) -> float | None:
    """S/N = 5 magnitude from a line through log10(err) vs magnitude (see `limiting_magnitude`).

    ``None`` with fewer than 10 usable errors, less than 0.5 mag of range, or errors that do
    not rise towards the faint end.
    """
    with np.errstate(invalid="ignore"):
        faint = finite & np.isfinite(err) & (err > 0.02) & (err < 1.0)
    if faint.sum() < 10 or np.ptp(mag[faint]) < 0.5:
        return None
    slope, intercept = np.polyfit(mag[faint], np.log10(err[faint]), 1)
    if not slope > 0.05:
        return None
    m5 = (np.log10(ERR_AT_LIMIT) - intercept) / slope
    if not np.isfinite(m5):
        return None
    faintest = float(np.max(mag[finite]))
    return float(min(m5, faintest + 1.0))


def nearest_source(
    catalog: SourceCatalog, ra: float, dec: float, radius_arcsec: float
) -> tuple[int, float] | None:
    """Index and separation (arcsec) of the closest valid source within the radius."""
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(catalog.ra) & np.isfinite(catalog.dec)
        valid &= np.isfinite(catalog.mag) & (np.abs(catalog.mag) < JUNK_MAG)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return None
    xyz = unit_vectors(catalog.ra[idx], catalog.dec[idx])
    centre = unit_vectors(np.array([ra]), np.array([dec]))[0]
    cos_sep = np.clip(xyz @ centre, -1.0, 1.0)
    best = int(np.argmax(cos_sep))
    sep = float(np.degrees(np.arccos(cos_sep[best])) * 3600.0)
    return (int(idx[best]), sep) if sep <= radius_arcsec else None


def measure_target(
    catalog: SourceCatalog,
    ra: float,
    dec: float,
    radius_arcsec: float,
    zeropoint: float,
    zeropoint_err: float,
    limiting_mag: float,
) -> TargetMeasurement:
    """Calibrate the source nearest the alert, or report the frame's limit.

    ``catalog`` should be the raw catalogue (positions already corrected for any systematic
    shift): the alert may be blended with its host or flagged, and still deserves a
    measurement. The target's colour is unknown, so it is calibrated at the calibrators'
    median colour (the zero point's pivot); the colour-term uncertainty this leaves is not
    included in ``mag_err``, which is the photometric and zero-point errors in quadrature.
    """
    found = nearest_source(catalog, ra, dec, radius_arcsec)
    if found is None:
        return TargetMeasurement(
            mag=limiting_mag,
            mag_err=LIMIT_MAG_ERR,
            limit=True,
            limiting_mag=limiting_mag,
            ra=ra,
            dec=dec,
        )
    i, sep = found
    phot_err = float(catalog.mag_err[i])
    if not (np.isfinite(phot_err) and phot_err > 0):
        phot_err = 0.0
    return TargetMeasurement(
        mag=float(catalog.mag[i] + zeropoint),
        mag_err=float(np.hypot(phot_err, zeropoint_err)),
        limit=False,
        limiting_mag=limiting_mag,
        ra=float(catalog.ra[i]),
        dec=float(catalog.dec[i]),
        separation_arcsec=sep,
        flags=int(catalog.flags[i]),
    )

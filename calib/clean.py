"""Drop detections that must not calibrate a frame, counting why for the log."""

from __future__ import annotations

import numpy as np

from .catalog import SourceCatalog
from .match import duplicates

# SExtractor FLAGS bits: 1 neighbours/bad pixels, 2 deblended, 4 saturated, 8 truncated,
# 16 aperture data incomplete, 32 isophotal data incomplete, 64/128 memory overflow.
# Bits 1 and 2 are kept by default: in crowded fields most stars carry them, their magnitudes
# are usually fine, and the robust fit clips the few that are not.
DEFAULT_REJECT_FLAGS = 0xFF & ~0b11
JUNK_MAG = 90.0  # SExtractor writes 99 for failed measurements


def clean_catalog(
    catalog: SourceCatalog,
    *,
    reject_flags: int = DEFAULT_REJECT_FLAGS,
    max_mag_err: float = 1.0,
    saturation_fraction: float = 0.9,
    duplicate_radius_arcsec: float = 0.5,
) -> tuple[SourceCatalog, dict[str, int]]:
    """Keep the sources fit to calibrate on.

    Each rejected source is counted once, under the first reason that applies, in this order:
    ``bad_position`` (non-finite or out-of-range RA/Dec), ``junk_mag`` (NaN, inf or >= 90),
    ``bad_mag_err`` (error <= 0 or > ``max_mag_err``; a missing error column is fine),
    ``flags`` (``FLAGS & reject_flags``), ``saturated`` (FLUX_MAX on the saturation plateau),
    ``duplicate`` (another source within ``duplicate_radius_arcsec``; the one with the smaller
    error is kept).

    Returns
    -------
    cleaned : SourceCatalog
    rejected : dict
        Reason -> number of sources dropped for it (all reasons present, zeros included).
    """
    n = len(catalog)
    rejected = dict.fromkeys(
        ("bad_position", "junk_mag", "bad_mag_err", "flags", "saturated", "duplicate"), 0
    )
    keep = np.ones(n, dtype=bool)

    def drop(reason: str, bad: np.ndarray) -> None:
        newly = keep & bad
        rejected[reason] += int(newly.sum())
        keep[newly] = False

    ra, dec, mag, err = catalog.ra, catalog.dec, catalog.mag, catalog.mag_err
    with np.errstate(invalid="ignore"):
        drop("bad_position", ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)))
        drop("junk_mag", ~np.isfinite(mag) | (mag >= JUNK_MAG) | (mag <= -JUNK_MAG))
        drop("bad_mag_err", (err <= 0) | (err > max_mag_err) | np.isinf(err))
    drop("flags", (catalog.flags & reject_flags) != 0)
    if catalog.flux_max is not None:
        drop("saturated", on_saturation_plateau(catalog.flux_max, saturation_fraction))
    if keep.sum() > 1 and duplicate_radius_arcsec > 0:
        idx = np.flatnonzero(keep)
        score = np.where(np.isfinite(err), err, np.inf)
        duplicate = np.zeros(n, dtype=bool)
        duplicate[idx] = duplicates(ra[idx], dec[idx], score[idx], duplicate_radius_arcsec)
        drop("duplicate", duplicate)
    return catalog.select(keep), rejected


def on_saturation_plateau(flux_max: np.ndarray, fraction: float) -> np.ndarray:
    """Sources whose peak sits on the saturation plateau.

    Saturated stars share nearly the same FLUX_MAX (the detector's full well minus the sky),
    so a plateau means saturation: at least 3 sources within 2% of the highest peak. Without a
    plateau the brightest star is just bright, and nothing is dropped.
    """
    finite = np.isfinite(flux_max)
    if finite.sum() < 3:
        return np.zeros(len(flux_max), dtype=bool)
    level = float(np.max(flux_max[finite]))
    if level <= 0 or np.count_nonzero(flux_max[finite] >= 0.98 * level) < 3:
        return np.zeros(len(flux_max), dtype=bool)
    with np.errstate(invalid="ignore"):
        return flux_max >= fraction * level

"""What the catalogue says about its frame: centre, extent, pixel scale and seeing.

The pixel scale and FWHM set the scale of everything spatial downstream (the target's search
radius, the crowding radius, the resolution of the zero-point map), so they are measured from
the catalogue itself when it has the columns, and fall back to typical values when it has not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import SourceCatalog
from .stats import median

DEFAULT_FWHM_ARCSEC = 2.5  # typical seeing, used when the catalogue has no FWHM column


@dataclass(frozen=True)
class FrameGeometry:
    """Frame centre (degrees), half-size (arcsec) of the tangent-plane box holding the sources,
    area (arcsec²), pixel scale (arcsec/pixel, ``None`` without pixel columns) and FWHM (arcsec,
    ``fwhm_measured`` False when it is the default)."""

    ra0: float
    dec0: float
    half_x: float
    half_y: float
    pixscale: float | None
    fwhm_arcsec: float
    fwhm_measured: bool

    @property
    def area_arcsec2(self) -> float:
        return 4.0 * self.half_x * self.half_y

    def tangent(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tangent-plane offsets from the centre, arcsec (small-field approximation)."""
        dra = (np.asarray(ra) - self.ra0 + 180.0) % 360.0 - 180.0
        x = dra * np.cos(np.radians(self.dec0)) * 3600.0
        return x, (np.asarray(dec) - self.dec0) * 3600.0

    def normalized(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions scaled to [-1, 1] over the frame (for the zero-point polynomial)."""
        x, y = self.tangent(ra, dec)
        return x / max(self.half_x, 1.0), y / max(self.half_y, 1.0)

    def inside(self, ra: np.ndarray, dec: np.ndarray, margin_arcsec: float = 0.0) -> np.ndarray:
        x, y = self.tangent(ra, dec)
        return (np.abs(x) <= self.half_x - margin_arcsec) & (
            np.abs(y) <= self.half_y - margin_arcsec
        )


def frame_geometry(catalog: SourceCatalog) -> FrameGeometry:
    """Measure the frame from a cleaned catalogue (at least one source)."""
    ra, dec = catalog.ra, catalog.dec
    dec0 = median(dec)
    dra = (ra - ra[0] + 180.0) % 360.0 - 180.0
    ra0 = float((ra[0] + median(dra)) % 360.0)
    x = ((ra - ra0 + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec0)) * 3600.0
    y = (dec - dec0) * 3600.0
    (x_lo, x_hi), (y_lo, y_hi) = np.percentile(x, [0.5, 99.5]), np.percentile(y, [0.5, 99.5])
    ra0 = float((ra0 + (x_lo + x_hi) / 2 / 3600.0 / np.cos(np.radians(dec0))) % 360.0)
    dec0 = float(dec0 + (y_lo + y_hi) / 2 / 3600.0)
    half_x, half_y = max((x_hi - x_lo) / 2, 1.0), max((y_hi - y_lo) / 2, 1.0)
    pixscale = _pixel_scale(catalog, x, y)
    fwhm = None
    if catalog.fwhm_world is not None:
        fwhm = _typical_fwhm(catalog, catalog.fwhm_world * 3600.0)
    if fwhm is None and catalog.fwhm is not None and pixscale is not None:
        fwhm = _typical_fwhm(catalog, catalog.fwhm * pixscale)
    return FrameGeometry(
        ra0,
        dec0,
        float(half_x),
        float(half_y),
        pixscale,
        fwhm or DEFAULT_FWHM_ARCSEC,
        fwhm is not None,
    )


def _pixel_scale(catalog: SourceCatalog, x: np.ndarray, y: np.ndarray) -> float | None:
    """Arcsec per pixel from a linear fit of sky offsets on pixel positions."""
    if catalog.x is None or catalog.y is None or len(x) < 3:
        return None
    design = np.column_stack((catalog.x, catalog.y, np.ones(len(x))))
    good = np.all(np.isfinite(design), axis=1)
    if good.sum() < 3:
        return None
    coef, *_ = np.linalg.lstsq(design[good], np.column_stack((x, y))[good], rcond=None)
    det = abs(np.linalg.det(coef[:2, :2]))
    return float(np.sqrt(det)) if det > 0 else None


def _typical_fwhm(catalog: SourceCatalog, fwhm_arcsec: np.ndarray) -> float | None:
    """Median FWHM of unflagged, point-like sources (stars set the seeing, not galaxies)."""
    good = np.isfinite(fwhm_arcsec) & (fwhm_arcsec > 0) & (catalog.flags == 0)
    if catalog.class_star is not None and np.count_nonzero(good & (catalog.class_star > 0.8)) >= 5:
        good &= catalog.class_star > 0.8
    if good.sum() < 3:
        return None
    return median(fwhm_arcsec[good])

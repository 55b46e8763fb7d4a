"""Check an image's WCS against reference stars and correct a small shift, rotation and scale.

A header WCS from a mount's pointing model or a stale plate solution is often off by arcseconds
to tens of arcseconds. Forced photometry at the alert needs its position to a fraction of the
FWHM, so the header's prediction of where the reference stars fall is compared with where they
are measured, and a similarity transform (shift, rotation, scale) between the two pixel frames
is fitted. Larger errors are not corrected: the frame must be solved (astrometry.net).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .image import SOLVE_HINT, ImageError

#: Largest header error searched for.
MAX_SHIFT_ARCSEC = 60.0
MAX_ROTATION_DEG = 3.0
MAX_SCALE_ERROR = 0.03
MIN_PAIRS = 5
_BRIGHTEST_SOURCES = 400
_BRIGHTEST_REFS = 1500


@dataclass(frozen=True)
class WcsCorrection:
    """Maps pixel positions predicted by the header WCS onto the measured ones.

    ``x' = a (x - x0) - b (y - y0) + x0 + c``, ``y' = b (x - x0) + a (y - y0) + y0 + d`` about
    the image centre (x0, y0): rotation ``atan2(b, a)``, scale ``hypot(a, b)``, shift (c, d).
    """

    a: float
    b: float
    c: float
    d: float
    x0: float
    y0: float
    npairs: int
    rms_px: float

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Header-predicted pixel positions → where the image shows them."""
        u, v = np.asarray(x) - self.x0, np.asarray(y) - self.y0
        return (
            self.a * u - self.b * v + self.x0 + self.c,
            self.b * u + self.a * v + self.y0 + self.d,
        )

    def inverse(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measured pixel positions → where the header WCS puts the same sky positions."""
        u, v = np.asarray(x) - self.x0 - self.c, np.asarray(y) - self.y0 - self.d
        det = self.a * self.a + self.b * self.b
        return (
            (self.a * u + self.b * v) / det + self.x0,
            (-self.b * u + self.a * v) / det + self.y0,
        )

    @property
    def shift_px(self) -> float:
        return float(math.hypot(self.c, self.d))

    @property
    def rotation_deg(self) -> float:
        return float(math.degrees(math.atan2(self.b, self.a)))

    @property
    def scale(self) -> float:
        return float(math.hypot(self.a, self.b))


def refine_wcs(
    x: np.ndarray,
    y: np.ndarray,
    mag: np.ndarray,
    wcs,
    shape: tuple[int, int],
    ref_ra: np.ndarray,
    ref_dec: np.ndarray,
    ref_mag: np.ndarray,
    pixel_scale_arcsec: float,
    fwhm_px: float,
) -> WcsCorrection:
    """Fit the `WcsCorrection` of the header WCS from detected sources and reference stars.

    The shift is found first as the peak of the histogram of all source-minus-reference offsets
    up to `MAX_SHIFT_ARCSEC`; then nearest neighbours within 2 FWHM of the shifted positions
    are fitted with a similarity transform, clipping outliers at 3 sigma.

    Raises
    ------
    ImageError
        Fewer than `MIN_PAIRS` sources agree with the reference stars, or the fitted rotation or
        scale is too large to be a small error: the WCS is wrong and the frame must be solved.
    """
    ny, nx = shape
    with np.errstate(invalid="ignore"):
        px, py = wcs.all_world2pix(ref_ra, ref_dec, 0)
    inside = np.isfinite(px) & np.isfinite(py) & (px > -5) & (px < nx + 5)
    inside &= (py > -5) & (py < ny + 5)
    px, py, pmag = px[inside], py[inside], ref_mag[inside]
    px, py = _brightest(px, py, pmag, _BRIGHTEST_REFS)
    sx, sy = _brightest(x, y, mag, _BRIGHTEST_SOURCES)
    max_shift = MAX_SHIFT_ARCSEC / pixel_scale_arcsec
    bin_px = max(fwhm_px, 2.0)
    dx = sx[:, None] - px[None, :]
    dy = sy[:, None] - py[None, :]
    near = (np.abs(dx) < max_shift) & (np.abs(dy) < max_shift)
    fail = ImageError(
        f"the image's WCS does not agree with the reference stars (fewer than {MIN_PAIRS} of "
        f"its {len(sx)} brightest sources fall within {MAX_SHIFT_ARCSEC:.0f} arcsec of a "
        f"consistent position); {SOLVE_HINT}"
    )
    if np.count_nonzero(near) < MIN_PAIRS:
        raise fail
    nbins = max(int(2 * max_shift / bin_px), 1)
    hist, xe, ye = np.histogram2d(
        dx[near], dy[near], bins=nbins, range=[[-max_shift, max_shift], [-max_shift, max_shift]]
    )
    ix, iy = np.unravel_index(int(np.argmax(hist)), hist.shape)
    # Chance pairs fill the histogram evenly; the true shift must stand out of them.
    chance = np.count_nonzero(near) / hist.size
    if hist[ix, iy] < max(MIN_PAIRS, chance + 5.0 * math.sqrt(chance) + 3.0):
        raise fail
    shift = np.array([(xe[ix] + xe[ix + 1]) / 2, (ye[iy] + ye[iy + 1]) / 2])
    x0, y0 = (nx - 1) / 2.0, (ny - 1) / 2.0
    corr = WcsCorrection(1.0, 0.0, float(shift[0]), float(shift[1]), x0, y0, 0, math.inf)
    radius = 2.0 * bin_px
    for _ in range(4):
        fx, fy = corr.forward(px, py)
        d2 = (sx[:, None] - fx[None, :]) ** 2 + (sy[:, None] - fy[None, :]) ** 2
        j = np.argmin(d2, axis=1)
        mutual = np.argmin(d2, axis=0)[j] == np.arange(len(sx))
        ok = mutual & (d2[np.arange(len(sx)), j] <= radius * radius)
        if np.count_nonzero(ok) < MIN_PAIRS:
            raise fail
        corr = _fit_similarity(px[j[ok]], py[j[ok]], sx[ok], sy[ok], x0, y0)
        radius = max(3.0 * corr.rms_px, 0.5 * bin_px)
    if corr.rms_px > 0.5 * fwhm_px:
        raise fail
    if abs(corr.rotation_deg) > MAX_ROTATION_DEG or abs(corr.scale - 1) > MAX_SCALE_ERROR:
        raise ImageError(
            f"the image's WCS is off by a rotation of {corr.rotation_deg:.1f} deg and a scale "
            f"factor of {corr.scale:.3f}: too much to correct; {SOLVE_HINT}"
        )
    return corr


def _brightest(x, y, mag, n):
    order = np.argsort(np.where(np.isfinite(mag), mag, np.inf))[:n]
    return np.asarray(x)[order], np.asarray(y)[order]


def _fit_similarity(xr, yr, xs, ys, x0, y0) -> WcsCorrection:
    """Least-squares similarity transform from (xr, yr) to (xs, ys), 3-sigma clipped."""
    keep = np.ones(len(xr), dtype=bool)
    for _ in range(3):
        u, v = xr[keep] - x0, yr[keep] - y0
        one, zero = np.ones_like(u), np.zeros_like(u)
        design = np.vstack(
            [np.column_stack([u, -v, one, zero]), np.column_stack([v, u, zero, one])]
        )
        target = np.concatenate([xs[keep] - x0, ys[keep] - y0])
        (a, b, c, d), *_ = np.linalg.lstsq(design, target, rcond=None)
        corr = WcsCorrection(a, b, c, d, x0, y0, int(keep.sum()), 0.0)
        fx, fy = corr.forward(xr, yr)
        resid = np.hypot(fx - xs, fy - ys)
        rms = float(np.sqrt(np.mean(resid[keep] ** 2)))
        new_keep = resid <= max(3.0 * rms, 0.05)
        if new_keep.sum() < MIN_PAIRS or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return WcsCorrection(a, b, c, d, x0, y0, int(keep.sum()), rms)

"""The alert inside a blend: its flux is what the frame's source holds beyond the catalogued
stars the frame did not resolve.

In a crowded field a transient an arcsecond or two from brighter stars is rarely a source of
its own: Source Extractor measures them together, centred between them and sometimes further
from the alert than the search radius. Reported as it stands, such a source put the alert
0.3-2.4 mag too bright while quoting 0.03-0.4 mag; reported as absent, the frame's limit
claimed it up to 0.8 mag fainter than it was (on simulated crowded fields:
40-80k stars in 20', 0.6"/px, Source Extractor's MAG_AUTO).

The reference survey lists those stars, and the frame says how much of a neighbour's light
ends up in a source: the `BlendKernel`, fitted on the frame's matched stars, gives the share
of an unresolved neighbour's predicted flux found in a source at each distance (on those
frames about 1 within 1.5 FWHM, 0.2-0.45 at 1.5-2 FWHM, 0 beyond), and how well the summed
prediction holds (20-30 % of it). What the source holds beyond its neighbours is the alert's;
the prediction's error makes a transient lost in a bright star's light an upper limit rather
than a precise wrong number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .catalog import SourceCatalog
from .match import Sky, near, pairs_within
from .stats import MAG_PER_FLUX, median_and_robust_std

#: Distance bins (in FWHM) of the kernel; neighbours further than the last edge add nothing.
KERNEL_EDGES_FWHM = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
#: Kernel used for the bins a frame has too few blends to fit, and the relative error of a
#: prediction the frame could not check: between all of a neighbour's light in the source and
#: none of it (a simulated catalogue without blending put none there: a 16 % star subtracted
#: left the target 3 sigma off at 30 %), ±50 % keeps either within 2 sigma.
DEFAULT_WEIGHTS = (1.0, 1.0, 1.0, 0.3, 0.0, 0.0)
ASSUMED_RELATIVE_ERROR = 0.5
#: Relative error of a Gaussian PSF's share of a neighbour's light in an image's aperture.
APERTURE_RELATIVE_ERROR = 0.3
#: Within this many FWHM a neighbour's light is inside the source (Kron apertures reach
#: further): fitted, these bins came out 0.91-1.08 on every crowded frame, and on sparse
#: frames, where few neighbours are bright enough to weigh, anything from 0 to 1.
WHOLE_FWHM = 1.5
#: Stars a bin (or the error) is measured on at least; a neighbour counts in a bin when it
#: adds at least `MIN_SHARE` of its star's flux.
MIN_BLENDS = 30
MIN_SHARE = 0.05
#: Decompose a measured target when its neighbours hold at least this fraction of its flux.
MIN_CONTAMINATION = 0.1
#: A catalogued star is the alert itself (a variable) only when it lies within this many
#: astrometric sigmas of the alert (the calibrators' scatter about their reference positions)
#: or this share of the FWHM, whichever is larger, and within the match radius: a star 1"
#: from the alert on a crowded frame was taken for it, its light left in (0.13 mag, 8 sigma).
COUNTERPART_SIGMA = 3.0
COUNTERPART_FWHM = 0.2
#: A source within this many FWHM of the alert may hold the alert's flux.
SEARCH_FWHM = 2.0
DETECTION_SNR = 5.0
#: An excess this significant puts the alert inside a source beyond the search radius.
MERGED_SNR = 3.0
_CLIP = 4.0


def alert_counterpart(
    ref_sky: Sky,
    alert: tuple[float, float],
    match_radius_arcsec: float,
    astrometric_sigma_arcsec: float,
    fwhm_arcsec: float,
) -> int | None:
    """The reference star that is demonstrably the alert itself, or ``None``: the nearest
    within `COUNTERPART_SIGMA` astrometric sigmas or `COUNTERPART_FWHM` FWHM of the alert
    (and the match radius). Every other catalogued star near the alert is a neighbour whose
    light is subtracted or carried in the error; the catalogue and image paths share this."""
    radius = min(
        match_radius_arcsec,
        max(COUNTERPART_SIGMA * astrometric_sigma_arcsec, COUNTERPART_FWHM * fwhm_arcsec),
    )
    j, sep = near(ref_sky, *alert, radius)
    return int(j[np.argmin(sep)]) if len(j) else None


@dataclass(frozen=True)
class BlendKernel:
    """Share of an unresolved neighbour's flux inside a source, per distance bin
    (`KERNEL_EDGES_FWHM`); ``gain`` is 1 + the mean excess of matched sources over their own
    star; ``relative_error`` the scatter of measured minus predicted neighbour flux relative to
    it; ``blends`` how many matched stars with neighbours it was measured on (0: assumed)."""

    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    gain: float = 1.0
    relative_error: float = ASSUMED_RELATIVE_ERROR
    blends: int = 0

    def share(self, distance_fwhm: np.ndarray) -> np.ndarray:
        """The kernel at each distance (in FWHM)."""
        b = np.searchsorted(KERNEL_EDGES_FWHM, distance_fwhm, side="right") - 1
        w = np.r_[self.weights, 0.0]
        return w[np.clip(b, 0, len(self.weights))]


def aperture_share(distance_px: np.ndarray, radius_px: float, fwhm_px: float) -> np.ndarray:
    """Light of a Gaussian star at each distance inside a circular aperture, relative to the
    same star centred in it (the zero point of aperture magnitudes already holds the latter).
    The disc is sampled in equal-area cells, so the mean density is the integral."""
    sigma = fwhm_px / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    r = radius_px * np.sqrt((np.arange(24) + 0.5) / 24)
    t = 2.0 * np.pi * (np.arange(48) + 0.5) / 48
    x, y = np.ravel(r[:, None] * np.cos(t)), np.ravel(r[:, None] * np.sin(t))
    d = np.asarray(distance_px, dtype=np.float64)[:, None]
    light = np.exp(-((x - d) ** 2 + y**2) / (2 * sigma**2)).mean(axis=1)
    return light / np.exp(-(x**2 + y**2) / (2 * sigma**2)).mean()


def predicted_flux(
    band_mag: np.ndarray,
    colour: np.ndarray | None,
    zeropoint: float,
    colour_term: float | None,
    colour_pivot: float | None,
) -> np.ndarray:
    """Instrumental flux of reference stars: ``inst = band - zeropoint - k (pivot - colour)``,
    stars without a colour at the pivot."""
    inst = band_mag - zeropoint
    if colour_term is not None and colour is not None:
        with np.errstate(invalid="ignore"):
            inst = inst - colour_term * np.where(np.isfinite(colour), colour_pivot - colour, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        return 10 ** (-0.4 * inst)


def fit_kernel(
    catalog: SourceCatalog,
    sky: Sky,
    ref_sky: Sky,
    flux: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    resolved: np.ndarray,
    fwhm_arcsec: float,
) -> BlendKernel:
    """Fit the kernel on matched (catalogue row, reference index) ``pairs``.

    Each matched source's flux over its own star's, ``q = measured / own``, is regressed on the
    summed predicted fluxes of unresolved reference neighbours (``resolved`` marks the stars
    the frame detected) in each distance bin, over ``own``: ``q = gain + Σ w_b X_b``, by least
    squares with outliers clipped. Bins within `WHOLE_FWHM`, and those with fewer than
    `MIN_BLENDS` contributing stars, keep `DEFAULT_WEIGHTS`; weights stay within [0, 1] and
    do not rise with distance.
    """
    rows, stars = pairs
    own = flux[stars]
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(own) & (own > 0) & np.isfinite(catalog.mag[rows])
    rows, stars, own = rows[usable], stars[usable], own[usable]
    bins = len(KERNEL_EDGES_FWHM) - 1
    p1, p2, sep = pairs_within(sky.take(rows), ref_sky, KERNEL_EDGES_FWHM[-1] * fwhm_arcsec)
    keep = ~resolved[p2] & np.isfinite(flux[p2])
    p1, p2, sep = p1[keep], p2[keep], sep[keep]
    b = np.minimum(
        np.searchsorted(KERNEL_EDGES_FWHM, sep / fwhm_arcsec, side="right") - 1, bins - 1
    )
    x = np.zeros((len(rows), bins))
    np.add.at(x, (p1, b), flux[p2])
    x /= own[:, None]
    q = 10 ** (-0.4 * catalog.mag[rows]) / own
    fitted = np.count_nonzero(x >= MIN_SHARE, axis=0) >= MIN_BLENDS
    fitted &= np.asarray(KERNEL_EDGES_FWHM[:-1]) >= WHOLE_FWHM
    prior = np.asarray(DEFAULT_WEIGHTS)
    if len(rows) < MIN_BLENDS:
        return BlendKernel()
    design = np.column_stack((np.ones(len(rows)), x[:, fitted]))
    target = q - x[:, ~fitted] @ prior[~fitted]
    used = np.ones(len(rows), dtype=bool)
    for _ in range(5):
        coef, *_ = np.linalg.lstsq(design[used], target[used], rcond=None)
        resid = target - design @ coef
        centre, spread = median_and_robust_std(resid[used])
        new_used = np.abs(resid - centre) <= _CLIP * max(spread, 1e-6)
        if np.array_equal(new_used, used):
            break
        used = new_used
    weights = prior.copy()
    weights[fitted] = np.clip(coef[1:], 0.0, 1.0)
    weights = np.minimum.accumulate(weights)  # light falls off with distance
    contamination = x @ weights
    blended = contamination >= 2 * MIN_SHARE
    relative_error = ASSUMED_RELATIVE_ERROR
    if np.count_nonzero(blended) >= MIN_BLENDS:
        excess = (q - coef[0] - contamination)[blended] / contamination[blended]
        relative_error = median_and_robust_std(excess)[1]
    return BlendKernel(
        tuple(float(w) for w in weights),
        float(coef[0]),
        float(relative_error),
        int(np.count_nonzero(blended)),
    )


@dataclass(frozen=True)
class Decomposition:
    """A source split into the catalogued stars' light and the alert's (instrumental fluxes):
    ``measured = gain * (alert_share * alert + contamination)``."""

    row: int
    measured: float
    measured_err: float
    contamination: float
    stars: int
    alert_share: float
    kernel: BlendKernel

    @property
    def flux(self) -> float:
        if self.alert_share <= 0:
            return 0.0
        return (self.measured / self.kernel.gain - self.contamination) / self.alert_share

    @property
    def flux_err(self) -> float:
        if self.alert_share <= 0:
            return math.inf
        spread = math.hypot(self.measured_err, self.kernel.relative_error * self.contamination)
        return spread / self.kernel.gain / self.alert_share

    @property
    def snr(self) -> float:
        err = self.flux_err
        return self.flux / err if 0 < err < math.inf else 0.0

    def magnitude(self, zeropoint: float) -> float:
        return zeropoint - 2.5 * math.log10(self.flux)

    def bound(self, zeropoint: float) -> float:
        """Upper limit on the alert's brightness: its flux plus 5 sigma, never more than the
        whole source could hold; ``inf`` when the source leaves no light for it (its catalogued
        neighbours account for all it measured, or more): then no bound can be drawn here."""
        most = self.measured / self.kernel.gain / max(self.alert_share, 1e-3)
        flux = min(most, max(self.flux, 0.0) + DETECTION_SNR * self.flux_err)
        if not (math.isfinite(flux) and flux > 0):
            return math.inf
        return zeropoint - 2.5 * math.log10(flux)


def decompose(
    catalog: SourceCatalog,
    sky: Sky,
    row: int,
    alert: tuple[float, float],
    ref_sky: Sky,
    flux: np.ndarray,
    counterpart: int | None,
    match_radius_arcsec: float,
    fwhm_arcsec: float,
    kernel: BlendKernel,
) -> Decomposition:
    """Split source ``row`` into its unresolved catalogued neighbours and the alert at ``alert``.

    Neighbours are the reference stars within the kernel's reach of the source, except those
    another source is nearer to within ``match_radius_arcsec`` (the frame measured them there)
    and ``counterpart``, the reference star at the alert's own position (a catalogued variable:
    its light is the alert's).
    """
    reach = KERNEL_EDGES_FWHM[-1] * fwhm_arcsec
    src = sky.take(np.array([row]))
    idx, sep = near(ref_sky, float(src.ra[0]), float(src.dec[0]), reach)
    local, _ = near(sky, float(src.ra[0]), float(src.dec[0]), reach + match_radius_arcsec)
    with np.errstate(invalid="ignore"):
        local = local[np.isfinite(catalog.mag[local]) & (np.abs(catalog.mag[local]) < 90)]
    others = sky.take(local[local != row])
    inside = np.zeros(len(idx), dtype=bool)
    for k, (j, d) in enumerate(zip(idx, sep, strict=True)):
        if j == counterpart or not np.isfinite(flux[j]):
            continue
        _, seps = near(others, float(ref_sky.ra[j]), float(ref_sky.dec[j]), match_radius_arcsec)
        inside[k] = not np.any(seps < d)  # else another source is this star's detection
    shares = kernel.share(sep[inside] / fwhm_arcsec)
    _, alert_sep = near(src, *alert, 180 * 3600.0)
    measured = float(10 ** (-0.4 * catalog.mag[row]))
    err = float(catalog.mag_err[row])
    return Decomposition(
        row=row,
        measured=measured,
        measured_err=measured * err / MAG_PER_FLUX if math.isfinite(err) and err > 0 else 0.0,
        contamination=float(np.sum(shares * flux[idx[inside]])),
        stars=int(np.count_nonzero(shares > 0)),
        alert_share=float(kernel.share(np.array([alert_sep[0] / fwhm_arcsec]))[0]),
        kernel=kernel,
    )

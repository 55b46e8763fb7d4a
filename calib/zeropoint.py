"""Robust zero-point fit of one survey band, with an optional colour term.

Model, for reference stars matched to catalogue sources::

    inst_mag + zeropoint = ref_mag + colour_term * (colour - colour_pivot)

i.e. the usual convention where the colour term says how the instrumental band departs from
the survey band (r_inst = R + k (V - R)).

``colour_pivot`` is the median colour of the calibrators, so ``zeropoint`` is the zero point
of a typical star of the field and its error is not inflated by the colour term.

Optionally the zero point varies over the frame as a polynomial of order 1 or 2 in the
normalised frame position (vignetting, flat-field errors): `fit_spatial_zeropoint` picks the
order by the Wald test of its position terms (AIC's threshold), and ``zeropoint`` is then
the value at the centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .stats import median, median_and_robust_std

MIN_STARS = 5
MIN_STARS_COLOUR = 10  # below this a colour term is not fitted
MAX_SPATIAL_ORDER = 2
STARS_PER_SPATIAL_TERM = 5  # an order is tried only with this many stars per fitted term
EFFECTIVE_STARS_PER_SPATIAL_TERM = 3  # ... and this many counted by their weights
RIVAL_STARS_PER_SPATIAL_TERM = 2  # with fewer effective ones not even tried as a rival
MAX_SCATTER = 0.3  # mag
MAX_OUTLIER_FRACTION = 0.5
CLIP_SIGMA = 3.0
# No calibrator weighs as if known to better than 1 % (flat field, aperture and PSF changes,
# the reference's own calibration): SExtractor quotes photon noise alone, 0.001-0.005 mag for
# bright stars, and a handful of them then set the zero point with an error 3-4 times too
# small (13 mmag off quoting 4 on a 33-star frame).
ERROR_FLOOR = 0.01  # mag
# The iteration's medians (centre, spread, typical error) come from at most this many of the
# stars in use, evenly spaced; every solve still weighs all of them. A median costs ~11 ns per
# element on fresh data, and its precision at 1000 stars (3 %) is far below what moves a weight.
STATS_STARS = 1000

# Approximate effective wavelengths (nm), used only to find a band's spectral neighbours.
_WAVELENGTH_NM = {
    "u": 355, "U": 365, "B": 440, "g": 475, "V": 550, "r": 620, "R": 650,
    "i": 760, "I": 800, "z": 900, "y": 1000, "J": 1250, "H": 1650, "K": 2200, "Ks": 2150,
}  # fmt: skip
_GAIA_BANDS = ("G", "BP", "RP")


def colour_for_band(band: str, available: list[str] | tuple[str, ...]) -> tuple[str, str] | None:
    """Pick the colour (blue band, red band) used for ``band``'s colour term.

    Gaia bands use BP-RP. Otherwise the bluer neighbour minus the band (V-R for R, B-V for V),
    or the band minus its redder neighbour for the bluest band (B-V for B). ``None`` when the
    survey has no suitable second band.
    """
    if band in _GAIA_BANDS:
        return ("BP", "RP") if "BP" in available and "RP" in available else None
    if band not in _WAVELENGTH_NM:
        return None
    known = sorted((b for b in available if b in _WAVELENGTH_NM), key=_WAVELENGTH_NM.get)
    pos = known.index(band) if band in known else -1
    if pos < 0 or len(known) < 2:
        return None
    return (known[pos - 1], band) if pos > 0 else (band, known[pos + 1])


@dataclass
class ZeroPointFit:
    """Result of `fit_zeropoint`; scalar fields are ``None`` when they could not be measured.

    The arrays (one entry per matched star) are kept for the calibration plot: ``inst_mag``,
    ``ref_mag``, ``colour`` (NaN without colour term), ``residual`` (data minus model) and
    ``used`` (False for rejected outliers).
    """

    zeropoint: float | None
    zeropoint_err: float | None
    colour_term: float | None
    colour: str | None
    scatter: float | None
    npoints: int
    outlier_fraction: float | None
    ok: bool
    reason: str | None
    colour_pivot: float | None = None
    inst_mag: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    ref_mag: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    colour_values: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    residual: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    used: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool), repr=False)
    order: int = 0
    params: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    cov: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), repr=False)
    intrinsic2: float = 0.0  # squared scatter the quoted errors do not explain
    systematic: float = 0.0  # error the stars cannot show (crowding), in ``zeropoint_err`` too
    rival: ZeroPointFit | None = field(default=None, repr=False)  # see fit_spatial_zeropoint
    err2: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    #: Set when the colour term is the instrument's history's (its error), not fitted.
    colour_term_prior_err: float | None = None

    def zeropoint_at(self, colour: float) -> float | None:
        """Zero point for a source of the given colour (``zeropoint`` is at the pivot)."""
        if self.zeropoint is None or self.colour_term is None:
            return self.zeropoint
        return self.zeropoint - self.colour_term * (colour - self.colour_pivot)

    def zeropoint_at_position(self, x: float, y: float) -> tuple[float, float]:
        """Zero point and its error at a normalised frame position, at the pivot colour; the
        error includes how far the ``rival`` order's zero point lies from it there."""
        if self.zeropoint is None:
            return self.zeropoint, self.zeropoint_err
        if self.order == 0:
            zp, err = self.zeropoint, self.zeropoint_err
        else:
            v = np.zeros(len(self.params))
            v[0] = 1.0
            terms = _poly_terms(np.array([x]), np.array([y]), self.order)
            v[len(v) - terms.shape[1] :] = terms[0]
            zp = float(v @ self.params)
            err = float(np.hypot(np.sqrt(max(v @ self.cov @ v, 0.0)), self.systematic))
        if self.rival is not None:
            err = float(np.hypot(err, self.rival.zeropoint_at_position(x, y)[0] - zp))
        return zp, err

    def add_systematic(self, error: float) -> None:
        """Widen the zero point's error by ``error`` in quadrature, wherever it is evaluated."""
        self.systematic = float(np.hypot(self.systematic, error))
        if self.zeropoint_err is not None:
            self.zeropoint_err = float(np.hypot(self.zeropoint_err, error))


def _poly_terms(x: np.ndarray, y: np.ndarray, order: int) -> np.ndarray:
    """Polynomial terms of the position without the constant: x, y (order 1), x², xy, y² (2)."""
    cols = [x**i * y ** (k - i) for k in range(1, order + 1) for i in range(k, -1, -1)]
    return np.column_stack(cols) if cols else np.empty((len(x), 0))


def failed_fit(reason: str, n: int) -> ZeroPointFit:
    """A fit that could not be made, with the reason shown to the observer."""
    return ZeroPointFit(None, None, None, None, None, n, None, False, reason)


def _weighted_lsq(design, y, w):
    """Solve weighted least squares; returns (params, covariance) or None if singular."""
    a = design * w[:, None]
    normal = design.T @ a
    try:
        cov = np.linalg.inv(normal)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(cov)):
        return None
    return cov @ (a.T @ y), cov


def fit_zeropoint(
    inst_mag: np.ndarray,
    inst_err: np.ndarray,
    ref_mag: np.ndarray,
    ref_err: np.ndarray,
    *,
    colour: np.ndarray | None = None,
    colour_name: str | None = None,
    min_stars: int = MIN_STARS,
    max_scatter: float = MAX_SCATTER,
    max_outlier_fraction: float = MAX_OUTLIER_FRACTION,
    clip_sigma: float = CLIP_SIGMA,
    max_iter: int = 20,
    position: tuple[np.ndarray, np.ndarray] | None = None,
    order: int = 0,
    colour_prior: tuple[float, float] | None = None,
) -> ZeroPointFit:
    """Iteratively reweighted, sigma-clipped zero point (and colour term) of matched stars.

    Weights are ``1 / (inst_err**2 + ref_err**2 + s**2)`` where ``s`` is the extra scatter the
    quoted errors do not explain (estimated each iteration), so bright stars with optimistic
    errors do not dominate; no star weighs as if known to better than `ERROR_FLOOR`. The
    iteration runs from the quoted errors and from the median zero point, and the fixed point
    with the smaller ``s`` is kept. Stars whose normalised residual exceeds ``clip_sigma`` robust
    sigmas are rejected and may come back in later iterations. Missing errors (NaN) are
    treated as the median error.

    Gates (``ok=False`` with ``reason``): fewer than ``min_stars`` kept, scatter above
    ``max_scatter`` mag, more than ``max_outlier_fraction`` rejected.

    With ``position`` (normalised x, y of each star) and ``order`` 1 or 2 the zero point is a
    polynomial over the frame; ``zeropoint`` is its value at the centre.

    ``colour_prior`` (colour term, its error), from the instrument's history, is used where too
    few stars have a colour to fit one: the term is fixed, and its error joins each star's in
    proportion to its colour's distance from the pivot (``colour_term_prior_err``).
    """
    inst_mag = np.asarray(inst_mag, dtype=np.float64)
    ref_mag = np.asarray(ref_mag, dtype=np.float64)
    n = len(inst_mag)
    if n == 0:
        return failed_fit("no reference stars matched", 0)
    err2 = _combined_err2(np.asarray(inst_err, float), np.asarray(ref_err, float))
    y = ref_mag - inst_mag
    use_colour = colour is not None and n >= MIN_STARS_COLOUR
    if use_colour:
        colour = np.asarray(colour, dtype=np.float64)
        use_colour = np.count_nonzero(np.isfinite(colour)) >= MIN_STARS_COLOUR
    if use_colour:
        pivot = median(colour[np.isfinite(colour)])
        x = np.where(np.isfinite(colour), pivot - colour, 0.0)
        design = np.column_stack((np.ones(n), x))
        colour_values = colour
    else:
        pivot = None
        design = np.ones((n, 1))
        colour_values = np.full(n, np.nan)
    prior = colour_prior if not use_colour and colour is not None else None
    if prior is not None:
        colour = np.asarray(colour, dtype=np.float64)
        known = np.isfinite(colour)
        if known.any():
            pivot = median(colour[known])
            x = np.where(known, pivot - colour, 0.0)
            y = y - prior[0] * x  # the history's colour term, fixed
            err2 = err2 + (prior[1] * x) ** 2
            colour_values = colour
        else:
            prior = None
    if order > 0 and position is not None:
        design = np.column_stack((design, _poly_terms(*position, order)))
    else:
        order = 0

    used = np.ones(n, dtype=bool)
    has_colour = np.isfinite(colour) if use_colour else None
    if use_colour:
        used &= has_colour  # stars without colour cannot constrain the colour fit
    # Two starts; the fixed point the data explain best (smaller unexplained scatter) is kept,
    # and the second start is skipped when the first leaves none. Weighted by the quoted
    # errors alone, two bright stars (one of them saturated) fixed a two-parameter fit between
    # them (colour term +0.8 on an R frame whose term is 0.07) and the iteration stayed there,
    # its scatter inflated by the misfit. Started from the median zero point, the first solve
    # carries the scatter of all stars and has clipped gross outliers; started from the quoted
    # errors, well-measured stars keep their weight when the scatter comes from a trend the
    # model is about to fit (vignetting).
    starts = (None, np.r_[median(y[used]) if used.any() else 0.0, np.zeros(design.shape[1] - 1)])
    solved = []
    for start in starts:
        solution = _iterate(design, y, err2, used, start, clip_sigma, max_iter, has_colour)
        if solution[1] is not None:
            solved.append(solution)
            if solution[3] == 0.0:
                break  # the quoted errors explain the scatter: no start can do better
    if not solved:
        return failed_fit(f"only {n} reference star(s) matched (need at least {min_stars})", n)
    params, cov, used, extra2, converged_std = min(
        solved, key=lambda s: (s[3], -np.count_nonzero(s[2]))
    )

    resid = y - design @ params
    npoints = int(used.sum())
    w = 1.0 / (err2 + extra2)
    dof = max(npoints - design.shape[1], 1)
    chi2 = float(np.sum(resid[used] ** 2 * w[used])) / dof
    errors = np.sqrt(np.diag(cov) * max(1.0, chi2))
    if npoints <= 2:
        scatter = float(np.std(resid[used]))
    elif converged_std is None:
        scatter = median_and_robust_std(resid[used])[1]
    else:
        scatter = converged_std  # the last iteration's, of the same residuals of the same stars
    outlier_fraction = 1.0 - npoints / n
    reason = None
    if npoints < min_stars:
        reason = f"only {npoints} reference star(s) usable (need at least {min_stars})"
    elif outlier_fraction > max_outlier_fraction:
        reason = f"{outlier_fraction:.0%} of matched stars are outliers"
    elif scatter > max_scatter:
        reason = f"scatter {scatter:.2f} mag is above {max_scatter:.2f} mag"
    return ZeroPointFit(
        zeropoint=float(params[0]),
        zeropoint_err=float(errors[0]),
        colour_term=float(params[1]) if use_colour else prior[0] if prior else None,
        colour=colour_name if use_colour or prior else None,
        scatter=float(scatter),
        npoints=npoints,
        outlier_fraction=float(outlier_fraction),
        ok=reason is None,
        reason=reason,
        colour_pivot=pivot,
        inst_mag=inst_mag,
        ref_mag=ref_mag,
        colour_values=colour_values,
        residual=resid,
        used=used,
        order=order,
        params=params,
        cov=np.asarray(cov) * max(1.0, chi2),
        intrinsic2=extra2,
        err2=err2,
        colour_term_prior_err=prior[1] if prior else None,
    )


def _iterate(design, y, err2, used, params, clip_sigma, max_iter, has_colour):
    """Iteratively reweighted, clipped least squares from ``params`` (``None``: a first solve
    weighted by the quoted errors alone). Returns (params, covariance, used, intrinsic s²,
    robust spread of the final residuals when converged else ``None``); the covariance is
    ``None`` when no solve succeeded."""
    cov = converged_std = None
    extra2 = 0.0
    # A fixed subset, so the statistics move only with the stars that really enter or leave.
    n = len(y)
    sampled = None if n <= STATS_STARS else np.arange(0, n, -(-n // STATS_STARS))
    for _ in range(max_iter):
        if params is not None:
            resid = y - design @ params
            sample = used if sampled is None else sampled[used[sampled]]
            resid_std = median_and_robust_std(resid[sample])[1]
            solved_extra2, extra2 = extra2, max(0.0, resid_std**2 - median(err2[sample]))
            chi = resid / np.sqrt(err2 + extra2)
            chi_centre, chi_std = median_and_robust_std(chi[sample])
            new_used = np.abs(chi - chi_centre) <= clip_sigma * max(1.0, chi_std)
            if has_colour is not None:
                new_used &= has_colour
            # Converged when the stars and the weights of the last solve stand.
            if (
                cov is not None
                and np.array_equal(new_used, used)
                and abs(extra2 - solved_extra2) <= 1e-2 * (extra2 + np.min(err2[used]))
            ):
                extra2, converged_std = solved_extra2, resid_std
                break
            used = new_used
        if np.count_nonzero(used) < max(2, design.shape[1]):
            break
        # compress() gives the rows of boolean indexing ten times faster on a 2-D array.
        solved = _weighted_lsq(design.compress(used, axis=0), y[used], 1.0 / (err2[used] + extra2))
        if solved is None:
            break
        params, cov = solved
    return params, cov, used, extra2, converged_std


def _combined_err2(inst_err: np.ndarray, ref_err: np.ndarray) -> np.ndarray:
    """Squared total error, NaNs replaced by the median (or 0.05 mag if all are missing), at
    least `ERROR_FLOOR`."""
    total = []
    for err in (inst_err, ref_err):
        good = np.isfinite(err) & (err > 0)
        fill = median(err[good]) if good.any() else 0.05
        total.append(np.where(good, err, fill) ** 2)
    return np.maximum(total[0] + total[1], ERROR_FLOOR**2)


def fit_spatial_zeropoint(
    base: ZeroPointFit,
    inst_err: np.ndarray,
    ref_err: np.ndarray,
    position: tuple[np.ndarray, np.ndarray],
    *,
    colour_name: str | None = None,
    max_order: int = MAX_SPATIAL_ORDER,
) -> ZeroPointFit:
    """Refit ``base`` (order 0) with a zero point varying over the frame, when that pays.

    Orders 1 and 2 are tried when there are `STARS_PER_SPATIAL_TERM` stars and
    `EFFECTIVE_STARS_PER_SPATIAL_TERM` effective ones (``(Σw)² / Σw²``) per fitted term.
    Each order is scored by the Wald χ² of its position terms, ``W = p' C⁻¹ p`` with the
    fit's own covariance (already widened by its reduced χ²), less twice their number: the
    AIC's test of nested models, which keeps an order whose terms are each worth more than
    √2 σ. The order with the highest score wins (order 0 scores 0). An order that would win
    but has too few effective stars (at least `RIVAL_STARS_PER_SPATIAL_TERM` per term) is kept
    as the winner's ``rival``: the difference of their
    zero points is added to the error wherever it is evaluated (a vignetted frame with 20.2
    effective stars, 0.2 short of order 2's 21, kept the constant 0.060 off quoting 0.009).
    An earlier score, AIC on the robust spread of all stars' normalised residuals, missed a
    0.1 mag vignetting on 7 of 120 frames of 230 calibrators (the centre 0.04-0.08 mag off
    quoting 2-5 mmag): the faint stars, most of the count, hid the trend the bright ones
    measured.
    """
    if not base.ok or base.zeropoint is None:
        return base
    used = base.used
    n = int(used.sum())
    w = 1.0 / (base.err2 + base.intrinsic2)
    colour = None if base.colour_term is None else base.colour_values
    # Kish's effective number of stars: with a few bright stars carrying most of the weight,
    # an order-2 surface went through five of them (0.08 mag off at the centre of a flat
    # 38-star frame, quoting 0.017), although the star count allowed it.
    n_eff = float(np.sum(w[used]) ** 2 / np.sum(w[used] ** 2))
    best, best_score, rival = base, 0.0, None
    for order in range(1, max_order + 1):
        k = len(base.params) + (order + 1) * (order + 2) // 2 - 1
        if n < STARS_PER_SPATIAL_TERM * k or n_eff < RIVAL_STARS_PER_SPATIAL_TERM * k:
            break
        fit = fit_zeropoint(
            base.inst_mag, inst_err, base.ref_mag, ref_err, colour=colour,
            colour_name=colour_name, position=position, order=order,
        )  # fmt: skip
        if not fit.ok or (score := _wald_score(fit, len(base.params))) <= best_score:
            continue
        if n_eff < EFFECTIVE_STARS_PER_SPATIAL_TERM * k:
            rival = fit  # the data ask for it, too few effective stars to trust it
            break
        best, best_score = fit, score
        fit.add_systematic(base.systematic)
    best.rival = rival
    return best


def _wald_score(fit: ZeroPointFit, n_base: int) -> float:
    """Wald χ² of the fit's position terms (those after the first ``n_base``) less twice their
    number; -inf when their covariance is singular."""
    p, cov = fit.params[n_base:], fit.cov[n_base:, n_base:]
    try:
        wald = float(p @ np.linalg.solve(cov, p))
    except np.linalg.LinAlgError:
        return -math.inf
    return wald - 2.0 * len(p) if math.isfinite(wald) else -math.inf


def brightness_systematic(fit: ZeroPointFit) -> float:
    """Error of a zero point that depends on the brightness of the stars setting it.

    Faint stars' magnitudes carry biases bright ones do not (a Kron aperture losing the wings,
    a background raised by unresolved stars): on rendered 60 stars/arcmin² frames the isolated
    calibrators at S/N 8-30 were measured 0.8 σ too faint, which left the weighted zero point
    0.01-0.02 mag off quoting 3-5 mmag. The kept stars are split at half their total weight
    into brighter and fainter; the zero points of the halves (mean weighted residuals) differ
    by ``d`` with statistical variance ``v``, and half of what ``d`` exceeds it by,
    ``√max(d² - v, 0) / 2``, is the systematic (the fit sits between the halves).
    """
    used = fit.used
    if fit.zeropoint is None or np.count_nonzero(used) < 2 * MIN_STARS:
        return 0.0
    w = 1.0 / (fit.err2[used] + fit.intrinsic2)
    order = np.argsort(fit.inst_mag[used], kind="stable")
    w, resid = w[order], fit.residual[used][order]
    bright = np.cumsum(w) <= 0.5 * np.sum(w)
    if np.count_nonzero(bright) < 2 or np.count_nonzero(~bright) < 2:
        return 0.0
    halves = [
        (np.sum(w[h] * resid[h]) / np.sum(w[h]), 1.0 / np.sum(w[h])) for h in (bright, ~bright)
    ]
    d = halves[0][0] - halves[1][0]
    excess = d**2 - halves[0][1] - halves[1][1]
    return float(np.sqrt(excess) / 2.0) if excess > 0 else 0.0


#: Stars clipped within this many scatters of the fit were a judgement call, not gross outliers.
MARGINAL_CLIP = 5.0


def clipping_systematic(fit: ZeroPointFit) -> float:
    """How far the zero point would move if the marginally clipped stars were kept.

    Clipping weighs each star by its own quoted error, so a bright star whose small error
    ignores the frame's systematics can be rejected for a residual no larger than the faint
    stars' scatter, and with it the fit can settle on another solution: two of the four
    brightest stars of a flat 25-star frame (36 % of the weight, 0.07 mag off a fit whose
    colour term came out -0.16 for a true 0.07) were clipped, the zero point 0.045 off quoting
    0.011. The weighted residuals of the stars clipped within `MARGINAL_CLIP` scatters,
    over the total weight, are the constant term's first-order shift had they been kept.
    """
    if fit.zeropoint is None or fit.scatter is None:
        return 0.0
    w = 1.0 / (fit.err2 + fit.intrinsic2)
    finite = np.isfinite(fit.residual)
    with np.errstate(invalid="ignore"):
        marginal = ~fit.used & finite & (np.abs(fit.residual) <= MARGINAL_CLIP * fit.scatter)
    if not marginal.any():
        return 0.0
    return float(abs(np.sum(w[marginal] * fit.residual[marginal])) / np.sum(w[finite]))

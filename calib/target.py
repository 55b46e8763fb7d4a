"""Measure the alert on a calibrated frame: a magnitude, or an upper limit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .catalog import SourceCatalog
from .clean import JUNK_MAG
from .match import Sky, near
from .schema import LIMIT_MAG_ERR
from .stats import MAG_PER_FLUX

SNR_LIMIT = 5.0
ERR_AT_LIMIT = MAG_PER_FLUX / SNR_LIMIT  # 0.2171 mag: magnitude error at S/N = 5


@dataclass
class TargetMeasurement:
    """Calibrated magnitude of the alert, or an upper limit (``limit=True``, ``mag_err=-1``).

    ``ra, dec`` are the measured source's position (the alert position for a limit);
    ``row``, ``separation_arcsec`` and ``flags`` describe the matched source; ``target_flags``
    are `TARGET_FLAGS` that apply; ``notes`` are sentences for the result's warnings.
    """

    mag: float
    mag_err: float
    limit: bool
    limiting_mag: float
    ra: float
    dec: float
    separation_arcsec: float | None = None
    flags: int | None = None
    row: int | None = None
    target_flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


#: Order in which flags are listed: saturated (FLAGS 4, FLUX_MAX on the plateau, or brighter
#: than the calibrators' saturation knee), blended (FLAGS 1/2, or another source within the
#: search radius), edge (FLAGS 8/16), offset (further than 3 sigma of the expected position
#: error).
TARGET_FLAGS = ("saturated", "blended", "edge", "offset")
OFFSET_SIGMA = 3.0
MIN_SATURATED_ERR = 0.1  # mag: never less for a saturated target
FALLBACK_SATURATED_ERR = 0.5  # mag: without saturated stars of similar brightness to learn from


@dataclass(frozen=True)
class Saturation:
    """What the frame says about saturation, for flagging the target and sizing its error.

    ``plateau`` marks catalogue rows with FLUX_MAX on the saturation plateau; ``knee`` is the
    instrumental magnitude of the brightest calibrator that still fits (``None`` when nothing
    brighter was rejected); ``inst``/``residual`` are saturated reference stars' instrumental
    magnitudes and reference-minus-calibrated residuals. ``brightest`` is the instrumental
    magnitude of the brightest calibrator that fits and ``highest_peak`` its largest peak
    (FLUX_MAX), ``None`` without a peak column: up to there the frame is shown linear.
    ``wide`` marks rows whose FWHM exceeds the frame's stars' by `WIDE_RATIO` (a clipped core
    flattens the profile); ``flagged`` says the catalogue flags saturation (FLAGS 4) on some
    source, so its extraction did compare pixels with the saturation level. ``peak_ratio`` is
    the calibrators' median FLUX_MAX / flux and ``ratio_spread`` its relative robust scatter
    (pixel phase): a clipped star's ratio falls; ``top_peak`` the frame's highest FLUX_MAX.
    """

    plateau: np.ndarray | None = None
    knee: float | None = None
    inst: np.ndarray = field(default_factory=lambda: np.empty(0))
    residual: np.ndarray = field(default_factory=lambda: np.empty(0))
    brightest: float | None = None
    highest_peak: float | None = None
    wide: np.ndarray | None = None
    flagged: bool = False
    peak_ratio: float | None = None
    ratio_spread: float = 0.0
    top_peak: float | None = None

    def error_at(self, inst_mag: float) -> float:
        """Honest error of a saturated measurement: the RMS residual of saturated reference
        stars within 0.75 mag of it, else 0.5 mag plus how far it is past the knee."""
        near = np.abs(self.inst - inst_mag) <= 0.75
        if np.count_nonzero(near) >= 3:
            rms = float(np.sqrt(np.mean(self.residual[near] ** 2)))
            return max(rms, MIN_SATURATED_ERR)
        past_knee = 0.0 if self.knee is None else max(self.knee - inst_mag, 0.0)
        return FALLBACK_SATURATED_ERR + past_knee

    def loss_from_peak(self, inst_mag: float, peak: float) -> float:
        """What clipping cost a source whose peak is known (mag): from its FLUX_MAX / flux
        against the calibrators', granted their spread (pixel phase lowers it too)."""
        q = peak * 10 ** (0.4 * inst_mag) / self.peak_ratio
        return _loss_from_ratio(min(q + 2.0 * self.ratio_spread, 1.0))

    def unseen_loss(self, inst_mag: float, peak: float | None, fwhm_px: float | None) -> float:
        """What a clipped core nothing shows may have cost a source (mag): `clip_loss` of how
        far it is `unvouched`; with a known peak, what its peak ratio shows (`loss_from_peak`)
        and, when it holds the frame's highest peak, what one clipped pixel can cost (too few
        to lower the ratio beyond the phase scatter: a 10.70 mag star 0.01 mag faint quoted
        0.003), never more than the former."""
        bound = clip_loss(self.unvouched(inst_mag, peak))
        if bound == 0 or peak is None or not self.peak_ratio:
            return bound
        loss = self.loss_from_peak(inst_mag, peak)
        if self.top_peak and peak >= 0.98 * self.top_peak and fwhm_px:
            loss = max(loss, one_pixel_loss(fwhm_px))
        return min(loss, bound)

    def unvouched(self, inst_mag: float, peak: float | None) -> float:
        """How far (mag) a source is brighter than every calibrator that fits, when nothing
        shows its core unclipped (its peak, when known, is higher than theirs, and the catalogue
        flags no source saturated); 0 otherwise."""
        if self.flagged or self.brightest is None or not inst_mag < self.brightest:
            return 0.0
        if self.highest_peak is not None and peak is not None and peak < self.highest_peak:
            return 0.0
        return float(self.brightest - inst_mag)


def _loss_from_ratio(q: float) -> float:
    """Light a Gaussian star lost when its FLUX_MAX / flux is ``q`` times an unclipped star's:
    clipped at S from a peak k S it keeps (1 + ln k) / k of its light and its ratio falls to
    1 / (1 + ln k) of the unclipped one."""
    ln_k = max(1.0 / max(q, 1e-3) - 1.0, 0.0)
    return clip_loss(2.5 * ln_k / np.log(10))


def one_pixel_loss(fwhm_px: float) -> float:
    """Most a Gaussian star of ``fwhm_px`` loses with at most one clipped pixel (two, allowing
    for where the grid falls): it clips the 2 pi sigma**2 ln k pixels above the level, which
    bounds ln k (0.01 mag at FWHM 3.5 px, 0.06 at 2.2 px)."""
    if not fwhm_px > 0:
        return 0.0
    sigma = fwhm_px / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    ln_k = 2.0 / (2.0 * np.pi * sigma**2)
    return clip_loss(2.5 * ln_k / np.log(10))


#: A source this much wider than the frame's stars, and brighter than the calibrators, is
#: saturated (a clipped core flattens its profile: 4.1 px against the frame's 3.0).
WIDE_RATIO = 1.25


def clip_loss(beyond_mag: float) -> float:
    """Most a star ``beyond_mag`` brighter than the brightest star shown linear can lose to a
    clipped core (mag): the latter's peak is at most the saturation level S, so a Gaussian
    star k = 10**(0.4 beyond) times brighter peaks at k S and keeps (1 + ln k) / k of its
    light when clipped at S (0.03 mag at 0.3 mag beyond, 0.29 at 1, 0.55 at 1.5). A catalogue
    without a peak column cannot tell how close to S its brightest calibrator came, so this
    is what an extrapolation beyond the calibrators can hide."""
    if not beyond_mag > 0:
        return 0.0
    k = 10 ** (0.4 * beyond_mag)
    return float(-2.5 * np.log10((1.0 + np.log(k)) / k))


@dataclass(frozen=True)
class PositionScatter:
    """How far matched stars lie from their reference positions, by instrumental magnitude:
    a Rayleigh sigma ``floor`` (the brightest third: astrometric solution, reference), and
    ``faint`` at ``faint_mag`` (the faintest third's median), whose excess over the floor
    grows as 1/SNR, i.e. 10**(0.4 m), towards fainter sources. Measured, it needs no FWHM: a
    plain table (2.5" assumed) on 5" pixels flagged a 12.5 mag target 0.6" off as 11 sigma."""

    floor: float
    faint: float
    faint_mag: float

    def at(self, inst_mag: float) -> float:
        excess = max(self.faint**2 - self.floor**2, 0.0) * 10 ** (0.8 * (inst_mag - self.faint_mag))
        return float(np.sqrt(self.floor**2 + excess))


def position_scatter(inst_mag: np.ndarray, separation_arcsec: np.ndarray) -> PositionScatter:
    """`PositionScatter` of matched pairs (constant below 15 pairs: too few to split)."""
    good = np.isfinite(inst_mag) & np.isfinite(separation_arcsec)
    mag, sep = inst_mag[good], separation_arcsec[good]
    if len(sep) == 0:
        return PositionScatter(0.0, 0.0, 0.0)
    if len(sep) < 15:
        sigma = float(np.median(sep)) / RAYLEIGH_MEDIAN
        return PositionScatter(sigma, sigma, float(np.max(mag)))
    order = np.argsort(mag, kind="stable")
    third = len(order) // 3
    bright, faint = order[:third], order[-third:]
    return PositionScatter(
        float(np.median(sep[bright])) / RAYLEIGH_MEDIAN,
        float(np.median(sep[faint])) / RAYLEIGH_MEDIAN,
        float(np.median(mag[faint])),
    )


#: Median of a Rayleigh distribution in units of its sigma.
RAYLEIGH_MEDIAN = 1.1774


def target_radius(
    match_radius_arcsec: float, astrometric_sigma_arcsec: float, fwhm_arcsec: float
) -> float:
    """Search radius around the alert: the calibrators' radius, 3 sigma of their astrometric
    residuals, or one FWHM, whichever is largest. A faint target centroids worse than the
    bright calibrators, and a target merged with a neighbour has its centroid pulled by up to
    a FWHM: coarse pixels make the FWHM the honest yardstick. A source found further than
    the position error allows is flagged ``offset``."""
    return float(max(match_radius_arcsec, 3.0 * astrometric_sigma_arcsec, fwhm_arcsec))


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
    return faintest_detections(mag[finite])


def faintest_detections(mag: np.ndarray) -> float:
    """Where the catalogue's reliable detections end: the 99th percentile of its (finite)
    magnitudes, so a few spurious faint rows do not count."""
    return float(np.percentile(mag, 99))


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


def sources_within(
    catalog: SourceCatalog, sky: Sky, ra: float, dec: float, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of valid sources within the radius and their separations, nearest first
    (``sky``: the catalogue's positions)."""
    idx, sep = near(sky, ra, dec, radius_arcsec)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(catalog.mag[idx]) & (np.abs(catalog.mag[idx]) < JUNK_MAG)
    idx, sep = idx[valid], sep[valid]
    order = np.argsort(sep, kind="stable")
    return idx[order], sep[order]


#: How much further than the search radius a displaced source may lie, in FWHM.
MAX_DISPLACEMENT_FWHM = 5.0


def _displaced_sources(
    catalog: SourceCatalog,
    sky: Sky,
    ra: float,
    dec: float,
    radius_arcsec: float,
    fwhm_arcsec: float,
    source_fwhm_arcsec: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sources beyond the search radius whose centroid is displaced from their light: one cut
    by the frame's edge (FLAGS 8) centroids on its visible part, up to a FWHM further in (3.6
    arcsec for a 3.1 arcsec FWHM target on the last column); an unresolved blend centroids
    between its stars, up to its excess width over a star's from either (a 13 mag target merged
    with a 13.5 mag star 12 arcsec away was measured 8.3 arcsec off on 8 arcsec FWHM, outside
    the one-FWHM radius). At most `MAX_DISPLACEMENT_FWHM` FWHM further; nearest first."""
    idx, sep = sources_within(
        catalog, sky, ra, dec, radius_arcsec + MAX_DISPLACEMENT_FWHM * fwhm_arcsec
    )
    reach = np.where((catalog.flags[idx] & 8) != 0, fwhm_arcsec, 0.0)
    if source_fwhm_arcsec is not None:
        with np.errstate(invalid="ignore"):
            excess = np.nan_to_num(source_fwhm_arcsec[idx] - fwhm_arcsec, nan=0.0)
        reach = np.maximum(reach, excess)
    keep = sep <= radius_arcsec + reach
    return idx[keep], sep[keep]


def measure_target(
    catalog: SourceCatalog,
    sky: Sky,
    ra: float,
    dec: float,
    *,
    radius_arcsec: float,
    astrometric_sigma_arcsec: float,
    fwhm_arcsec: float,
    zeropoint: float,
    zeropoint_err: float,
    limiting_mag: float,
    saturation: Saturation,
    source_fwhm_arcsec: np.ndarray | None = None,
    scatter: PositionScatter | None = None,
) -> TargetMeasurement:
    """Calibrate the source nearest the alert, or report the frame's limit.

    ``catalog`` should be the raw catalogue (positions already corrected for any systematic
    shift, ``sky`` holding them): the alert may be blended with its host or flagged, and still
    deserves a measurement. The target's colour is unknown, so it is calibrated at the calibrators'
    median colour (the zero point's pivot); the colour-term uncertainty this leaves is not
    included in ``mag_err``, which is the photometric and zero-point errors in quadrature.

    A saturated target keeps its measured magnitude (the true one is brighter) with the
    error of `Saturation.error_at` added in quadrature, flagged ``saturated``: never a normal
    measurement with a millimagnitude error.
    """
    idx, sep = sources_within(catalog, sky, ra, dec, radius_arcsec)
    merged = False
    if len(idx) == 0:
        idx, sep = _displaced_sources(
            catalog, sky, ra, dec, radius_arcsec, fwhm_arcsec, source_fwhm_arcsec
        )
        merged = len(idx) > 0 and not catalog.flags[idx[0]] & 8
    if len(idx) == 0:
        return TargetMeasurement(
            mag=limiting_mag,
            mag_err=LIMIT_MAG_ERR,
            limit=True,
            limiting_mag=limiting_mag,
            ra=ra,
            dec=dec,
        )
    i = int(idx[0])
    phot_err = float(catalog.mag_err[i])
    if not (np.isfinite(phot_err) and phot_err > 0):
        phot_err = 0.0
    flags = int(catalog.flags[i])
    inst = float(catalog.mag[i])
    target_flags, notes = [], []
    plateau = saturation.plateau is not None and bool(saturation.plateau[i])
    past_knee = saturation.knee is not None and inst < saturation.knee
    peak = None if catalog.flux_max is None else float(catalog.flux_max[i])
    if peak is not None and not np.isfinite(peak):
        peak = None
    beyond = saturation.unvouched(inst, peak)
    wide = saturation.wide is not None and bool(saturation.wide[i]) and beyond > 0
    fwhm_px = None if catalog.fwhm is None else float(catalog.fwhm[i])
    loss = saturation.unseen_loss(inst, peak, fwhm_px)
    mag_err = float(np.hypot(phot_err, zeropoint_err))
    if flags & 4 or plateau or past_knee or wide:
        target_flags.append("saturated")
        sat_err = saturation.error_at(inst)
        mag_err = float(np.hypot(mag_err, sat_err))
        why = "wider than the frame's stars and brighter than its calibrators" if wide else ""
        notes.append(
            f"target is saturated{': ' + why if why else ''}: its magnitude is a lower bound "
            f"on its brightness (error {mag_err:.2f} mag from the frame's saturated stars)"
        )
    elif loss > 0.0:
        # Brighter than every calibrator, with nothing to show its core unclipped.
        mag_err = float(np.hypot(mag_err, loss))
        if loss >= MIN_SATURATED_ERR:
            target_flags.append("saturated")
            mag_err = max(mag_err, MIN_SATURATED_ERR)
        notes.append(
            f"target is {beyond:.2f} mag brighter than every calibrator and the catalogue "
            f"cannot show its core unclipped (no source flagged saturated, its peak not below "
            f"theirs): it may be up to {loss:.2f} mag brighter if saturated"
            + ("; flagged saturated" if loss >= MIN_SATURATED_ERR else "")
            + f" (error {mag_err:.2f} mag)"
        )
    if merged:
        notes.append(
            f"target is merged with a neighbour: the nearest source, {sep[0]:.1f} arcsec from "
            f"the alert and wider than a star, was measured"
        )
    if flags & 3 or len(idx) > 1 or merged:
        target_flags.append("blended")
        if len(idx) > 1:
            notes.append(
                f"target is ambiguous: {len(idx)} sources within {radius_arcsec:.1f} arcsec of "
                f"the alert; the nearest ({sep[0]:.1f} arcsec) was measured"
            )
    if flags & 24:
        target_flags.append("edge")
    snr = MAG_PER_FLUX / phot_err if phot_err > 0 else 0.0
    centroid = fwhm_arcsec / 2.3548 / snr if snr > 0 else fwhm_arcsec / 2.3548
    position_sigma = float(np.hypot(astrometric_sigma_arcsec, centroid))
    if scatter is not None:  # what matched stars as bright show, when that is more
        position_sigma = max(position_sigma, scatter.at(inst))
    if sep[0] > OFFSET_SIGMA * position_sigma:
        target_flags.append("offset")
        notes.append(
            f"target source is {sep[0]:.1f} arcsec from the alert ({sep[0] / position_sigma:.1f} "
            "sigma of the expected position error)"
        )
    return TargetMeasurement(
        mag=inst + zeropoint,
        mag_err=mag_err,
        limit=False,
        limiting_mag=limiting_mag,
        ra=float(catalog.ra[i]),
        dec=float(catalog.dec[i]),
        separation_arcsec=float(sep[0]),
        flags=flags,
        row=i,
        target_flags=target_flags,
        notes=notes,
    )

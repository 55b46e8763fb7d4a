"""The alert measured on a calibrated frame (`measure_alert`): its search, the limit,
saturation evidence, blends with catalogued stars, and the error floors a catalogue's quoted
errors miss (stars crowded like the target, light shared with neighbours, a displaced
centroid). Each function takes the `CalibratedFrame`; docs/calibration.md gives each rule its
numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .blend import (
    DETECTION_SNR,
    MERGED_SNR,
    MIN_CONTAMINATION,
    SEARCH_FWHM,
    BlendKernel,
    Decomposition,
    alert_counterpart,
    decompose,
    fit_kernel,
    predicted_flux,
)
from .calibration_log import CalibrationLog
from .candidates import matched_residuals
from .catalog import SourceCatalog
from .clean import on_saturation_plateau
from .completeness import completeness_50
from .crowding import (
    crowded_sources,
    reference_contamination,
    reference_neighbours,
)
from .frame import CalibratedFrame
from .match import (
    crossmatch,
    near,
    pairs_within,
)
from .schema import LIMIT_MAG_ERR
from .stats import MAG_PER_FLUX, median, median_and_robust_std
from .target import (
    TARGET_FLAGS,
    WIDE_RATIO,
    Saturation,
    TargetMeasurement,
    faintest_detections,
    limiting_magnitude,
    measure_target,
    position_scatter,
    sources_within,
    target_radius,
)
from .zeropoint import (
    MIN_STARS,
    colour_for_band,
)

MAX_COMPLETENESS_STARS = 5000  # reference stars tested for detection (evenly spaced subset)


#: The target's error is at least the scatter of this many matched stars nearest its magnitude.
EMPIRICAL_NEIGHBOURS = 15


def empirical_error(
    frame: CalibratedFrame, inst_mag: float, crowded: bool, phot_err: float
) -> float | None:
    """Robust scatter of the matched stars nearest the target in magnitude, reference errors
    removed: what a star of that brightness really scatters by in this frame, whatever the
    catalogue quotes. When they lie further than 1 mag from it, the target's own error
    ``phot_err`` times the robust spread of their residuals over their quoted errors instead
    (a ratio carries across magnitudes, a scatter does not): two 16 mag targets with no
    calibrator within 1 mag were 0.12-0.13 mag bright quoting 0.041, their neighbours'
    errors 1.9 times too small. Only stars crowded like the target are used when enough lie
    within 1 mag of it (crowded: another source within the frame's ``crowd_radius``, FLAGS
    1/2, or reference stars there adding over `MAX_TARGET_CONTAMINATION` to its flux): blended
    neighbours raised an isolated target's error from 0.08 to 0.33 mag."""
    chosen, cleaned, sky, crowd_radius = frame.chosen, frame.cleaned, frame.sky, frame.crowd_radius
    inst, residual, ref_err, (rows, stars) = matched_residuals(chosen, cleaned)
    close = np.flatnonzero(np.abs(inst - inst_mag) <= 1.0)
    if len(close) >= EMPIRICAL_NEIGHBOURS:
        band_mag = chosen.match.ref.bands[chosen.band][0]
        neighbours = reference_neighbours(chosen.match.sky, stars[close], crowd_radius)
        contamination = reference_contamination(neighbours, stars[close], band_mag)
        blended = crowded_sources(sky, cleaned.flags, rows[close], crowd_radius)
        like = close[(blended | (contamination > MAX_TARGET_CONTAMINATION)) == crowded]
        if len(like) >= EMPIRICAL_NEIGHBOURS:
            inst, residual, ref_err, rows = inst[like], residual[like], ref_err[like], rows[like]
    if len(inst) < EMPIRICAL_NEIGHBOURS:
        return None
    near = np.argsort(np.abs(inst - inst_mag))[:EMPIRICAL_NEIGHBOURS]
    if np.max(np.abs(inst[near] - inst_mag)) > 1.0:
        quoted = np.hypot(cleaned.mag_err[rows[near]], np.nan_to_num(ref_err[near]))
        with np.errstate(invalid="ignore", divide="ignore"):
            z = residual[near] / quoted
        z = z[np.isfinite(z)]
        return float(phot_err * median_and_robust_std(z)[1]) if len(z) >= MIN_STARS else None
    spread = median_and_robust_std(residual[near])[1]
    ref2 = float(np.median(np.where(np.isfinite(ref_err[near]), ref_err[near], 0.0) ** 2))
    return float(np.sqrt(max(spread**2 - ref2, 0.0)))


def widen_for_displacement(target: TargetMeasurement, fwhm: float, log: CalibrationLog) -> None:
    """Widen an `offset` target's error by the light an unseen neighbour would need to pull
    its centroid that far: two unresolved point sources centroid at their flux-weighted mean,
    so a source displaced by d holds at least d / FWHM of its flux from elsewhere. The frame
    cannot tell that from a displaced alert; a 9.75 mag transient merged with an uncatalogued
    10.6 mag star 4" away (FWHM 15") was 0.28 mag bright quoting 0.005."""
    share = min(target.separation_arcsec / fwhm, 1.0)
    error = MAG_PER_FLUX * share
    target.mag_err = float(np.hypot(target.mag_err, error))
    log.add(
        "target",
        f"target error widened by {error:.3f} mag: {target.separation_arcsec:.1f} arcsec from "
        f"the alert, its light may be up to {share:.0%} a neighbour's",
    )


#: Neighbouring sources within this many FWHM share light with a source when it is measured.
SHARING_FWHM = 2.0
#: Matched stars with neighbours needed to measure how much of their light leaks, and the leak
#: (relative to the neighbours' flux) assumed with fewer: measured 0.01-0.08 on frames of
#: 1500-40000 stars; the 14 mag target below took 6 % of its neighbour's light.
MIN_SHARING = 10
ASSUMED_LEAK = 0.05


def shared_light_error(frame: CalibratedFrame, target: TargetMeasurement) -> float | None:
    """Error a target carries from the light its detected neighbours share with it.

    Deblending splits a blend's light by a model, and apertures overlap: a 14 mag target
    1.8 FWHM from a 13 mag star came out 0.16 mag bright quoting 0.01. How much leaks is
    measured on the matched stars with neighbours within `SHARING_FWHM` (those neighbours'
    catalogue fluxes summed): the robust scatter of (measured - predicted flux) / neighbours'
    flux, or `ASSUMED_LEAK` with fewer than `MIN_SHARING` such stars. The target's error is
    that fraction of its own neighbours' flux, in magnitudes. ``None`` without neighbours.
    """
    shifted, shifted_sky, cleaned, sky = frame.shifted, frame.shifted_sky, frame.cleaned, frame.sky
    chosen, fwhm = frame.chosen, frame.fwhm_arcsec
    radius = SHARING_FWHM * fwhm
    j, _ = near(shifted_sky, target.ra, target.dec, radius)
    with np.errstate(invalid="ignore"):
        j = j[(j != target.row) & np.isfinite(shifted.mag[j]) & (np.abs(shifted.mag[j]) < 90)]
    if len(j) == 0:
        return None
    target_flux = 10 ** (-0.4 * (target.mag - chosen.fit.zeropoint))
    neighbours = float(np.sum(10 ** (-0.4 * shifted.mag[j])))
    inst, residual, _, (rows, _) = matched_residuals(chosen, cleaned)
    p1, p2, _ = pairs_within(sky.take(rows), sky, radius)
    others = rows[p1] != p2
    p1, p2 = p1[others], p2[others]
    around = np.bincount(p1, weights=10 ** (-0.4 * cleaned.mag[p2]), minlength=len(rows))
    has = around > 0
    leak = ASSUMED_LEAK
    if np.count_nonzero(has) >= MIN_SHARING:
        own = 10 ** (-0.4 * inst[has])
        # residual = reference - measured - model: positive when the source is too faint.
        excess = own * (10 ** (0.4 * residual[has]) - 1.0) / around[has]
        leak = median_and_robust_std(excess)[1]
    return float(MAG_PER_FLUX * leak * neighbours / target_flux)


def measured_limit(
    frame: CalibratedFrame, zeropoint: float, radius: float, log: CalibrationLog
) -> float:
    """50 % completeness of the reference stars in the frame (detected: any source within the
    target's search radius); S/N = 5 capped at the faintest detections when the reference is
    not deep enough to measure it."""
    chosen, shifted, cleaned, geometry = frame.chosen, frame.shifted, frame.cleaned, frame.geometry
    ref = chosen.match.ref
    band_mag = ref.bands[chosen.band][0]
    inside = geometry.inside(ref.ra, ref.dec, margin_arcsec=geometry.fwhm_arcsec)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(shifted.mag) & (np.abs(shifted.mag) < 90) & np.isfinite(shifted.ra)
    rows = np.flatnonzero(valid)
    # Stars brighter than the median calibrator are detected anyway; the 50 % point is fitted
    # from those fainter (still bracketing it from the bright side).
    calibrators = band_mag[chosen.j2]
    if len(calibrators):
        with np.errstate(invalid="ignore"):
            inside &= band_mag >= median(calibrators[np.isfinite(calibrators)])
    idx = np.flatnonzero(inside)
    faintest = faintest_detections(cleaned.mag) + zeropoint
    with np.errstate(invalid="ignore"):
        deep_enough = np.count_nonzero(band_mag[idx] > faintest) >= 5
    if not deep_enough:
        idx = idx[:0]  # the reference stops before the frame does: nothing to measure
    if len(idx) > MAX_COMPLETENESS_STARS:
        idx = idx[np.linspace(0, len(idx) - 1, MAX_COMPLETENESS_STARS).astype(np.int64)]
    _, found, _ = crossmatch(frame.shifted_sky.take(rows), chosen.match.sky.take(idx), radius)
    detected = np.zeros(len(idx), dtype=bool)
    detected[found] = True
    chance = len(rows) / geometry.area_arcsec2 * math.pi * radius**2
    m50 = completeness_50(band_mag[idx], detected, chance)
    if m50 is not None:
        log.add(
            "limit",
            f"limiting magnitude {m50:.2f}: 50 % of the {np.count_nonzero(inside)} "
            f"{ref.survey}/{chosen.band} reference stars in the frame are detected there "
            f"(logistic fit, {chance:.1%} chance matches allowed for)",
        )
        return m50
    inst_limit = limiting_magnitude(cleaned.mag, cleaned.mag_err)
    snr5 = zeropoint + inst_limit if inst_limit is not None else faintest
    limit = min(snr5, faintest)
    log.add(
        "limit",
        f"limiting magnitude {limit:.2f}: the reference is too shallow to measure the frame's "
        f"completeness; S/N = 5 magnitude {snr5:.2f}, capped at the faintest detections "
        f"(99th percentile, {faintest:.2f})",
    )
    return limit


def saturation_evidence(frame: CalibratedFrame, zeropoint: float, radius: float) -> Saturation:
    """Saturation evidence of the frame (see `target.Saturation`) for a target whose search
    radius is ``radius`` arcsec; sources wider than the frame's FWHM count only when it was
    measured."""
    shifted, cleaned, chosen, fit = frame.shifted, frame.cleaned, frame.chosen, frame.fit
    source_fwhm_arcsec = frame.source_fwhm_arcsec
    fwhm_arcsec = frame.fwhm_arcsec if frame.geometry.fwhm_measured else None
    plateau = None if shifted.flux_max is None else on_saturation_plateau(shifted.flux_max, 0.9)
    knee = brightest_used = highest_peak = peak_ratio = None
    ratio_spread = 0.0
    if len(fit.inst_mag) and fit.used.any():
        brightest_used = float(np.min(fit.inst_mag[fit.used]))
        brighter = fit.inst_mag < brightest_used
        if np.count_nonzero(brighter & ~fit.used & (fit.residual > 0)) >= 2:
            knee = brightest_used
        if cleaned.flux_max is not None:
            rows = chosen.j1[fit.used]
            peaks = cleaned.flux_max[rows]
            with np.errstate(over="ignore", invalid="ignore"):
                ratios = peaks * 10 ** (0.4 * cleaned.mag[rows])
            good = np.isfinite(peaks) & np.isfinite(ratios) & (ratios > 0)
            highest_peak = float(np.max(peaks[good])) if good.any() else None
            if np.count_nonzero(good) >= MIN_STARS:
                centre, spread = median_and_robust_std(ratios[good])
                peak_ratio, ratio_spread = centre, spread / centre
    wide = None
    if source_fwhm_arcsec is not None and fwhm_arcsec:
        with np.errstate(invalid="ignore"):
            wide = source_fwhm_arcsec > WIDE_RATIO * fwhm_arcsec
    if shifted.flux_max is not None and cleaned.flux_max is not None:
        flat = _flat_topped(shifted, cleaned, chosen.j1[fit.used])
        flat |= _at_flagged_level(shifted)
        plateau = flat if plateau is None else plateau | flat
    saturated = (shifted.flags & 4) != 0
    if plateau is not None:
        saturated |= plateau
    idx = np.flatnonzero(saturated & np.isfinite(shifted.mag) & (np.abs(shifted.mag) < 90))
    ref = chosen.match.ref
    band_mag = ref.bands[chosen.band][0]
    i1, i2, _ = crossmatch(frame.shifted_sky.take(idx), chosen.match.sky, radius)
    inst = shifted.mag[idx[i1]]
    residual = band_mag[i2] - (inst + zeropoint)
    good = np.isfinite(residual)
    return Saturation(
        plateau, knee, inst[good], residual[good], brightest_used, highest_peak, wide,
        bool(np.any(shifted.flags & 4)), peak_ratio, ratio_spread, _top_peak(shifted),
    )  # fmt: skip


def _top_peak(shifted: SourceCatalog) -> float | None:
    """The frame's highest FLUX_MAX, ``None`` without one."""
    if shifted.flux_max is None:
        return None
    peaks = shifted.flux_max[np.isfinite(shifted.flux_max)]
    return float(np.max(peaks)) if len(peaks) else None


def _at_flagged_level(shifted: SourceCatalog) -> np.ndarray:
    """Sources whose peak reaches the level of those Source Extractor flagged saturated
    (FLAGS 4: their FLUX_MAX is the saturation level less the sky). It does not flag every
    one: a 10.46 mag star peaking at 59699.1 against a flagged star's 59699.5 was left at
    FLAGS 0 and reported 10.549 +- 0.004 (24 sigma)."""
    with np.errstate(invalid="ignore"):
        peaks = shifted.flux_max[((shifted.flags & 4) != 0) & (shifted.flux_max > 0)]
        if not len(peaks):
            return np.zeros(len(shifted), dtype=bool)
        return shifted.flux_max >= SATURATED_PEAK_FRACTION * median(peaks)


#: A peak this close to the flagged stars' is on the saturation plateau.
SATURATED_PEAK_FRACTION = 0.98


def _flat_topped(shifted: SourceCatalog, cleaned: SourceCatalog, calibrators: np.ndarray):
    """Sources among the highest peaks of the frame whose peak is too low for their flux.

    For point sources FLUX_MAX / flux is fixed by the PSF; a saturated star's top is cut off,
    so its ratio falls. Catches a lone saturated star (no plateau of several, no FLAGS 4 when
    SATUR_LEVEL was set too high), while extended hosts are spared by requiring a peak within
    a factor 2 of the frame's highest. ``calibrators`` index the cleaned catalogue.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = shifted.flux_max * 10 ** (0.4 * shifted.mag)
        good = np.isfinite(ratio) & (ratio > 0) & (np.abs(shifted.mag) < 90)
        typical = cleaned.flux_max[calibrators] * 10 ** (0.4 * cleaned.mag[calibrators])
    typical = typical[np.isfinite(typical) & (typical > 0)]
    if len(typical) < 5 or not good.any():
        return np.zeros(len(shifted), dtype=bool)
    highest = float(np.max(shifted.flux_max[good]))
    with np.errstate(invalid="ignore"):
        return good & (ratio < 0.7 * median(typical)) & (shifted.flux_max >= 0.5 * highest)


#: A target whose catalogued neighbours within 2 FWHM add more than this to its flux is blended.
MAX_TARGET_CONTAMINATION = 0.1


def flag_reference_neighbours(
    frame: CalibratedFrame, target: TargetMeasurement, counterpart: int | None
) -> None:
    """Flag ``blended`` when reference stars near the target would add to its flux.

    The light of those the frame did not resolve is subtracted (`alert_in_blend`); this
    flags the rest, resolved neighbours whose wings reach the target. ``counterpart`` (the
    star that is the alert itself, `blend.alert_counterpart`) is not counted.
    """
    chosen, crowd_radius = frame.chosen, frame.crowd_radius
    ref = chosen.match.ref
    band_mag = ref.bands[chosen.band][0]
    j, _ = near(chosen.match.sky, target.ra, target.dec, crowd_radius)
    j = j[j != counterpart]
    with np.errstate(invalid="ignore"):
        flux = np.nansum(10 ** (-0.4 * (band_mag[j] - target.mag)))
    if flux > MAX_TARGET_CONTAMINATION:
        if "blended" not in target.target_flags:
            target.target_flags.append("blended")
            target.target_flags.sort(key=TARGET_FLAGS.index)
        target.notes.append(
            f"target is blended: {len(j)} reference star(s) within {crowd_radius:.1f} arcsec "
            f"would add about {flux:.0%} to its flux"
        )


def own_counterpart(
    frame: CalibratedFrame, target: TargetMeasurement, alert: tuple[float, float]
) -> int | None:
    """The reference star that is the alert itself (`blend.alert_counterpart`), unless the
    frame's source at the alert lies too far from it to be it (`offset`): then that star is a
    neighbour (a 16.4 mag transient 0.5" from a 14.7 mag star was reported as the star)."""
    if "offset" in target.target_flags and not target.limit:
        return None
    m = frame.chosen.match
    return alert_counterpart(m.sky, alert, m.match.radius_arcsec, m.sigma_arcsec, frame.fwhm_arcsec)


def _subtract_faint_neighbours(
    target: TargetMeasurement, d: Decomposition, log: CalibrationLog
) -> None:
    """Subtract unresolved catalogued light below `MIN_CONTAMINATION` of the source from the
    measured target, its uncertainty (the kernel's relative error) added to the error: a
    16.3 mag star 1 FWHM from a 13.06 mag target added 5 % and left it 8 sigma bright."""
    share = d.contamination / d.measured
    shift = -2.5 * math.log10(1.0 - share)
    error = MAG_PER_FLUX * d.kernel.relative_error * share
    target.mag = float(target.mag + shift)
    target.mag_err = float(np.hypot(target.mag_err, error))
    note = (
        f"{d.stars} catalogued star(s) the frame did not resolve put {share:.1%} of the light "
        f"into the target's source; their reference fluxes were subtracted ({shift:+.3f} mag, "
        f"± {error:.3f})"
    )
    target.notes.append(note)
    log.add("target", f"target: {note}")


def alert_in_blend(
    frame: CalibratedFrame,
    target: TargetMeasurement,
    zeropoint: tuple[float, float],
    alert: tuple[float, float],
    counterpart: int | None,
    separable: float | None,
    log: CalibrationLog,
) -> TargetMeasurement | None:
    """The alert measured as what its source holds beyond the unresolved catalogued stars
    (`calib.blend`), or ``None`` when none blends with it much.

    A measured target is decomposed when its neighbours hold `MIN_CONTAMINATION` of its
    flux; less is subtracted from it in place (`_subtract_faint_neighbours`). An alert with
    no source within the search radius is looked for in the sources within `SEARCH_FWHM` of
    it, nearest first: one holding more than its neighbours by `MERGED_SNR` sigma holds the
    alert. Below `DETECTION_SNR` the result is an upper limit. ``counterpart`` is the
    reference star that is the alert itself (`own_counterpart`), never subtracted;
    ``separable`` bounds what a blend can hide (`separation_limit`).
    """
    if "saturated" in target.target_flags:
        return None
    shifted, shifted_sky, chosen, fit = frame.shifted, frame.shifted_sky, frame.chosen, frame.fit
    fwhm = frame.fwhm_arcsec
    ref, band = chosen.match.ref, chosen.band
    pair = colour_for_band(band, list(ref.bands))
    colour = None
    if pair is not None and fit.colour_term is not None:
        colour = ref.bands[pair[0]][0] - ref.bands[pair[1]][0]
    zp, zp_err = zeropoint
    flux = predicted_flux(ref.bands[band][0], colour, zp, fit.colour_term, fit.colour_pivot)
    match_radius = chosen.match.match.radius_arcsec
    if target.limit:
        rows = sources_within(shifted, shifted_sky, *alert, SEARCH_FWHM * fwhm)[0]
    else:
        rows = np.array([target.row])

    def split(row: int, kernel: BlendKernel) -> Decomposition:
        return decompose(
            shifted, shifted_sky, int(row), alert, chosen.match.sky, flux, counterpart,
            match_radius, fwhm, kernel,
        )  # fmt: skip

    # The default kernel tells cheaply whether any catalogued star is in reach; the frame's
    # own kernel (a search over the calibrators) is fitted only then.
    if not any(split(row, BlendKernel()).stars for row in rows):
        return None
    kernel = fit_kernel(
        frame.cleaned, frame.sky, chosen.match.sky, flux, (chosen.match.i1, chosen.match.i2),
        chosen.match.resolved, fwhm,
    )  # fmt: skip
    parts = [split(row, kernel) for row in rows]
    if target.limit:
        blends = [d for d in parts if d.stars and d.alert_share > 0]
        merged = [d for d in blends if d.snr >= MERGED_SNR]
        if not merged:
            return _hidden_in_blend(target, blends, zp, separable, log)
        parts = merged[:1]
    else:
        faint = [d for d in parts if 0 < d.contamination < MIN_CONTAMINATION * d.measured]
        if faint:
            _subtract_faint_neighbours(target, faint[0], log)
        parts = [d for d in parts if d.contamination >= MIN_CONTAMINATION * d.measured]
    if not parts:
        return None
    d = parts[0]
    src = shifted_sky.take(np.array([d.row]))
    _, src_sep = near(src, *alert, 180 * 3600.0)
    flags = ["blended"] + [f for f in target.target_flags if f in ("edge", "offset")]
    if target.limit:
        flags.append("offset")
    flags = sorted(set(flags), key=TARGET_FLAGS.index)
    detected = d.snr >= DETECTION_SNR
    fitted = (
        f"fitted on {kernel.blends} blended stars of this frame" if kernel.blends else "assumed"
    )
    how = (
        f"{d.stars} catalogued star(s) the frame did not resolve put "
        f"{d.contamination / d.measured:.0%} of the light into the source at "
        f"{float(src_sep[0]):.1f} arcsec; their reference fluxes were subtracted (blend model "
        f"{fitted}, ±{kernel.relative_error:.0%})"
    )
    if detected:
        mag = d.magnitude(zp)
        mag_err = float(np.hypot(MAG_PER_FLUX / d.snr, zp_err))
        note = f"the alert sits in a blend: {how}"
    else:
        mag, mag_err = d.bound(zp), LIMIT_MAG_ERR
        if not math.isfinite(mag):
            return None  # the blend leaves the alert no light: the target's own answer stands
        note = (
            f"the alert sits in a blend: {how}; what remains has S/N {d.snr:.1f}, so its "
            f"magnitude is an upper limit ({mag:.2f})"
        )
    log.add(
        "target",
        f"target: {note}; {band} = "
        + (f"{mag:.3f} ± {mag_err:.3f}" if detected else f"upper limit {mag:.2f}"),
    )
    return TargetMeasurement(
        mag=float(mag),
        mag_err=float(mag_err),
        limit=not detected,
        limiting_mag=target.limiting_mag,
        ra=float(src.ra[0]) if detected else alert[0],
        dec=float(src.dec[0]) if detected else alert[1],
        separation_arcsec=float(src_sep[0]),
        flags=int(shifted.flags[d.row]),
        row=d.row,
        target_flags=flags,
        notes=[note],
    )


def _hidden_in_blend(
    target: TargetMeasurement,
    blends: list[Decomposition],
    zeropoint: float,
    separable: float | None,
    log: CalibrationLog,
) -> TargetMeasurement | None:
    """An alert not found, next to blends that show no excess: a transient there would have
    merged with them, so the limit is the brightest it could be and stay unseen in their light
    when that is brighter than the frame's own limit. A transient brighter than ``separable``
    (`separation_limit`) would have stood apart as a source of its own, so the bound is never
    brighter than that: dividing by the kernel's small share at 1.5 FWHM put a limit 6 mag
    above the frame's depth (11.38 for 17.9, next to a 13.1 mag star). The target itself
    when the frame's limit stands; ``None`` without blends."""
    if not blends:
        return None
    bound = min(d.bound(zeropoint) for d in blends)
    if separable is not None:
        bound = max(bound, separable)
    if bound >= target.mag:
        return target  # brighter, it would show in their light or stand apart
    how = "" if separable is None else f" (brighter than {separable:.2f} it would stand apart)"
    note = (
        f"the alert lies within {SEARCH_FWHM:g} FWHM of {len(blends)} source(s) holding "
        f"catalogued stars the frame did not resolve; a transient up to {bound:.2f} could hide "
        f"in their light{how}, so that is the limit here"
    )
    log.add("target", f"target: {note}")
    return replace(target, mag=float(bound), target_flags=["blended"], notes=[*target.notes, note])


def unresolved_stars_near(
    frame: CalibratedFrame, alert: tuple[float, float], limit: float
) -> float | None:
    """The brightest catalogued star within `SEPARATION_FWHM` of the alert that no source
    measures though it is `CONFUSED_MAG` brighter than the frame's ``limit`` (band magnitude):
    its light went into some other source, so the extraction was confused there and a
    transient as faint as it could be too (a 16 mag transient 2 FWHM from an unmeasured
    13.1 mag star on a 200 stars/arcmin2 frame was given the frame's 17.35)."""
    chosen = frame.chosen
    j, _ = near(chosen.match.sky, *alert, SEPARATION_FWHM * frame.fwhm_arcsec)
    band_mag = chosen.match.ref.bands[chosen.band][0][j[~chosen.match.resolved[j]]]
    with np.errstate(invalid="ignore"):
        band_mag = band_mag[band_mag < limit - CONFUSED_MAG]
    return float(np.min(band_mag)) if len(band_mag) else None


def limit_beside_sources(
    target: TargetMeasurement, separable: float | None, log: CalibrationLog
) -> TargetMeasurement:
    """A limit no deeper than what the frame separates from the sources next to the alert
    (`separation_limit`): there its depth is that, not the frame's."""
    if not target.limit or separable is None or separable >= target.mag:
        return target
    note = (
        f"the alert lies within {SEPARATION_FWHM:g} FWHM of a brighter source; the frame "
        f"separates no neighbour that faint from such sources, so a transient up to "
        f"{separable:.2f} could be merged into it unseen: that is the limit here"
    )
    log.add("target", f"target: {note}")
    flags = sorted({*target.target_flags, "blended"}, key=TARGET_FLAGS.index)
    return replace(target, mag=float(separable), target_flags=flags, notes=[*target.notes, note])


#: Sources within this many FWHM of the alert may hide a transient next to them.
SEPARATION_FWHM = 3.0
#: A catalogued star this much brighter than the frame's limit is detected unless the
#: extraction is confused there.
CONFUSED_MAG = 1.0
#: Pairs of the frame's detected stars needed to measure how faint a neighbour it separates,
#: and the percentile of their contrasts taken: fragments of a bright star's wings matched to
#: reference stars by chance (17 % of them at 200 stars/arcmin2) must not make the frame look
#: better at separating than it is (its 3rd largest contrast claimed a 16 mag transient 2
#: FWHM from a 13.1 mag star fainter than 17.35).
MIN_SEPARATED_PAIRS = 10
SEPARATED_PERCENTILE = 90
#: Pairs count when their brighter member is at most this much fainter than the alert's
#: neighbour: a bright star's wings hide more than a faint one's.
PRIMARY_MAG = 1.0
#: Two equal Gaussian stars this many FWHM apart show two peaks (from 0.85): a transient as
#: bright as its neighbour there is separated, whatever else the frame shows.
EQUAL_PAIR_FWHM = 1.0


def separation_limit(
    frame: CalibratedFrame, alert: tuple[float, float], zeropoint: float
) -> float | None:
    """The brightest transient the frame could fail to separate from the sources next to the
    alert (calibrated magnitude), measured on the frame itself; ``None`` when no source lies
    within `SEPARATION_FWHM` or too few pairs measure it.

    A transient beside a much brighter source is merged into it by the extraction: a 16 and a
    17 mag transient 2 FWHM from a 13.1 mag star were not detected, and the frame's limit of
    17.9 claimed them fainter. How faint a neighbour the frame does separate at a distance is
    seen in its own detections: pairs of sources at most that far apart whose fainter member
    is a reference star (a real star, not a fragment of a bright one's wings) and whose
    brighter member is about as bright as the neighbour (`PRIMARY_MAG`), the contrast being
    their `SEPARATED_PERCENTILE`-th percentile. A transient fainter than the neighbour by more
    than that may hide there, whatever the frame's depth elsewhere. With too few pairs, only
    a transient as bright as a neighbour `EQUAL_PAIR_FWHM` or more away is known to stand
    apart.
    """
    shifted, cleaned, sky, fwhm = frame.shifted, frame.cleaned, frame.sky, frame.fwhm_arcsec
    matched_rows = frame.chosen.match.i1
    reach = SEPARATION_FWHM * fwhm
    rows, seps = sources_within(shifted, frame.shifted_sky, *alert, reach)
    if len(rows) == 0 or len(matched_rows) == 0:
        return None
    p1, p2, d = pairs_within(sky.take(matched_rows), sky, reach)
    faint = cleaned.mag[matched_rows[p1]]
    contrast = faint - cleaned.mag[p2]
    with np.errstate(invalid="ignore"):
        keep = (matched_rows[p1] != p2) & (contrast > 0)
    contrast, d, primary = contrast[keep], d[keep], cleaned.mag[p2][keep]
    limits = []
    for row, sep in zip(rows, seps, strict=True):
        like = (d <= max(sep, 0.5 * fwhm)) & (primary <= shifted.mag[row] + PRIMARY_MAG)
        closer = contrast[like]
        if len(closer) >= MIN_SEPARATED_PAIRS:
            separated = float(np.percentile(closer, SEPARATED_PERCENTILE))
        elif sep >= EQUAL_PAIR_FWHM * fwhm:
            separated = 0.0  # too few pairs to say more: an equal star there stands apart
        else:
            continue
        limits.append(float(shifted.mag[row]) + separated + zeropoint)
    return min(limits) if limits else None


@dataclass(frozen=True)
class AlertMeasurement:
    """The alert on a calibrated frame: ``target`` (magnitude or limit, flags, the notes a
    user should read about it), the zero point and its error evaluated at the alert, and the
    measurement's own log."""

    target: TargetMeasurement
    zeropoint: float
    zeropoint_err: float
    log: CalibrationLog


def alert_zeropoint(
    frame: CalibratedFrame, alert: tuple[float, float], log: CalibrationLog
) -> tuple[float, float]:
    """The frame's zero point and its error at the alert, logged when it varies over the frame."""
    zp, zp_err = frame.zeropoint_at(*alert)
    if frame.fit.order:
        log.add(
            "zeropoint",
            f"zero point varies over the frame (order {frame.fit.order} polynomial, chosen by "
            "the Wald test): "
            f"{zp:.3f} ± {zp_err:.3f} at the target, {frame.fit.zeropoint:.3f} at the centre",
        )
    return zp, zp_err


def measure_alert(frame: CalibratedFrame, alert: tuple[float, float]) -> AlertMeasurement:
    """Measure the alert at ``alert`` (RA, Dec degrees) in the frame's catalogue.

    The rules, in the order they apply (docs/calibration.md gives their numbers): the target
    has its own search radius and flags, and a saturated target an honest error
    (`calib.target`); the limit is the 50 % completeness of the reference stars when
    measurable (`measured_limit`), no deeper than what the frame separates beside brighter
    sources (`separation_limit`); catalogued stars the frame did not resolve are subtracted
    (`alert_in_blend`); a measured target's error is at least what stars like it scatter by
    (`empirical_error`) and the light its neighbours share with it (`shared_light_error`).
    """
    log = CalibrationLog()
    zp, zp_err = alert_zeropoint(frame, alert, log)
    chosen, fwhm = frame.chosen, frame.fwhm_arcsec
    radius = (
        float(frame.match_dist_arcsec)
        if frame.match_dist_arcsec
        else target_radius(frame.match_radius_arcsec, frame.astrometric_sigma, fwhm)
    )
    limiting_mag = measured_limit(frame, zp, radius, log)
    target = measure_target(
        frame.shifted,
        frame.shifted_sky,
        *alert,
        radius_arcsec=radius,
        astrometric_sigma_arcsec=frame.astrometric_sigma,
        fwhm_arcsec=fwhm,
        zeropoint=zp,
        zeropoint_err=zp_err,
        limiting_mag=limiting_mag,
        saturation=saturation_evidence(frame, zp, radius),
        source_fwhm_arcsec=frame.source_fwhm_arcsec,
        scatter=position_scatter(frame.cleaned.mag[chosen.match.i1], chosen.match.sep),
    )
    if target.limit:
        log.add(
            "target",
            f"target: no source within {radius:.2f} arcsec of the alert; "
            f"upper limit {target.mag:.2f}",
        )
    else:
        flagged = f", FLAGS {target.flags}" if target.flags else ""
        marks = f" [{', '.join(target.target_flags)}]" if target.target_flags else ""
        log.add(
            "target",
            f"target: source at {target.separation_arcsec:.2f} arcsec (search radius "
            f"{radius:.2f}){flagged}; {chosen.band} = {target.mag:.3f} ± {target.mag_err:.3f}"
            f"{marks}",
        )
    counterpart = own_counterpart(frame, target, alert)
    separable = None
    if target.limit:
        separable = separation_limit(frame, alert, zp)
        confused = unresolved_stars_near(frame, alert, target.mag)
        if confused is not None:
            separable = confused if separable is None else min(separable, confused)
    blend = alert_in_blend(frame, target, (zp, zp_err), alert, counterpart, separable, log)
    if blend is not None:
        target = blend
    elif target.limit:  # no catalogued star's light to bound it: what the frame separates
        target = limit_beside_sources(target, separable, log)
    else:
        _floor_error(frame, target, zp, zp_err, counterpart, log)
    return AlertMeasurement(target, zp, zp_err, log)


def _floor_error(
    frame: CalibratedFrame,
    target: TargetMeasurement,
    zp: float,
    zp_err: float,
    counterpart: int | None,
    log: CalibrationLog,
) -> None:
    """Raise a measured target's error to what the frame shows stars like it scatter by, or
    the light its neighbours share with it, and flag catalogued neighbours that blend it."""
    phot_err = math.sqrt(max(target.mag_err**2 - zp_err**2, 0.0))
    if "offset" in target.target_flags and frame.geometry.fwhm_measured:
        widen_for_displacement(target, frame.fwhm_arcsec, log)
    flag_reference_neighbours(frame, target, counterpart)
    if "saturated" in target.target_flags:
        return
    crowded = "blended" in target.target_flags or (
        len(near(frame.shifted_sky, target.ra, target.dec, frame.crowd_radius)[0]) > 1
    )
    empirical = empirical_error(frame, target.mag - zp, crowded, phot_err)
    why = (
        f"the scatter of the {EMPIRICAL_NEIGHBOURS} matched stars nearest its magnitude "
        f"({'crowded' if crowded else 'isolated'} like it when enough; beyond 1 mag the "
        "ratio of their scatter to their quoted errors)"
    )
    shared = shared_light_error(frame, target)
    if shared is not None and (empirical is None or shared > empirical):
        empirical = shared
        why = "the light its detected neighbours share with it (deblending, apertures)"
    if empirical is not None and empirical > target.mag_err:
        log.add(
            "target",
            f"target error raised from {target.mag_err:.3f} to {empirical:.3f} mag: " + why,
        )
        target.mag_err = float(np.hypot(empirical, zp_err))

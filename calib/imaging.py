"""Calibrate a FITS image end to end: extract its sources, check its WCS against the reference
stars, calibrate the extracted catalogue like an uploaded one (`calib.frame.calibrate_frame`),
and measure the alert by forced photometry at its position instead of in the catalogue.

The catalogue path measures the alert only if SExtractor happened to detect it; here every
frame gives a flux with an error at the alert's position, and a non-detection gives the
frame's real 5-sigma depth there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .alert import alert_zeropoint, measure_alert
from .astrometry import WcsCorrection, refine_wcs
from .blend import (
    APERTURE_RELATIVE_ERROR,
    DETECTION_SNR,
    MIN_CONTAMINATION,
    alert_counterpart,
    aperture_share,
    predicted_flux,
)
from .calibration_log import CalibrationLog
from .errors import CalibrationError
from .extract import Extraction, extract
from .forced import SNR_DETECTION, ForcedPhotometry, forced_photometry, inside, phase_scatter
from .frame import CalibratedFrame, calibrate_frame
from .image import Image, ImageError
from .instrument import BandHistory
from .match import near
from .pipeline import CalibrationResult, calibration_result
from .reference import RefCatalog
from .stats import MAG_PER_FLUX
from .target import (
    FALLBACK_SATURATED_ERR,
    MIN_SATURATED_ERR,
    TargetMeasurement,
    one_pixel_loss,
)
from .zeropoint import ZeroPointFit, colour_for_band

_WARNINGS = {
    "saturated": "the alert's aperture holds saturated pixels: its magnitude is a lower bound "
    "on its brightness (the true flux is higher; error {mag_err:.2f} mag from the frame's "
    "saturated stars); use a shorter exposure",
    "edge": "the alert's aperture runs off the image or over blank pixels: part of its flux "
    "is missing",
    "blended": "another source lies within 2 FWHM of the alert and adds flux to its aperture; "
    "check the cutout",
    "offset": "a source lies near the alert but not at its position; check the cutout "
    "(wrong coordinates, or a neighbour)",
}


@dataclass
class ImageCalibration:
    """The calibrated frame: the usual `CalibrationResult`, its target measured by forced
    photometry (flags and warnings included), and what the cutout needs."""

    result: CalibrationResult
    forced: ForcedPhotometry
    extraction: Extraction
    correction: WcsCorrection
    pixel_scale_arcsec: float

    def to_dict(self) -> dict:
        return self.result.to_dict()


def calibrate_image(
    image: Image,
    references: Callable[[np.ndarray, np.ndarray], Sequence[RefCatalog]],
    target_ra: float,
    target_dec: float,
    *,
    match_dist_arcsec: float | None = None,
    force_filter: str | None = None,
    allowed_filters: Sequence[str] | None = None,
    instrument_history: Mapping[str, BandHistory] | None = None,
) -> ImageCalibration:
    """Measure and calibrate ``image``; ``references(ra, dec)`` returns the reference stars
    around the given source positions (one `RefCatalog` per survey).

    Raises
    ------
    ImageError
        Nothing to measure, a WCS that disagrees with the reference stars, or an alert outside
        the frame.
    CalibrationError
        As `calibrate`: no reference stars, no survey/band passing the quality gates.
    """
    shape = image.data.shape
    scale = image.pixel_scale_arcsec
    wcs = image.wcs
    with np.errstate(invalid="ignore"):
        tx, ty = (float(v[0]) for v in wcs.all_world2pix([target_ra], [target_dec], 0))
    ex = extract(image)  # image.data is now the background-subtracted residual
    cat = ex.catalog
    refs = list(references(cat.ra, cat.dec))
    if not refs:
        raise CalibrationError("no reference catalogue covers the field")
    ref_ra = np.concatenate([r.ra for r in refs])
    ref_dec = np.concatenate([r.dec for r in refs])
    ref_mag = np.concatenate([_any_band(r) for r in refs])
    corr = refine_wcs(ex.x, ex.y, cat.mag, wcs, shape, ref_ra, ref_dec, ref_mag, scale, ex.fwhm_px)
    hx, hy = corr.inverse(ex.x, ex.y)
    ra, dec = wcs.all_pix2world(hx, hy, 0)
    catalog = replace(cat, ra=np.asarray(ra) % 360.0, dec=np.asarray(dec))
    tx, ty = (float(v[0]) for v in corr.forward(np.array([tx]), np.array([ty])))
    if not (math.isfinite(tx) and math.isfinite(ty) and inside(ex, tx, ty)):
        raise ImageError(
            f"the alert (RA {target_ra:.5f}, Dec {target_dec:.5f}) falls outside the image "
            f"({shape[1]} x {shape[0]} pixels)"
        )
    log = CalibrationLog()
    log.add(
        "image",
        f"image: {shape[1]} x {shape[0]} px at {scale:.3f} arcsec/px, background "
        f"{ex.background_adu:.1f} ± {ex.background_rms_adu:.2f} ADU, FWHM {ex.fwhm_px:.2f} px "
        f"({ex.fwhm_px * scale:.2f} arcsec), {len(cat)} sources, saturation "
        + (f"{ex.saturation_adu:.0f} ADU" if ex.saturation_adu else "not seen"),
    )
    log.add(
        "wcs",
        f"WCS checked on {corr.npairs} reference stars: shift {corr.c * scale:+.2f}, "
        f"{corr.d * scale:+.2f} arcsec (x, y), rotation {corr.rotation_deg:+.3f} deg, scale "
        f"{corr.scale:.4f}, residual rms {corr.rms_px * scale:.2f} arcsec",
    )
    alert = (target_ra, target_dec)
    frame = calibrate_frame(
        catalog,
        refs,
        alert,
        match_dist_arcsec=match_dist_arcsec,
        force_filter=force_filter,
        allowed_filters=allowed_filters,
        instrument_history=instrument_history,
        log=log,
    )
    # The catalogue measurement of the extracted source at the alert is evidence, not the
    # answer: whether that source lies offset from the alert, and its error if saturated.
    extracted = measure_alert(frame, alert)
    own = extracted.target
    forced_log = CalibrationLog()
    zp, zp_err = alert_zeropoint(frame, alert, forced_log)
    forced = forced_photometry(ex, tx, ty)
    depth = zp - 2.5 * math.log10(forced.depth_flux)
    light, stars = _catalogued_light(frame, own, wcs, corr, ex, scale, (tx, ty), alert)
    flux, flux_err = forced.flux, forced.flux_err
    # Every catalogued neighbour's light is subtracted with its error; from 10 % on it is
    # worth a flag (below, 5 % of a 13 mag alert's light left it 8 sigma bright).
    subtract = light >= MIN_CONTAMINATION * max(flux, DETECTION_SNR * flux_err)
    flux -= light
    flux_err = math.hypot(flux_err, APERTURE_RELATIVE_ERROR * light)
    if subtract and "blended" not in forced.flags:
        forced.flags.append("blended")
    detected = flux >= SNR_DETECTION * flux_err
    phase = phase_scatter(ex.fwhm_px, ex.aperture_px)
    clipped = 0.0
    if detected:
        mag = zp - 2.5 * math.log10(flux)
        phot = math.hypot(MAG_PER_FLUX * flux_err / flux, MAG_PER_FLUX * phase)
        mag_err = math.hypot(max(phot, _star_scatter(frame.fit, mag - zp)), zp_err)
        if "offset" in own.target_flags and not own.limit:
            # The extracted source there is displaced from the alert: a merged neighbour may
            # light the aperture too (a 9.75 mag alert 0.05 bright quoting 0.006); its error,
            # widened for that, bounds this one.
            mag_err = max(mag_err, own.mag_err)
        if "saturated" in forced.flags:
            mag_err = _saturated_error(own, mag_err)
        else:
            clipped = _unseen_clipping(ex, forced)
            if clipped > 0:
                mag_err = math.hypot(mag_err, clipped)
                if clipped >= MIN_SATURATED_ERR:
                    forced.flags.insert(0, "saturated")
                    mag_err = max(mag_err, MIN_SATURATED_ERR)
    elif subtract:  # what could hide under the catalogued stars' light, never deeper than the frame
        mag = zp - 2.5 * math.log10(
            max(max(flux, 0.0) + DETECTION_SNR * flux_err, forced.depth_flux)
        )
        mag_err = -1.0
    else:
        mag, mag_err = depth, -1.0
    forced_log.add(
        "target",
        f"target: forced photometry at x={tx + 1:.2f}, y={ty + 1:.2f} (FITS pixels), aperture "
        f"r={forced.radius_px:.2f} px: flux {forced.flux:.1f} ± {forced.flux_err:.1f} ADU, "
        f"S/N {forced.snr:.1f}; 5-sigma depth {depth:.2f}; "
        + (
            f"{frame.band} = {mag:.3f} ± {mag_err:.3f}"
            if forced.detected
            else f"S/N < {SNR_DETECTION:g}: upper limit {mag:.2f}"
        ),
    )
    # The forced measurement's notes on the target, not the catalogue's.
    warnings = [*frame.warnings]
    warnings += [_WARNINGS[f].format(mag_err=mag_err) for f in forced.flags]
    if subtract:
        warnings.append(
            f"{stars} catalogued star(s) near the alert put {light / forced.flux:.0%} of the "
            f"light into its aperture; their predicted light was subtracted (±"
            f"{APERTURE_RELATIVE_ERROR:.0%})"
            + ("" if detected else f", and what remains is an upper limit ({mag:.2f})")
        )
    if 0 < clipped < MIN_SATURATED_ERR:
        warnings.append(
            "the alert's aperture holds the frame's highest pixel and the header gives no "
            f"SATURATE: if that pixel is clipped the alert may be up to {clipped:.3f} mag "
            "brighter (included in its error)"
        )
    shift_arcsec = corr.shift_px * scale
    if shift_arcsec > max(1.0, 0.5 * ex.fwhm_px * scale):
        warnings.append(
            f"the header WCS was off by {shift_arcsec:.1f} arcsec; corrected from "
            f"{corr.npairs} reference stars"
        )
    result = replace(
        calibration_result(frame, extracted),
        mag=mag,
        mag_err=mag_err,
        limit=not detected,
        limiting_mag=depth,
        ra=float(target_ra),
        dec=float(target_dec),
        log=(frame.log + forced_log).lines(),
        target_flags=list(forced.flags),
        warnings=warnings,
        target_notes=[],
    )
    return ImageCalibration(
        result=result,
        forced=forced,
        extraction=ex,
        correction=corr,
        pixel_scale_arcsec=scale,
    )


def _catalogued_light(
    frame: CalibratedFrame,
    own: TargetMeasurement,
    wcs,
    corr: WcsCorrection,
    ex: Extraction,
    pixel_arcsec: float,
    at: tuple[float, float],
    alert: tuple[float, float],
) -> tuple[float, int]:
    """Light the chosen survey's stars near the alert put into its aperture (instrumental
    flux) and how many contribute. A star is left out only when it is demonstrably the alert
    itself, by the catalogue path's rule (`blend.alert_counterpart`: within 3 astrometric
    sigmas or 0.2 FWHM of the alert, and not when the catalogue calibration of the extracted
    sources, ``own``, found the source there `offset` from the alert): a star 1" away was taken
    for the alert on a crowded frame, its light left in (0.13 mag bright, 8 sigma)."""
    ref, ref_sky, fit = frame.chosen.match.ref, frame.chosen.match.sky, frame.fit
    reach_px = ex.aperture_px + 2.0 * ex.fwhm_px  # the share is negligible beyond
    idx, _ = near(ref_sky, *alert, reach_px * pixel_arcsec)
    if "offset" not in own.target_flags or own.limit:
        star = alert_counterpart(
            ref_sky, alert, frame.match_radius_arcsec, frame.astrometric_sigma,
            ex.fwhm_px * pixel_arcsec,
        )  # fmt: skip
        idx = idx[idx != star]
    if len(idx) == 0:
        return 0.0, 0
    pair = colour_for_band(frame.band, list(ref.bands))
    colour = None
    if pair is not None and fit.colour_term is not None:
        colour = ref.bands[pair[0]][0][idx] - ref.bands[pair[1]][0][idx]
    zeropoint = frame.zeropoint_at(*alert)[0]
    flux = predicted_flux(
        ref.bands[frame.band][0][idx], colour, zeropoint, fit.colour_term, fit.colour_pivot
    )
    with np.errstate(invalid="ignore"):
        px, py = wcs.all_world2pix(ref.ra[idx], ref.dec[idx], 0)
    px, py = corr.forward(np.asarray(px), np.asarray(py))
    share = aperture_share(np.hypot(px - at[0], py - at[1]), ex.aperture_px, ex.fwhm_px)
    light = np.where(np.isfinite(flux) & np.isfinite(share), flux * share, 0.0)
    return float(np.sum(light)), int(np.count_nonzero(light > 1e-3 * np.max(light, initial=0)))


#: Calibrators nearest the target in magnitude whose scatter bounds its error from below.
SCATTER_NEIGHBOURS = 15


def _star_scatter(fit: ZeroPointFit, inst_mag: float) -> float:
    """How far calibrators as bright as the alert lie from the fit: the RMS residual
    (3σ-clipped) of the `SCATTER_NEIGHBOURS` nearest in magnitude, a floor under the alert's
    photometric error. Pixel phase in a small aperture, flat-field and PSF changes over the
    frame affect the alert as they do them; photon noise alone quoted 1.4 mmag for a 9.2 mag
    alert 7.5 mmag off on a 5"/px frame whose calibrators of that brightness scatter by 4
    (their reference errors, kept in, make the floor a little generous)."""
    if fit.inst_mag.size == 0 or not fit.used.any():
        return 0.0
    used = np.flatnonzero(fit.used)
    near_stars = used[np.argsort(np.abs(fit.inst_mag[used] - inst_mag))[:SCATTER_NEIGHBOURS]]
    if len(near_stars) < 5 or np.max(np.abs(fit.inst_mag[near_stars] - inst_mag)) > 1.0:
        return 0.0  # no calibrators of its brightness to learn from
    resid = fit.residual[near_stars]
    keep = np.abs(resid - np.median(resid)) <= 3.0 * max(np.std(resid), 1e-6)
    return float(np.sqrt(np.mean(resid[keep] ** 2)))


def _unseen_clipping(ex: Extraction, forced: ForcedPhotometry) -> float:
    """What a clipped core too small to show could have cost the alert (mag), when the frame
    gives no saturation level: its aperture holds the frame's single highest pixel, which may
    be clipped (two touching pixels at the top are read as saturation, `calib.extract`).

    The pixels around it say what that pixel should hold: a star (Gaussian of the frame's FWHM,
    integrated over the pixels, at the alert's position) fitted to the 5 x 5 pixels around it
    without it predicts it, and what it lacks is the light lost. Never more than one clipped
    pixel can cost (`calib.target.one_pixel_loss`: 0.01 mag at FWHM 3.5 px, 0.06 at 2.2 px).
    (A 10.4 mag alert with one clipped pixel was 0.01 mag faint quoting 0.002; the
    bound alone made undersampled bright alerts' errors 0.05 mag, 10 times their scatter.)"""
    if ex.saturation_adu is not None or ex.brightest_pixel is None:
        return 0.0
    px, py = ex.brightest_pixel
    if math.hypot(px - forced.x, py - forced.y) > forced.radius_px + 1.0:
        return 0.0
    sigma = ex.fwhm_px / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    bound = one_pixel_loss(ex.fwhm_px)
    ix, iy = round(px), round(py)
    ny, nx = ex.residual.shape
    if not (2 <= ix < nx - 2 and 2 <= iy < ny - 2):
        return bound
    stamp = ex.residual[iy - 2 : iy + 3, ix - 2 : ix + 3].astype(np.float64)
    edges = np.arange(-2, 4) - 0.5
    erf = np.vectorize(math.erf)
    best = None
    for dx in np.linspace(-0.3, 0.3, 7) + forced.x - ix:
        gx = np.diff(erf((edges - dx) / (sigma * math.sqrt(2.0)))) / 2.0
        for dy in np.linspace(-0.3, 0.3, 7) + forced.y - iy:
            gy = np.diff(erf((edges - dy) / (sigma * math.sqrt(2.0)))) / 2.0
            model = np.outer(gy, gx)
            wings = np.ones((5, 5), dtype=bool)
            wings[2, 2] = False
            flux = float(stamp[wings] @ model[wings] / (model[wings] @ model[wings]))
            misfit = float(np.sum((stamp[wings] - flux * model[wings]) ** 2))
            if best is None or misfit < best[0]:
                best = (misfit, flux, flux * float(model[2, 2]))
    _, flux, predicted = best
    if not flux > 0:
        return bound
    lacking = max(predicted - float(stamp[2, 2]), 0.0) / flux
    return min(bound, -2.5 * math.log10(max(1.0 - lacking, 1e-3)))


def _saturated_error(own: TargetMeasurement, mag_err: float) -> float:
    """A saturated aperture's honest error, never its photon noise (a few mmag): the error the
    catalogue measurement (``own``) found from the frame's saturated stars when it saw the
    target saturated too, else `FALLBACK_SATURATED_ERR`; at least `MIN_SATURATED_ERR`."""
    seen = "saturated" in own.target_flags and not own.limit
    return max(
        math.hypot(mag_err, MIN_SATURATED_ERR),
        own.mag_err if seen else FALLBACK_SATURATED_ERR,
    )


def _any_band(ref: RefCatalog) -> np.ndarray:
    """A magnitude per reference star (first band that has one) to pick the brightest."""
    mag = np.full(len(ref), np.nan)
    for values, _ in ref.bands.values():
        mag = np.where(np.isfinite(mag), mag, values)
    return mag

"""The "realistic frames" tables of bench_calib.py: rendered frames through Source Extractor.

Each frame is drawn and measured by the real ``source-extractor`` (`simfields.sextractor`);
calserv and STDPipe calibrate the same catalogue. The truth the codes are scored against is
the simulator's input (zero point, the transient's magnitude) and, for limits, a completeness
measured here from the rendered stars and the catalogue, not by calserv's estimator.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.spatial import cKDTree

from calib import CalibrationError, calibrate
from calib.stats import MAG_PER_FLUX
from calib.zeropoint import colour_for_band
from simfields.sextractor import RenderedField, render_field

PIVOT = 0.5
OBSERVATORY_FILTERS = ("R", "I")
COARSE = {
    "pixscale": 5.0, "fwhm_pix": 1.6, "npix": 200, "density_per_arcmin2": 0.5,
    "bright_mag": 8.0, "faint_mag": 17.0, "zeropoint": 22.0, "ref_depth_mag": 17.5,
    "target_mag": 13.0, "target_offset_arcsec": (1.5, 0.5),
}  # fmt: skip
#: name -> (render_field options, calibrate options, STDPipe spatial order)
CASES = {
    "plain": ({}, {}, 0),
    "coarse": (COARSE, {}, 0),
    "vignetting": (
        {"npix": 500, "zeropoint": 26.0, "density_per_arcmin2": 60.0, "vignetting_mag": 0.1},
        {},
        2,
    ),
    "crowded": (
        {"npix": 250, "density_per_arcmin2": 400.0, "faint_mag": 21.0, "target_mag": 15.0},
        {},
        0,
    ),
    "saturated": ({"target_mag": 9.0}, {}, 0),
    "absent": ({"target_mag": None}, {}, 0),
    "few stars": ({"faint_mag": 19.0, "ref_depth_mag": 13.6, "npix": 260}, {}, 0),
    "wcs 5in": ({"wcs_offset_arcsec": (5.0, -1.0)}, {"match_dist_arcsec": 2.0}, 0),
    "near limit": ({"target_mag": 17.4}, {}, 0),
}

#: STDPipe as its author runs it in STDWeb (``pipeline.calibrate_photometry(..., robust=True,
#: scale_noise=True, accept_flags=0x02, max_intrinsic_rms=0.01)``, radius half the median FWHM,
#: the calibrate_photometry default): deblended sources (0x02) calibrate, sources SExtractor
#: flags as affected by neighbours (0x01) or saturated (0x04) do not.
STDPIPE_SETTINGS = {"scale_noise": True, "accept_flags": 0x02, "max_intrinsic_rms": 0.01}
SATURATED_FLAG = 0x04  # SExtractor FLAGS bit: at least one pixel saturated


@dataclass
class Outcome:
    """One code on one frame: zero point at the pivot colour and the target, the target's
    magnitude/error (or limit), the band, and the time. ``saturated``: the code says the
    target is saturated (calserv's ``target_flags``; for STDPipe, SExtractor's FLAGS & 4)."""

    zp: float | None = None
    mag: float | None = None
    mag_err: float | None = None
    limit: bool = False
    limiting_mag: float | None = None
    band: str | None = None
    seconds: float = math.nan
    failed: str | None = None
    saturated: bool = False
    crashed: bool = False  # an exception other than the code's own refusal: a bug


def run_calserv(f: RenderedField, options: dict, _order: int) -> Outcome:
    t = f.truth
    start = time.thread_time()
    try:
        r = calibrate(
            f.catalog, [f.reference], t["target_ra"], t["target_dec"],
            allowed_filters=OBSERVATORY_FILTERS, **options,
        )  # fmt: skip
    except CalibrationError as exc:
        return Outcome(failed=str(exc), seconds=time.thread_time() - start)
    except Exception as exc:  # a bug: counted and listed with the frame, the bench goes on
        return Outcome(failed=f"{type(exc).__name__}: {exc}", crashed=True)
    elapsed = time.thread_time() - start
    ct = r.colour_term or 0.0
    pivot = r.fit.colour_pivot if r.fit.colour_pivot is not None else PIVOT
    return Outcome(
        zp=r.zeropoint - ct * (PIVOT - pivot),
        mag=r.mag,
        mag_err=r.mag_err,
        limit=r.limit,
        limiting_mag=r.limiting_mag,
        band=r.filter,
        seconds=elapsed,
        saturated="saturated" in r.target_flags,
    )


def run_calserv_image(f: RenderedField, options: dict, _order: int) -> Outcome:
    """calserv's image path on the FITS frame Source Extractor measured: its own extraction,
    WCS check and forced photometry of the alert. Its zero point is that of its own apertures
    (not Source Extractor's MAG_AUTO), so only the target is scored."""
    from calib.image import ImageError, load_image
    from calib.imaging import calibrate_image

    t = f.truth
    start = time.thread_time()
    try:
        r = calibrate_image(
            load_image(f.image), lambda _ra, _dec: [f.reference], t["target_ra"],
            t["target_dec"], allowed_filters=OBSERVATORY_FILTERS, **options,
        ).result  # fmt: skip
    except (CalibrationError, ImageError) as exc:
        return Outcome(failed=str(exc), seconds=time.thread_time() - start)
    except Exception as exc:  # a bug: counted and listed with the frame, the bench goes on
        return Outcome(failed=f"{type(exc).__name__}: {exc}", crashed=True)
    return Outcome(
        mag=r.mag,
        mag_err=r.mag_err,
        limit=r.limit,
        limiting_mag=r.limiting_mag,
        band=r.filter,
        seconds=time.thread_time() - start,
        saturated="saturated" in r.target_flags,
    )


def stdpipe_radius(t: dict) -> float:
    """STDPipe's matching radius in arcsec: half the FWHM (``calibrate_photometry``'s default),
    widened by the frame's known WCS error (a user sees it in the match separations; STDWeb
    can refine the WCS first, not emulated here). calserv gets ``matchDist`` as an observer
    would pass it."""
    return 0.5 * t["fwhm_arcsec"] + math.hypot(*t["wcs_offset_arcsec"])


def stdpipe_runner(robust: bool, all_bands: bool = False):
    """STDPipe given the answer (R with V-R colour, the spatial order the frame needs) with
    `STDPIPE_SETTINGS` and `stdpipe_radius`; the target is the nearest source within
    max(FWHM, radius), its error the catalogue's and the zero point's in quadrature (STDWeb's
    ``mag_calib_err``), saturated when its FLAGS has bit 4; absent: the S/N = 5 limit. With
    ``all_bands`` every band is fitted first (the work of an automatic band choice)."""
    from stdpipe import photometry

    def run(f: RenderedField, options: dict, order: int) -> Outcome:
        cat, ref, t = f.catalog, f.reference, f.truth
        radius = stdpipe_radius(t)
        bands = [b for b in ref.bands if all_bands and b != "R"] + ["R"]  # R's fit is kept
        start = time.thread_time()
        try:
            for band in bands:
                mag, mag_err = ref.bands[band]
                blue, red = colour_for_band(band, list(ref.bands))
                m = photometry.match(
                    cat.ra, cat.dec, cat.mag, cat.mag_err, cat.flags, ref.ra, ref.dec, mag,
                    mag_err, cat_color=ref.bands[blue][0] - ref.bands[red][0],
                    sr=radius / 3600, obj_x=cat.x, obj_y=cat.y, spatial_order=order,
                    robust=robust, verbose=False, **STDPIPE_SETTINGS,
                )  # fmt: skip
            if m is None:
                raise RuntimeError("no fit (too few matches)")
            d = np.hypot(
                (cat.ra - t["target_ra"]) * np.cos(np.radians(cat.dec)), cat.dec - t["target_dec"]
            )
            i = int(np.argmin(d))
            xy = (cat.x[i : i + 1], cat.y[i : i + 1])
            zero, zero_err = m["zero_fn"](*xy), m["zero_fn"](*xy, get_err=True)
            zp = float(zero[0]) + PIVOT * float(m["color_term"])
            snr = MAG_PER_FLUX / cat.mag_err
            limit_mag = photometry.get_detection_limit_sn(cat.mag + zp, snr, sn=5, verbose=False)
        except Exception as exc:  # whatever breaks STDPipe is counted, not hidden
            return Outcome(failed=f"{type(exc).__name__}: {exc}")
        elapsed = time.thread_time() - start
        found = d[i] * 3600 <= max(t["fwhm_arcsec"], radius)
        return Outcome(
            zp=zp,
            mag=float(cat.mag[i] + zp) if found else limit_mag,
            mag_err=float(np.hypot(cat.mag_err[i], zero_err[0])) if found else -1.0,
            limit=not found,
            limiting_mag=limit_mag,
            band="R",
            seconds=elapsed,
            saturated=found and bool(int(cat.flags[i]) & SATURATED_FLAG),
        )

    return run


def settings_line() -> str:
    """How the peer is configured, printed above the tables."""
    fixed = ", ".join(
        f"{k}={v:#04x}" if k == "accept_flags" else f"{k}={v}" for k, v in STDPIPE_SETTINGS.items()
    )
    return (
        f"STDPipe 0.4.1 photometry.match({fixed}, robust=True for stdpipe, False for stdp-wls "
        "and wls-4band, spatial_order=2 on vignetted frames, sr=FWHM/2 + the frame's WCS "
        "error); given R with V-R; target: nearest source within max(FWHM, sr), saturated when "
        "FLAGS & 4; absent: limit at S/N 5"
    )


def render_cases(per_case: int, seed: int) -> list[tuple[str, RenderedField]]:
    """``per_case`` frames of every case, each from its own seed drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    frames = []
    for name, (render_options, _, _) in CASES.items():
        for _ in range(per_case):
            frame_seed = int(rng.integers(1 << 31))
            f = render_field(frame_seed, **render_options)
            f.truth["render_seed"] = frame_seed
            f.truth["completeness_50_bench"] = completeness_from_stars(f)
            frames.append((name, f))
    return frames


#: The completeness is fitted to the stars this close to a first guess of the transition: bright
#: stars hidden in blends are not what the limit of a faint transient is about.
WINDOW_MAG = 1.0


def completeness_from_stars(f: RenderedField) -> float | None:
    """The 50 % completeness of a rendered frame measured from its stars, independently of
    calib: a star is detected when a catalogue source lies within max(1", FWHM/2) of it (the
    catalogue moved back by the known WCS error); ``plateau / (1 + exp((m - m0) / width))`` is
    fitted by maximum likelihood (scipy) to the detected/missed outcome of every star within
    `WINDOW_MAG` of the step that misclassifies fewest, and the magnitude where the model is
    50 % is returned. The window and the free plateau keep bright stars hidden in blends out of
    the transition (fitted over all stars with a plateau of 1, two missed 16.5 mag stars pulled
    a frame's 50 % point 0.3 mag brighter than its detections showed, and chance matches of
    19 mag stars put a percentile guess 1.3 mag too faint). ``None`` when fewer than 30 stars,
    a plateau at or below 50 %, or fewer than 5 detected brighter or 5 missed fainter than the
    50 % point."""
    t, cat = f.truth, f.catalog
    stars = t["stars"]
    if len(stars["mag"]) < 30:
        return None
    cos0 = math.cos(math.radians(t["target_dec"]))
    off_ra, off_dec = t["wcs_offset_arcsec"]

    def plane(ra, dec, dra=0.0, ddec=0.0):  # arcsec on the tangent plane at the frame centre
        x = ((np.asarray(ra) - t["target_ra"] + 180.0) % 360.0 - 180.0) * cos0 * 3600 - dra
        return np.column_stack((x, (np.asarray(dec) - t["target_dec"]) * 3600 - ddec))

    good = np.isfinite(cat.ra) & np.isfinite(cat.dec)
    tree = cKDTree(plane(cat.ra[good], cat.dec[good], off_ra, off_dec))
    dist, _ = tree.query(plane(stars["ra"], stars["dec"]), k=1)
    detected = dist <= max(1.0, 0.5 * t["fwhm_arcsec"])
    mag = stars["mag"]
    if detected.all() or not detected.any():
        return None

    def loss(p: np.ndarray) -> float:
        # log-likelihood with log q = -log(1 + e^z) + log(plateau), stably
        z = (mag - p[0]) / math.exp(p[1])
        log_plateau = -np.logaddexp(0.0, -p[2])
        log_q = log_plateau - np.logaddexp(0.0, z)
        log_miss = np.log1p(-np.exp(np.minimum(log_q, -1e-12)))
        return -float(np.sum(np.where(detected, log_q, log_miss)))

    # First guess: the step that misclassifies fewest stars (missed brighter + found fainter).
    order = np.argsort(mag)
    errors = np.cumsum(~detected[order]) + (detected.sum() - np.cumsum(detected[order]))
    guess = float(mag[order][np.argmin(errors)])
    near = np.abs(mag - guess) <= WINDOW_MAG
    mag, detected = mag[near], detected[near]
    bounds = [(guess - WINDOW_MAG, guess + WINDOW_MAG), (math.log(0.01), 0.0), (0.0, 10.0)]
    m0, log_w, logit = minimize(
        loss, np.array([guess, math.log(0.2), 3.0]), method="Nelder-Mead", bounds=bounds,
        options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000},
    ).x  # fmt: skip
    plateau = 1.0 / (1.0 + math.exp(-logit))
    if plateau <= 0.5:
        return None
    m50 = float(m0 + math.exp(log_w) * math.log(2.0 * plateau - 1.0))  # plateau * q = 0.5
    bracketed = min(
        np.count_nonzero(detected & (mag < m50)), np.count_nonzero(~detected & (mag > m50))
    )
    return m50 if bracketed >= 5 else None


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _num(x, fn, scale=1e3, fmt="8.1f") -> str:
    return f"{fn(x) * scale:{fmt}}" if len(x) else f"{'-':>{fmt.split('.')[0]}}"


def summarize_zeropoint(rows: list[tuple[str, RenderedField, Outcome]]) -> str:
    """Zero point (mmag, at the pivot colour), band and time over the frames of ``rows``."""
    zp = np.array(
        [o.zp - f.truth["zeropoint"] for _, f, o in rows if not o.failed and o.zp is not None]
    )
    wrong = sum(o.band != f.truth["band"] for _, f, o in rows if not o.failed)
    failed = sum(bool(o.failed) for _, _, o in rows)
    times = [o.seconds for _, _, o in rows if not o.failed]
    return (
        f"{len(rows):>6} {_num(zp, np.mean)} {_num(zp, _rms)} "
        f"{_num(zp, lambda x: np.max(np.abs(x)))} {wrong:>5} {failed:>6} "
        f"{np.median(times) * 1e3 if times else math.nan:>8.1f}"
    )


ZP_HEADER = (
    f"{'code':>10} {'frames':>6} {'zp bias':>8} {'zp RMS':>8} {'zp worst':>8} {'wrong':>5} "
    f"{'failed':>6} {'ms/frame':>8}"
)


def summarize_target(rows: list[tuple[str, RenderedField, Outcome]]) -> str:
    """The target over the frames of ``rows``: magnitudes and pulls ((mag - truth) / err) of
    the unflagged measurements, the ones the code flags saturated counted apart, limits."""
    dmag, pulls, sat_pulls, limit_err, missed, limits = [], [], [], [], 0, 0
    for name, f, o in rows:
        t = f.truth
        c50 = t["completeness_50_bench"]
        if o.failed:
            continue
        if name == "absent" and o.limit and c50 is not None:
            limit_err.append(o.limiting_mag - c50)
        if t["target_mag"] is None:
            continue
        if o.limit:
            limits += 1
            missed += c50 is not None and t["target_mag"] < c50 - 0.3
            continue
        pull = (o.mag - t["target_mag"]) / max(o.mag_err, 1e-3)
        if o.saturated:
            sat_pulls.append(pull)
        else:
            dmag.append(o.mag - t["target_mag"])
            pulls.append(pull)
    pulls, sat_pulls = np.abs(pulls), np.abs(sat_pulls)
    return (
        f"{len(pulls):>5} {_num(dmag, _rms)} {_num(dmag, lambda x: np.max(np.abs(x)))} "
        f"{_num(pulls, _rms, 1, '6.2f')} {np.sum(pulls > 3):>5} {np.sum(pulls > 5):>5} "
        f"{len(sat_pulls):>5} {np.sum(sat_pulls > 3):>5} {limits:>6} {missed:>6} "
        f"{_num(limit_err, np.mean)} {_num(limit_err, lambda x: np.max(np.abs(x)))}"
    )


TARGET_HEADER = (
    f"{'code':>10} {'meas':>5} {'mag RMS':>8} {'mag wst':>8} {'pull':>6} {'>3sig':>5} "
    f"{'>5sig':>5} {'sat':>5} {'s>3sg':>5} {'limits':>6} {'missed':>6} {'lim bias':>8} "
    f"{'lim wst':>8}"
)

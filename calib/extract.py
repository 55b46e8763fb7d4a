"""Measure a frame with sep (SExtractor's algorithms as a library): background and noise maps,
detection, seeing (FWHM), saturation, aperture photometry → the `SourceCatalog` the calibration
takes, so an image is calibrated by exactly the code that calibrates an uploaded catalogue.

Every star is measured in one circular aperture whose radius is a fixed multiple of the
measured FWHM (`APERTURE_PER_FWHM`). The zero point fitted on those magnitudes therefore
includes the aperture correction, and forced photometry of the alert in the same aperture
(`calib.forced`) is calibrated by it without any model of the PSF wings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sep

from .catalog import SourceCatalog
from .image import Image, ImageError
from .stats import MAG_PER_FLUX

#: Aperture radius in units of the FWHM. For a Gaussian PSF the S/N of a faint source in a
#: background-limited aperture peaks at 0.67 FWHM; 0.8 loses 2.5 % of that (0.03 mag of depth)
#: and is four times less sensitive to a small centring error.
APERTURE_PER_FWHM = 0.8
MIN_APERTURE_PX = 1.5
#: Detection: pixels of the filtered image above 3 x the (unfiltered) background noise, as
#: SExtractor's DETECT_THRESH 3, at least 5 of them. The calibration needs only stars well
#: above the noise, and the alert is measured whether detected or not; a lower threshold
#: costs time in deblending the many faint detections (see bench/bench_image.py).
DETECT_SIGMA = 3.0
DEBLEND_NTHRESH = 16
#: Fraction of the saturation level from which a pixel counts as saturated.
SATURATION_MARGIN = 0.999
#: Pixels within this fraction of the image's maximum are at its top (a clipped core).
TOP_FRACTION = 1e-4
# SExtractor FLAGS bits, so that `calib.clean` treats them as it treats a catalogue's.
FLAG_BLENDED, FLAG_SATURATED, FLAG_TRUNCATED, FLAG_APERTURE_INCOMPLETE = 2, 4, 8, 16

#: sep's pixel stack (SExtractor's MEMORY_PIXSTACK): its default, raised to the larger value
#: only for the frame that overflows it (a big galaxy or a bright saturated star), since sep
#: allocates the whole stack (about 60 bytes an entry) on every call.
PIXSTACK, PIXSTACK_LARGE = 300_000, 3_000_000
sep.set_sub_object_limit(4096)


@dataclass
class Extraction:
    """A measured frame.

    ``residual`` is the image minus its background (NaN-free; blank pixels are 0 and set in
    ``blank``), ``noise`` the per-pixel background noise map (ADU), ``saturated`` the pixels at
    the saturation level (None when the frame shows no saturation), ``x, y`` the sources'
    0-based pixel positions, rows aligned with ``catalog``.
    """

    catalog: SourceCatalog
    x: np.ndarray
    y: np.ndarray
    fwhm_px: float
    aperture_px: float
    residual: np.ndarray
    noise: np.ndarray
    blank: np.ndarray | None
    saturated: np.ndarray | None
    saturation_adu: float | None
    gain: float | None
    background_adu: float
    background_rms_adu: float
    brightest_pixel: tuple[float, float] | None = None


def saturation_level(data: np.ndarray, header_level: float | None) -> float | None:
    """The header's SATURATE, else the image's maximum if two touching pixels share it (a
    clipped core, however small: a star 0.3 mag past saturation clips only 2 x 2 pixels and
    lost 0.07 mag unflagged when nine were required), else None."""
    if header_level is not None:
        return header_level
    top = float(np.nanmax(data))
    if not top > 0:
        return None
    at_top = data >= top * (1.0 - TOP_FRACTION)
    touching = (
        np.any(at_top[1:, :] & at_top[:-1, :])
        or np.any(at_top[:, 1:] & at_top[:, :-1])
        or np.any(at_top[1:, 1:] & at_top[:-1, :-1])
        or np.any(at_top[1:, :-1] & at_top[:-1, 1:])
    )
    return top if touching else None


def _brightest_pixel(data: np.ndarray) -> tuple[float, float]:
    """(x, y) of the image's highest pixel: without a saturation level it may be one clipped
    pixel (a clipped core that small loses little, and `calib.imaging` bounds how much)."""
    y, x = np.unravel_index(int(np.nanargmax(data)), data.shape)
    return float(x), float(y)


def extract(image: Image) -> Extraction:
    """Background, detection, FWHM, flags and aperture photometry of every source.

    ``image.data`` becomes the background-subtracted ``residual`` (in place: a 4k x 4k frame
    is not copied). Raises ImageError when nothing star-like is found.
    """
    data = image.data
    blank = np.isnan(data)
    if blank.any():
        data[blank] = 0.0
    else:
        blank = None
    level = saturation_level(data, image.saturation)
    brightest = _brightest_pixel(data) if level is None else None
    saturated = None
    if level is not None:
        saturated = data >= level * SATURATION_MARGIN
        if not saturated.any():
            saturated = None
    try:
        bkg = sep.Background(data, mask=blank, bw=64, bh=64, fw=3, fh=3)
        noise = bkg.rms()
        bkg.subfrom(data)
        if blank is not None:
            data[blank] = 0.0
        objects = _detect(data, noise, blank)
    except Exception as exc:  # sep reports overflows and odd data as plain exceptions
        raise ImageError("source extraction failed on this image", detail=str(exc)) from exc
    if len(objects) < 3:
        raise ImageError(
            f"only {len(objects)} sources were detected at {DETECT_SIGMA:g} sigma; "
            "is the frame empty, or out of focus?"
        )
    x, y = objects["x"].astype(np.float64), objects["y"].astype(np.float64)
    flags = np.zeros(len(objects), dtype=np.int64)
    flags[(objects["flag"] & sep.OBJ_MERGED) != 0] |= FLAG_BLENDED
    flags[(objects["flag"] & sep.OBJ_TRUNC) != 0] |= FLAG_TRUNCATED
    if saturated is not None:
        flags[saturated[objects["ypeak"], objects["xpeak"]]] |= FLAG_SATURATED
    fwhm = measure_fwhm(data, objects, flags, noise)
    radius = max(APERTURE_PER_FWHM * fwhm, MIN_APERTURE_PX)
    flux, flux_err, aper_flags = sep.sum_circle(
        data, x, y, radius, err=noise, mask=blank, gain=image.gain, subpix=5
    )
    incomplete = sep.APER_TRUNC | sep.APER_HASMASKED | sep.APER_ALLMASKED
    flags[(aper_flags & incomplete) != 0] |= FLAG_APERTURE_INCOMPLETE
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(flux > 0, -2.5 * np.log10(flux), np.nan)
        mag_err = np.where(flux > 0, MAG_PER_FLUX * flux_err / flux, np.nan)
    ra, dec = image.wcs.all_pix2world(x, y, 0)
    catalog = SourceCatalog(
        ra=np.asarray(ra, dtype=np.float64) % 360.0,
        dec=np.asarray(dec, dtype=np.float64),
        mag=mag,
        mag_err=mag_err,
        flags=flags,
        flux_max=objects["peak"].astype(np.float64),
        # The frame's seeing for every source: the calibration's radii scale with it (the
        # 2.5" assumed without it searched 0.5 pixel around the alert on 5" pixels).
        fwhm_world=np.full(len(mag), fwhm * image.pixel_scale_arcsec / 3600.0),
        columns={"mag": f"aperture r={radius:.2f} px", "detection": "sep"},
        format="FITS image",
    )
    return Extraction(
        catalog=catalog,
        x=x,
        y=y,
        fwhm_px=fwhm,
        aperture_px=radius,
        residual=data,
        noise=noise,
        blank=blank,
        saturated=saturated,
        saturation_adu=level,
        gain=image.gain,
        background_adu=float(bkg.globalback),
        background_rms_adu=float(bkg.globalrms),
        brightest_pixel=brightest,
    )


def _detect(data: np.ndarray, noise: np.ndarray, blank: np.ndarray | None) -> np.ndarray:
    """sep.extract with the default pixel stack, once more with the large one if it overflows."""
    sep.set_extract_pixstack(PIXSTACK)
    try:
        return _extract_sources(data, noise, blank)
    except Exception as exc:
        if "pixel buffer full" not in str(exc):
            raise
    sep.set_extract_pixstack(PIXSTACK_LARGE)
    try:
        return _extract_sources(data, noise, blank)
    finally:
        sep.set_extract_pixstack(PIXSTACK)


def _extract_sources(data, noise, blank) -> np.ndarray:
    return sep.extract(
        data,
        DETECT_SIGMA,
        err=noise,
        mask=blank,
        minarea=5,
        filter_type="conv",
        deblend_nthresh=DEBLEND_NTHRESH,
    )


def measure_fwhm(
    residual: np.ndarray, objects: np.ndarray, flags: np.ndarray, noise: np.ndarray
) -> float:
    """Median FWHM (px) of bright, clean, unsaturated point-like sources: twice the half-light
    radius, which equals the FWHM for a Gaussian PSF and stays robust for Moffat wings."""
    snr = objects["peak"] / noise[objects["ypeak"], objects["xpeak"]]
    good = (flags == 0) & (snr > 20) & (objects["npix"] >= 5)
    if np.count_nonzero(good) < 5:
        good = (flags & FLAG_SATURATED == 0) & (snr > 5)
    if np.count_nonzero(good) < 3:
        raise ImageError("no unsaturated stars bright enough to measure the seeing (FWHM)")
    idx = np.flatnonzero(good)
    idx = idx[np.argsort(objects["flux"][idx])[::-1][:300]]
    # a, b are the isophotal second moments (sigma for a Gaussian): a first guess for rmax.
    guess = 2.3548 * float(np.median(np.sqrt(objects["a"][idx] * objects["b"][idx])))
    rmax = np.full(len(idx), max(4.0 * guess, 5.0))
    r50, rflags = sep.flux_radius(
        residual, objects["x"][idx], objects["y"][idx], rmax, 0.5, subpix=5
    )
    ok = (rflags == 0) & np.isfinite(r50) & (r50 > 0.3)
    if np.count_nonzero(ok) < 3:
        return guess
    return float(2.0 * np.median(r50[ok]))

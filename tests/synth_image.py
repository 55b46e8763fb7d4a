"""Rendered frames of the synth-deep field (`tests/data/synth-deep/ref.csv`) with known truth.

The reference stars are observed in R with zero point 25.3 and colour term 0.07·(V−R−0.5), the
same truth as the synth-deep catalogue, so the SYNTH survey of the test reference store
calibrates them. A target (the alert) of known R magnitude and V−R = 0.5 can be added.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np

from calib.extract import APERTURE_PER_FWHM
from simfields.render import Frame, render_frame, tan_wcs
from tests.helpers import DATA

ZP, COLOUR_TERM, PIVOT = 25.3, 0.07, 0.5
CENTRE = (150.1, 2.2)
PIXEL_SCALE = 0.6
FWHM_PX, SKY_ADU, READ_NOISE_ADU, GAIN = 3.5, 800.0, 5.0, 1.0


def reference_columns() -> dict[str, np.ndarray]:
    with (DATA / "synth-deep" / "ref.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def instrumental(r_mag, v_minus_r):
    return np.asarray(r_mag) + COLOUR_TERM * (np.asarray(v_minus_r) - PIVOT) - ZP


@dataclass
class Truth:
    target_ra: float
    target_dec: float
    target_mag: float | None
    depth: float  # theoretical 5-sigma depth (R) in the pipeline's aperture


def theoretical_depth(fwhm_px: float = FWHM_PX) -> float:
    """5-sigma R depth of a point source in an aperture of APERTURE_PER_FWHM x FWHM, from the
    rendered noise (sky Poisson + read noise) and a Gaussian PSF's enclosed flux."""
    r = APERTURE_PER_FWHM * fwhm_px
    sigma = fwhm_px / (2 * math.sqrt(2 * math.log(2)))
    enclosed = 1 - math.exp(-(r * r) / (2 * sigma * sigma))
    background_var = math.pi * r * r * (SKY_ADU / GAIN + READ_NOISE_ADU**2)
    flux_in_aperture = 0.5 * (25 / GAIN + math.sqrt((25 / GAIN) ** 2 + 100 * background_var))
    return ZP - 2.5 * math.log10(flux_in_aperture / enclosed)


def synth_frame(
    target_offset_arcsec: tuple[float, float] = (4.3, -2.5),
    target_mag: float | None = None,
    *,
    shape: tuple[int, int] = (1024, 1024),
    header_error_arcsec: tuple[float, float] = (0.0, 0.0),
    write_saturate: bool = True,
    seed: int = 1,
) -> tuple[Frame, Truth]:
    """A frame of the field with the alert at an offset (arcsec E, N) from the field centre.

    ``header_error_arcsec`` moves the header's WCS away from the one the stars were rendered
    with (what a pointing model leaves), which the worker must find and correct.
    """
    cols = reference_columns()
    cos_dec = math.cos(math.radians(CENTRE[1]))
    t_ra = CENTRE[0] + target_offset_arcsec[0] / 3600 / cos_dec
    t_dec = CENTRE[1] + target_offset_arcsec[1] / 3600
    ra, dec = cols["ra"], cols["dec"]
    mag = instrumental(cols["R"], cols["V"] - cols["R"])
    if target_mag is not None:
        ra, dec = np.append(ra, t_ra), np.append(dec, t_dec)
        mag = np.append(mag, instrumental(target_mag, PIVOT))
    wcs = tan_wcs(*CENTRE, shape, PIXEL_SCALE)
    frame = render_frame(
        wcs,
        shape,
        ra,
        dec,
        mag,
        fwhm_px=FWHM_PX,
        sky_adu=SKY_ADU,
        read_noise_adu=READ_NOISE_ADU,
        gain=GAIN,
        write_saturate=write_saturate,
        seed=seed,
    )
    if header_error_arcsec != (0.0, 0.0):
        wrong = tan_wcs(
            CENTRE[0] + header_error_arcsec[0] / 3600 / cos_dec,
            CENTRE[1] + header_error_arcsec[1] / 3600,
            shape,
            PIXEL_SCALE,
        )
        frame.header.update(wrong.to_header())
    return frame, Truth(t_ra, t_dec, target_mag, theoretical_depth())

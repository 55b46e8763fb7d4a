"""Render FITS frames with known truth: stars of known magnitude through a TAN WCS, sky, noise.

For tests and benchmarks of the image path. Stars are Gaussian PSFs integrated over each pixel
(so the flux in the frame is exactly the flux asked for), on a flat sky, with Poisson noise
(given the gain) and Gaussian read noise, clipped at a saturation level like a real detector.
Magnitudes are instrumental: a star of magnitude ``m`` puts ``10**(-0.4 m)`` ADU in the frame.
"""

from __future__ import annotations

import gzip
import io
import math
from dataclasses import dataclass

import numpy as np

_ERF = np.frompyfunc(math.erf, 1, 1)


def tan_wcs(ra: float, dec: float, shape: tuple[int, int], pixel_scale_arcsec: float):
    """A TAN WCS centred on (ra, dec), north up, east left, for an image of ``shape`` (ny, nx)."""
    from astropy.wcs import WCS

    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    scale = pixel_scale_arcsec / 3600.0
    wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    return wcs


@dataclass
class Frame:
    """A rendered frame: float32 pixels (ADU), its header (WCS, GAIN, optional SATURATE)."""

    data: np.ndarray
    header: object

    def to_fits(self, compression: str | None = None) -> bytes:
        """FITS bytes: plain, ``"gzip"`` (a .fits.gz) or ``"rice"`` (a tile-compressed .fz)."""
        from astropy.io import fits

        buf = io.BytesIO()
        if compression == "rice":
            hdul = fits.HDUList(
                [
                    fits.PrimaryHDU(),
                    fits.CompImageHDU(
                        self.data, self.header, compression_type="RICE_1", quantize_level=16.0
                    ),
                ]
            )
        else:
            hdul = fits.HDUList([fits.PrimaryHDU(self.data, self.header)])
        hdul.writeto(buf)
        raw = buf.getvalue()
        return gzip.compress(raw, compresslevel=1) if compression == "gzip" else raw


def _pixel_integrals(centre: float, lo: int, hi: int, sigma: float) -> np.ndarray:
    """Fraction of a 1-D Gaussian's flux falling in pixels lo..hi-1 (pixel i spans i±0.5)."""
    edges = (np.arange(lo, hi + 1) - 0.5 - centre) / (sigma * math.sqrt(2.0))
    return np.diff(_ERF(edges).astype(np.float64)) / 2.0


def render_frame(
    wcs,
    shape: tuple[int, int],
    ra: np.ndarray,
    dec: np.ndarray,
    mag: np.ndarray,
    *,
    fwhm_px: float = 3.0,
    sky_adu: float = 1000.0,
    read_noise_adu: float = 5.0,
    gain: float = 1.0,
    saturation_adu: float = 60000.0,
    write_saturate: bool = True,
    seed: int = 0,
) -> Frame:
    """Render stars of instrumental magnitude ``mag`` at (ra, dec) into a frame of ``shape``.

    The sky noise per pixel is ``sqrt(sky_adu / gain + read_noise_adu**2)`` ADU. Pixels above
    ``saturation_adu`` are clipped to it; ``write_saturate`` puts it in the header as SATURATE
    (otherwise only the data's plateau tells).
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    image = np.zeros(shape, dtype=np.float64)
    x, y = wcs.all_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
    flux = 10.0 ** (-0.4 * np.asarray(mag, dtype=np.float64))
    sigma = fwhm_px / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    half = math.ceil(6 * sigma) + 1
    for xi, yi, f in zip(x, y, flux, strict=True):
        if not (-half < xi < nx + half and -half < yi < ny + half):
            continue
        x0, x1 = max(round(xi) - half, 0), min(round(xi) + half + 1, nx)
        y0, y1 = max(round(yi) - half, 0), min(round(yi) + half + 1, ny)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = _pixel_integrals(xi, x0, x1, sigma)
        gy = _pixel_integrals(yi, y0, y1, sigma)
        image[y0:y1, x0:x1] += f * np.outer(gy, gx)
    image += sky_adu
    image = rng.poisson(np.clip(image * gain, 0, None)).astype(np.float64) / gain
    image += rng.normal(0.0, read_noise_adu, shape)
    data = np.minimum(image, saturation_adu).astype(np.float32)
    header = wcs.to_header()
    header["GAIN"] = (gain, "e-/ADU")
    if write_saturate:
        header["SATURATE"] = (saturation_adu, "ADU")
    return Frame(data=data, header=header)

"""A ±30″ cutout of the frame around the alert, with the photometry aperture drawn, as a PNG."""

from __future__ import annotations

import os
from typing import BinaryIO

import matplotlib

matplotlib.use("Agg")

import numpy as np
from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from .extract import Extraction
from .forced import ForcedPhotometry

HALF_SIZE_ARCSEC = 30.0


def render_cutout(
    extraction: Extraction,
    forced: ForcedPhotometry,
    pixel_scale_arcsec: float,
    path: str | os.PathLike | BinaryIO,
    title: str,
) -> None:
    """Write the background-subtracted pixels within ±30″ of the alert, the aperture circled.

    Pixels are shown as they lie in the frame (x right, y up), zscale with an asinh stretch.
    """
    half = max(round(HALF_SIZE_ARCSEC / pixel_scale_arcsec), 4)
    ny, nx = extraction.residual.shape
    cx, cy = round(forced.x), round(forced.y)
    x0, x1 = max(cx - half, 0), min(cx + half + 1, nx)
    y0, y1 = max(cy - half, 0), min(cy + half + 1, ny)
    stamp = extraction.residual[y0:y1, x0:x1].astype(np.float64)
    if extraction.blank is not None:
        stamp[extraction.blank[y0:y1, x0:x1]] = np.nan
    fig = Figure(figsize=(4.2, 4.4), dpi=90)
    fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=0.11)
    ax = fig.subplots()
    finite = stamp[np.isfinite(stamp)]
    norm = None
    if finite.size > 1 and np.ptp(finite) > 0:
        norm = ImageNormalize(finite, interval=ZScaleInterval(), stretch=AsinhStretch(0.3))
    ax.imshow(
        stamp,
        origin="lower",
        cmap="gray_r",
        norm=norm,
        extent=(x0 - 0.5, x1 - 0.5, y0 - 0.5, y1 - 0.5),
        interpolation="nearest",
    )
    colour = "C2" if forced.detected else "C3"
    ax.add_patch(Circle((forced.x, forced.y), forced.radius_px, fill=False, color=colour, lw=1.2))
    ax.set_xlabel("x (px)", fontsize=8)
    ax.set_ylabel("y (px)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=8)
    fig.savefig(path, format="png", pil_kwargs={"compress_level": 1})

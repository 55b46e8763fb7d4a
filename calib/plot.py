"""Calibration plot: catalogue magnitude against reference magnitude, with residuals."""

from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .pipeline import CalibrationResult


def render_calibration_plot(result: CalibrationResult, path: str | os.PathLike | BinaryIO) -> None:
    """Write a PNG of the chosen fit: calibrated vs reference magnitudes, and residuals.

    Uses a bare `Figure` on its own Agg canvas (no pyplot state, no process-wide backend), so it
    is safe in worker processes and threads and leaves the importer's matplotlib backend alone.
    """
    fit = result.fit
    fig = Figure(figsize=(6.4, 6.0), dpi=90)
    FigureCanvasAgg(fig)
    # Fixed margins: tight_layout would cost more than the whole calibration.
    fig.subplots_adjust(left=0.12, right=0.97, top=0.94, bottom=0.09, hspace=0.08)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    if fit is not None and len(fit.ref_mag):
        used = fit.used
        calibrated = fit.inst_mag + fit.zeropoint
        top.plot(fit.ref_mag[used], calibrated[used], ".", ms=3, color="C0", label="used")
        top.plot(fit.ref_mag[~used], calibrated[~used], "x", ms=4, color="C3", label="rejected")
        span = np.array([np.min(fit.ref_mag), np.max(fit.ref_mag)])
        top.plot(span, span, "-", color="k", lw=1, label=f"zero point {fit.zeropoint:.3f}")
        bottom.plot(fit.ref_mag[used], fit.residual[used], ".", ms=3, color="C0")
        bottom.plot(fit.ref_mag[~used], fit.residual[~used], "x", ms=4, color="C3")
        bottom.axhline(0.0, color="k", lw=1)
        limit = max(5 * (result.scatter or 0.05), 0.2)
        bottom.set_ylim(-limit, limit)
    if not result.limit:
        top.axhline(result.mag, color="C2", lw=1, ls="--", label=f"target {result.mag:.2f}")
    colour = f", colour term {result.colour_term:+.3f}" if result.colour_term is not None else ""
    top.set_title(
        f"{result.survey}/{result.filter}: zp {result.zeropoint:.3f} ± {result.zeropoint_err:.3f}"
        f"{colour}, {result.npoints} stars",
        fontsize=9,
        parse_math=False,  # survey and filter names are text, never mathtext
    )
    top.set_ylabel("catalogue mag + zero point")
    top.legend(fontsize=7, loc="upper left")
    bottom.set_xlabel(f"{result.survey} {result.filter} mag", parse_math=False)
    bottom.set_ylabel("residual (mag)")
    fig.savefig(path, format="png", pil_kwargs={"compress_level": 1})

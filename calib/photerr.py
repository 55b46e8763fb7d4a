"""Photometric errors for catalogues that quote none, from the calibrators' own scatter.

Without a MAGERR column every star would weigh the same and the target's error would shrink
to the zero point's. Instead the residuals of the matched stars, binned by magnitude, give the
scatter at each brightness; a noise model ``sigma² = a + b·F⁻¹ + c·F⁻²`` (floor, source
photon noise, sky noise, with F the relative flux) is fitted to it with non-negative terms.

Calibrators are bright, and a catalogue reaches much fainter: fitted on them alone the model
can be a bare floor, and a target 1.5 mag fainter than every calibrator got 0.017 mag while
0.06 off. The catalogue's faintest detections anchor the faint end: a source extractor keeps
what it finds at S/N of about 5 (`FAINT_END_ERR`), so one more bin says so there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import MAG_PER_FLUX, median_and_robust_std

STARS_PER_BIN = 12
MIN_STARS = 5  # fewer than two bins' worth make one bin, anchored at the faint end
MIN_ERR = 0.002
FAINT_END_ERR = MAG_PER_FLUX / 5.0  # the error of an S/N = 5 detection


@dataclass(frozen=True)
class ErrorModel:
    """``sigma(m) = sqrt(a + b 10^(0.4 (m - m0)) + c 10^(0.8 (m - m0)))`` in magnitudes."""

    a: float
    b: float
    c: float
    m0: float

    def __call__(self, mag: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            f = 10 ** (0.4 * (np.asarray(mag, dtype=np.float64) - self.m0))
            return np.maximum(np.sqrt(self.a + self.b * f + self.c * f * f), MIN_ERR)

    def describe(self) -> str:
        m = self.m0 + np.array([-3.0, -1.0, 0.0])
        values = ", ".join(f"{e:.3f} at {x:.1f}" for x, e in zip(m, self(m), strict=True))
        return f"sigma(inst mag) = {values}"


def fit_error_model(
    inst_mag: np.ndarray,
    residual: np.ndarray,
    ref_err: np.ndarray,
    faint_end: float | None = None,
) -> ErrorModel | None:
    """Fit the noise model to the residuals of the calibrators (reference errors removed),
    and to `FAINT_END_ERR` at ``faint_end`` (the catalogue's faintest detections) when that
    lies half a magnitude or more beyond the faintest bin.

    ``None`` with fewer than two points to fit: two bins of `STARS_PER_BIN` stars, or one of
    at least `MIN_STARS` and the faint end.
    """
    order = np.argsort(inst_mag)
    nbins = max(len(order) // STARS_PER_BIN, int(len(order) >= MIN_STARS))
    anchored = bool(len(order)) and faint_end is not None and faint_end >= inst_mag[order[-1]] + 0.5
    if nbins + anchored < 2:
        return None
    mags, variances = [], []
    for chunk in np.array_split(order, nbins):
        spread = median_and_robust_std(residual[chunk])[1]
        ref = ref_err[chunk]
        ref2 = float(np.median(ref[np.isfinite(ref)] ** 2)) if np.isfinite(ref).any() else 0.0
        mags.append(float(np.median(inst_mag[chunk])))
        variances.append(max(spread**2 - ref2, MIN_ERR**2))
    if anchored:
        mags.append(float(faint_end))
        variances.append(FAINT_END_ERR**2)
    mags, variances = np.array(mags), np.array(variances)
    m0 = float(mags.max())
    f = 10 ** (0.4 * (mags - m0))
    design = np.column_stack((np.ones_like(f), f, f * f))
    weights = 1.0 / variances  # relative errors of binned variances are alike
    active = [0, 1, 2]
    coef = np.zeros(3)
    while active:
        a = design[:, active] * weights[:, None]
        sol, *_ = np.linalg.lstsq(a, variances * weights, rcond=None)
        if np.all(sol >= 0):
            coef[:] = 0
            coef[active] = sol
            break
        active.pop(int(np.argmin(sol)))
    return ErrorModel(float(coef[0]), float(coef[1]), float(coef[2]), m0)

"""Where a frame stops detecting stars: the 50 % completeness magnitude.

A limit quoted from the error trend alone is an extrapolation; the magnitude where half of the
stars known to be there are detected is a measurement. Used by the pipeline on the reference
stars of the field, and by the simulator on its own truth.
"""

from __future__ import annotations

import numpy as np

_WIDTHS = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.45])
MIN_STARS = 30  # with fewer stars around the limit the 50 % point is not measured
PLATEAU_MAG = 1.0  # stars this much brighter than the 50 % point measure the plateau
MIN_PLATEAU_STARS = 20


def completeness_50(
    mag: np.ndarray, detected: np.ndarray, chance: float = 0.0, step: float = 0.01
) -> float | None:
    """50 % completeness magnitude from a logistic fit of detected vs magnitude.

    The model is ``chance + (plateau - chance) / (1 + exp((m - m0) / width))``: ``chance`` is
    the probability that an undetected star is matched anyway by an unrelated source (source
    density times the match area), so crowded frames do not look deeper than they are;
    ``plateau`` is the detected fraction of the stars more than `PLATEAU_MAG` brighter than a
    first fit's 50 % point (blends and mismatches keep it below 1: with 71-83 % of the 14.5-15.5
    mag stars found, a plateau of 1 pulled the 50 % point of one frame 0.3 mag brighter than
    its detections, 100 % at 17.75 and 29 % at 18.0, showed). Maximum binomial likelihood on
    0.1 mag bins, over a 0.25 mag grid in m0 refined to ``step`` mag; the magnitude returned is
    where the model falls to 50 %.

    ``None`` when the 50 % point is not bracketed: fewer than `MIN_STARS` stars, not at least
    5 detected stars brighter and 5 missed stars fainter than the estimate, or a plateau at or
    below 50 %.
    """
    mag = np.asarray(mag, dtype=np.float64)
    detected = np.asarray(detected, dtype=bool)
    good = np.isfinite(mag)
    mag, detected = mag[good], detected[good]
    if len(mag) < MIN_STARS or detected.all() or not detected.any():
        return None
    chance = float(np.clip(chance, 0.0, 0.9))
    # Binned counts (0.1 mag) make the likelihood cheap; the grid is searched coarse to fine.
    edges = np.arange(mag.min(), mag.max() + 0.1, 0.1)
    idx = np.clip(np.digitize(mag, edges) - 1, 0, len(edges) - 1)
    n_all = np.bincount(idx, minlength=len(edges)).astype(float)
    n_det = np.bincount(idx, weights=detected, minlength=len(edges))
    used = n_all > 0
    centres, n_all, n_det = (edges + 0.05)[used], n_all[used], n_det[used]
    lo, hi = np.percentile(mag, [1, 99.5])

    def fit(plateau: float) -> tuple[float, float]:
        def best_on(grid: np.ndarray) -> tuple[float, float]:
            z = (centres[None, None, :] - grid[:, None, None]) / _WIDTHS[None, :, None]
            p = chance + (plateau - chance) * 0.5 * (1.0 - np.tanh(z / 2.0))
            p = np.minimum(np.maximum(p, 1e-9), 1 - 1e-9)
            loglike = (n_det * np.log(p) + (n_all - n_det) * np.log1p(-p)).sum(axis=2)
            i, j = np.unravel_index(np.argmax(loglike), loglike.shape)
            return float(grid[i]), float(_WIDTHS[j])

        coarse = best_on(np.arange(lo, hi + 0.25, 0.25))[0]
        return best_on(np.arange(coarse - 0.25, coarse + 0.25 + step, step))

    m50, width = fit(1.0)
    bright = mag < m50 - PLATEAU_MAG
    if np.count_nonzero(bright) >= MIN_PLATEAU_STARS:
        plateau = float(np.count_nonzero(detected & bright) / np.count_nonzero(bright))
        if plateau < 1.0:
            if plateau <= max(0.5, chance):
                return None
            m0, width = fit(plateau)
            # where chance + (plateau - chance) * logistic = 0.5
            q = (0.5 - chance) / (plateau - chance)
            m50 = m0 + width * float(np.log(1.0 / q - 1.0)) if q < 1.0 else m0
    brighter_found = np.count_nonzero(detected & (mag < m50))
    if brighter_found < 5 or np.count_nonzero(~detected & (mag > m50)) < 5:
        return None
    return m50

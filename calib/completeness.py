"""Where a frame stops detecting stars: the 50 % completeness magnitude.

A limit quoted from the error trend alone is an extrapolation; the magnitude where half of the
stars known to be there are detected is a measurement. Used by the pipeline on the reference
stars of the field, and by the simulator on its own truth.
"""

from __future__ import annotations

import numpy as np

_WIDTHS = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.45])
MIN_STARS = 30  # with fewer stars around the limit the 50 % point is not measured


def completeness_50(
    mag: np.ndarray, detected: np.ndarray, chance: float = 0.0, step: float = 0.01
) -> float | None:
    """50 % completeness magnitude from a logistic fit of detected vs magnitude.

    The model is ``chance + (1 - chance) / (1 + exp((m - m50) / width))``: ``chance`` is the
    probability that an undetected star is matched anyway by an unrelated source (source
    density times the match area), so crowded frames do not look deeper than they are.
    Maximum binomial likelihood on 0.1 mag bins, over a 0.25 mag grid in m50 refined to
    ``step`` mag.

    ``None`` when the 50 % point is not bracketed: fewer than `MIN_STARS` stars, or not at least
    5 detected stars brighter and 5 missed stars fainter than the estimate.
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

    def best_on(grid: np.ndarray) -> float:
        z = (centres[None, None, :] - grid[:, None, None]) / _WIDTHS[None, :, None]
        p = chance + (1.0 - chance) * 0.5 * (1.0 - np.tanh(z / 2.0))
        p = np.minimum(np.maximum(p, 1e-9), 1 - 1e-9)
        loglike = (n_det * np.log(p) + (n_all - n_det) * np.log1p(-p)).sum(axis=2)
        return float(grid[np.unravel_index(np.argmax(loglike), loglike.shape)[0]])

    lo, hi = np.percentile(mag, [1, 99.5])
    coarse = best_on(np.arange(lo, hi + 0.25, 0.25))
    m50 = best_on(np.arange(coarse - 0.25, coarse + 0.25 + step, step))
    brighter_found = np.count_nonzero(detected & (mag < m50))
    if brighter_found < 5 or np.count_nonzero(~detected & (mag > m50)) < 5:
        return None
    return m50

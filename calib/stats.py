"""Exact medians for the hot loops of the fit and of the automatic match radius.

``np.median`` goes through generic reduction machinery (NaN checks, a mean of the middle pair)
that costs more than the selection itself on the small arrays of a frame. These helpers return
exactly what ``np.median`` returns for finite input, which is all they are given; the middle
value is selected in one in-place ``partition`` (see `_select_median`). On fresh data the
selection itself costs about 11 ns per value, so the fit bounds how many values it hands over
(`calib.zeropoint.STATS_STARS`).
"""

from __future__ import annotations

import math

import numpy as np

MAD_TO_SIGMA = 1.4826
#: Magnitudes per unit of relative flux, 2.5 / ln 10 = 1.0857: a relative flux error (or
#: share of light) times this is the magnitude error (or shift) it makes, to first order.
MAG_PER_FLUX = 2.5 / math.log(10)


def median(x: np.ndarray) -> float:
    """Median of a non-empty array of finite values (same value as ``np.median``)."""
    return _select_median(np.array(x, copy=True))


def _select_median(x: np.ndarray) -> float:
    """`median` of an array the caller no longer needs: it is partitioned in place. One
    ``kth`` (the lower middle value of an even count is the largest below it) costs about
    half of two on the few hundred values of a fit."""
    n = len(x)
    if n == 1:
        return float(x[0])
    half = n // 2
    x.partition(half)
    if n % 2:
        return float(x[half])
    return float((x[:half].max() + x[half]) / 2.0)


def median_and_robust_std(x: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 * median absolute deviation of finite values; (0, 0) when empty."""
    if len(x) == 0:
        return 0.0, 0.0
    centre = median(x)
    return centre, MAD_TO_SIGMA * _select_median(np.abs(x - centre))

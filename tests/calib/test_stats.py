import numpy as np
import pytest

from calib.stats import median, median_and_robust_std


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 1000, 1001, 40000, 40001])
@pytest.mark.parametrize("ties", [False, True])
def test_median_is_numpys_exactly(n, ties):
    x = np.random.default_rng(n).normal(size=n)
    if ties:
        x = np.round(x, 1)
    assert median(x) == np.median(x)
    centre, std = median_and_robust_std(x)
    assert centre == np.median(x)
    assert std == 1.4826 * np.median(np.abs(x - np.median(x)))


def test_robust_std_of_nothing_is_zero():
    assert median_and_robust_std(np.empty(0)) == (0.0, 0.0)

import numpy as np
import pytest

from calib import fit_zeropoint
from calib.zeropoint import colour_for_band


@pytest.mark.parametrize(
    ("band", "bands", "expected"),
    [
        ("R", ["B", "V", "R", "I"], ("V", "R")),
        ("V", ["B", "V", "R", "I"], ("B", "V")),
        ("B", ["B", "V", "R", "I"], ("B", "V")),
        ("I", ["B", "V", "R", "I"], ("R", "I")),
        ("G", ["G", "BP", "RP"], ("BP", "RP")),
        ("G", ["G"], None),
        ("X", ["X", "V"], None),
    ],
)
def test_colour_for_band(band, bands, expected):
    assert colour_for_band(band, bands) == expected


def test_recovers_zeropoint_and_colour_term_with_outliers():
    rng = np.random.default_rng(5)
    n = 400
    ref = rng.uniform(12, 19, n)
    colour = rng.normal(0.6, 0.3, n)
    err = 0.005 + 0.1 * 10 ** (0.4 * (ref - 19))
    inst = ref - 25.0 + 0.08 * (colour - np.median(colour)) + rng.normal(0, err)
    bad = rng.uniform(size=n) < 0.3
    inst[bad] += rng.uniform(0.5, 2, bad.sum())
    fit = fit_zeropoint(inst, err, ref, np.full(n, 0.01), colour=colour, colour_name="V-R")
    assert fit.ok
    assert fit.zeropoint == pytest.approx(25.0, abs=3 * fit.zeropoint_err + 0.002)
    assert fit.colour_term == pytest.approx(0.08, abs=0.03)
    assert fit.outlier_fraction == pytest.approx(bad.mean(), abs=0.05)
    assert not fit.used[bad].any() or fit.used[bad].mean() < 0.05


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_too_few_stars_is_a_gate_never_nan(n):
    fit = fit_zeropoint(np.full(n, -10.0), np.full(n, 0.02), np.full(n, 15.0), np.full(n, 0.02))
    assert not fit.ok and fit.reason
    for value in (fit.zeropoint, fit.zeropoint_err, fit.scatter, fit.outlier_fraction):
        assert value is None or np.isfinite(value)


def test_scatter_gate():
    rng = np.random.default_rng(1)
    ref = rng.uniform(12, 16, 50)
    fit = fit_zeropoint(ref - 20 + rng.normal(0, 0.6, 50), np.full(50, 0.6), ref, np.zeros(50))
    assert not fit.ok and "scatter" in fit.reason


def test_missing_errors_are_tolerated():
    ref = np.linspace(12, 16, 20)
    fit = fit_zeropoint(ref - 20, np.full(20, np.nan), ref, np.full(20, np.nan))
    assert fit.ok and fit.zeropoint == pytest.approx(20.0)

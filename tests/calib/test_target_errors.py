"""The target's position error and the photometric errors of a table without MAGERR, measured
from the matched stars rather than assumed."""

from __future__ import annotations

import numpy as np

from calib.photerr import FAINT_END_ERR, fit_error_model
from calib.target import position_scatter


def _rayleigh(rng, sigma):
    return sigma * np.sqrt(-2.0 * np.log(rng.random(len(sigma))))


def test_position_scatter_grows_towards_faint_stars_as_one_over_snr():
    rng = np.random.default_rng(1)
    mag = rng.uniform(-12.0, -8.0, 3000)
    truth = np.hypot(0.05, 0.2 * 10 ** (0.4 * (mag + 8.0)))  # floor, centroid noise ∝ 1/SNR
    scatter = position_scatter(mag, _rayleigh(rng, truth))
    assert abs(scatter.at(-11.5) - np.hypot(0.05, 0.2 * 10 ** (-1.4))) < 0.02
    assert 0.8 < scatter.at(-7.0) / np.hypot(0.05, 0.2 * 10**0.4) < 1.25  # extrapolated


def test_position_scatter_of_a_few_pairs_is_their_rayleigh_sigma():
    rng = np.random.default_rng(2)
    sep = _rayleigh(rng, np.full(10, 0.3))
    scatter = position_scatter(np.linspace(-12, -10, 10), sep)
    assert scatter.at(-12) == scatter.at(-5) == np.median(sep) / 1.1774


def test_error_model_reaches_the_faint_end_the_calibrators_do_not():
    """Ten bright calibrators scattering by 0.02 mag: alone they cannot make a model (one bin);
    anchored at the catalogue's faintest detections (S/N 5) the error grows towards them."""
    rng = np.random.default_rng(3)
    inst = rng.uniform(-12.0, -11.0, 10)
    residual = rng.normal(0, 0.02, 10)
    ref_err = np.full(10, 0.003)
    assert fit_error_model(inst, residual, ref_err) is None
    model = fit_error_model(inst, residual, ref_err, faint_end=-6.0)
    assert abs(model(np.array([-6.0]))[0] - FAINT_END_ERR) < 0.05
    assert model(np.array([-11.5]))[0] < 0.05 < model(np.array([-7.0]))[0]

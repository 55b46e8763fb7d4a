"""Saturation Source Extractor did not flag, and clipped cores too small for a plateau: the
target is flagged ``saturated`` with an error covering what the clipping can cost, or its
error covers the little an unseen clipped pixel can, never a millimagnitude point."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from calib import calibrate, read_catalog
from calib.image import load_image
from calib.imaging import calibrate_image
from calib.reference import RefCatalog
from calib.target import Saturation, clip_loss
from simfields.sextractor import render_field, sextractor_available
from tests.synth_image import reference_columns, synth_frame


@pytest.mark.parametrize("beyond", [0.3, 1.0, 1.5])
def test_clip_loss_is_what_a_clipped_gaussian_loses(beyond):
    """The bound against a pixelised Gaussian whose peak is 10**(0.4 beyond) times the
    saturation level, clipped there."""
    y, x = np.mgrid[-40:41, -40:41] / 8.0  # fine pixels, sigma = 1
    star = np.exp(-(x**2 + y**2) / 2)
    k = 10 ** (0.4 * beyond)
    kept = np.minimum(k * star, 1.0).sum() / (k * star).sum()
    assert clip_loss(beyond) == pytest.approx(-2.5 * math.log10(kept), rel=0.03)
    assert clip_loss(0.0) == 0.0 and clip_loss(-1.0) == 0.0


@pytest.mark.skipif(not sextractor_available(), reason="source-extractor not installed")
@pytest.mark.parametrize("columns", ["fwhm", "none"])
def test_unflagged_saturated_target_brighter_than_every_calibrator(rng, columns):
    """FLAGS 0 on a saturated target, no FLUX_MAX (the catalogue of a too-high SATUR_LEVEL):
    10.088 +- 0.001 was reported for a 9.74 star, 1 mag brighter than every calibrator."""
    for _ in range(3):
        seed = int(rng.integers(1 << 31))
        target = float(rng.uniform(9.6, 10.2))
        field = render_field(seed, target_mag=target, bright_mag=11.3)
        cat = replace(field.catalog, flux_max=None, flags=np.zeros_like(field.catalog.flags))
        if columns == "none":
            cat = replace(cat, fwhm=None, fwhm_world=None)
        t = field.truth
        r = calibrate(cat, [field.reference], t["target_ra"], t["target_dec"])
        assert not r.limit
        assert "saturated" in r.target_flags, (seed, r.log)
        assert r.mag_err >= 0.1
        assert abs(r.mag - target) <= 2 * r.mag_err, (seed, r.mag, r.mag_err, target)
        assert any("saturated" in w for w in r.warnings)


def test_what_vouches_for_an_unclipped_core():
    """Brighter than every calibrator that fits is unvouched unless the catalogue flags
    saturation elsewhere (its extraction compares pixels with the level) or the target's peak
    is below a fitting calibrator's (same PSF: its core is not clipped)."""
    frame = Saturation(brightest=-14.0, highest_peak=30000.0)
    assert frame.unvouched(-15.0, None) == pytest.approx(1.0)
    assert frame.unvouched(-15.0, 40000.0) == pytest.approx(1.0)
    assert frame.unvouched(-15.0, 20000.0) == 0.0
    assert frame.unvouched(-13.5, None) == 0.0
    assert replace(frame, flagged=True).unvouched(-15.0, None) == 0.0


def test_mu_max_stands_in_for_flux_max():
    text = (
        "#   1 ALPHA_J2000  Right ascension  [deg]\n"
        "#   2 DELTA_J2000  Declination  [deg]\n"
        "#   3 MAG_AUTO  Kron-like elliptical aperture magnitude  [mag]\n"
        "#   4 MU_MAX  Peak surface brightness above background  [mag * arcsec**(-2)]\n"
        "10.0 20.0 -10.0 -8.0\n10.1 20.1 -9.0 -5.5\n"
    )
    cat = read_catalog(text.encode())
    assert cat.flux_max is not None
    assert cat.flux_max[0] / cat.flux_max[1] == pytest.approx(10.0)


@pytest.fixture(scope="module")
def synth_ref() -> RefCatalog:
    return RefCatalog.from_columns("SYNTH", reference_columns())


@pytest.mark.parametrize("target", [10.0, 10.15])
def test_image_two_by_two_clipped_core_without_saturate_is_saturated(synth_ref, target):
    """A 2 x 2 clipped core (no SATURATE in the header): 10.294 +- 0.001 for a 10.09 star
    while nine pixels at the top were needed to see saturation."""
    for seed in range(3):
        frame, truth = synth_frame(
            (90 + 0.37 * seed, 60 - 0.23 * seed), target, write_saturate=False, seed=40 + seed
        )
        assert np.count_nonzero(frame.data >= frame.data.max()) >= 2
        r = calibrate_image(
            load_image(frame.to_fits()), lambda *_: [synth_ref], truth.target_ra, truth.target_dec
        ).result
        assert "saturated" in r.target_flags, r.log
        assert r.mag_err >= 0.1 and abs(r.mag - target) <= 2 * r.mag_err


def test_image_single_top_pixel_error_covers_its_clipping(synth_ref):
    """One pixel at the frame's top may be clipped or not: the alert holding it is 0.01 mag
    faint at most, and its error says so (it quoted 0.002)."""
    z = []
    for seed in range(3):
        frame, truth = synth_frame(
            (90 + 0.37 * seed, 60 - 0.23 * seed), 10.42, write_saturate=False, seed=50 + seed
        )
        r = calibrate_image(
            load_image(frame.to_fits()), lambda *_: [synth_ref], truth.target_ra, truth.target_dec
        ).result
        z.append((r.mag - 10.42) / r.mag_err)
    assert np.all(np.abs(z) < 3), z


@pytest.mark.skipif(not sextractor_available(), reason="source-extractor not installed")
def test_peak_at_the_flagged_stars_level_is_saturated(rng):
    """Source Extractor flagged one star saturated and left the target, peaking at the same
    level (59699.1 against 59699.5), at FLAGS 0: 10.549 +- 0.004 for 10.46."""
    while True:
        seed = int(rng.integers(1 << 31))
        field = render_field(seed, target_mag=9.8, bright_mag=8.5, density_per_arcmin2=40.0)
        cat, t = field.catalog, field.truth
        at = np.argmin(np.hypot(cat.ra - t["target_ra"], cat.dec - t["target_dec"]))
        others = np.flatnonzero(cat.flags & 4)
        if len(others[others != at]):
            break
    flags = cat.flags.copy()
    flags[at] = 0
    r = calibrate(replace(cat, flags=flags), [field.reference], t["target_ra"], t["target_dec"])
    assert "saturated" in r.target_flags, r.log
    assert abs(r.mag - 9.8) <= 2 * r.mag_err


@pytest.mark.skipif(not sextractor_available(), reason="source-extractor not installed")
@pytest.mark.parametrize(("target", "saturated"), [(9.8, True), (12.5, False)])
def test_peak_says_whether_a_target_beyond_the_calibrators_is_clipped(rng, target, saturated):
    """No FLAGS at all, FLUX_MAX given, the target brighter than every calibrator: its
    FLUX_MAX / flux against theirs tells a clipped core (saturated, error covering it) from a
    bright star (a 13 mag target was flagged while the peak was ignored)."""
    for _ in range(2):
        field = render_field(int(rng.integers(1 << 31)), target_mag=target, bright_mag=13.6)
        cat, t = field.catalog, field.truth
        cat = replace(cat, flags=np.zeros_like(cat.flags))
        r = calibrate(cat, [field.reference], t["target_ra"], t["target_dec"])
        assert ("saturated" in r.target_flags) == saturated, r.log
        assert abs(r.mag - target) <= 3 * r.mag_err, (r.mag, r.mag_err)

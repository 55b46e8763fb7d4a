"""A frame over several overlapping surveys, one of them sparse: the demo GaiaDR3 store's few
bright stars (G 6-10, about 11 per square degree) beside a deep multi-band survey. Every real
deployment has such overlaps; the sparse survey's handful of chance pairs once crashed the
offset vote (an internal error for the whole job). Both paths must calibrate on the deep
survey and measure the alert."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calib import calibrate
from calib.image import load_image
from calib.imaging import calibrate_image
from calib.reference import RefCatalog
from simfields.render import render_frame, tan_wcs
from simfields.sextractor import render_field, sextractor_available
from tests.synth_image import CENTRE, PIXEL_SCALE, instrumental, reference_columns


def gaia_pair_centre(gaia: RefCatalog) -> tuple[float, float]:
    """Midpoint of the closest pair of demo Gaia stars 2-8' apart: a 10' frame there holds
    both, neither near its centre (the alert)."""
    x = (gaia.ra - 120.0) * math.cos(math.radians(45.0))
    d = np.hypot(x[:, None] - x[None, :], gaia.dec[:, None] - gaia.dec[None, :]) * 60
    d[(d < 2) | (d > 8)] = np.inf
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return float((gaia.ra[i] + gaia.ra[j]) / 2), float((gaia.dec[i] + gaia.dec[j]) / 2)


def in_frame(gaia: RefCatalog, centre, half_arcsec: float) -> np.ndarray:
    east = (gaia.ra - centre[0]) * math.cos(math.radians(centre[1])) * 3600
    north = (gaia.dec - centre[1]) * 3600
    return (np.abs(east) < half_arcsec) & (np.abs(north) < half_arcsec)


@pytest.mark.skipif(not sextractor_available(), reason="source-extractor not installed")
@pytest.mark.parametrize("render_gaia_stars", [False, True])
def test_catalogue_over_a_deep_and_a_sparse_survey(gaia_demo, rng, render_gaia_stars):
    _, gaia, _ = gaia_demo
    centre = gaia_pair_centre(gaia)
    extra = None
    inside = in_frame(gaia, centre, 300.0)
    assert inside.sum() >= 2
    if render_gaia_stars:  # on the frame, saturated, but in no survey but the sparse one
        extra = (gaia.ra[inside], gaia.dec[inside], gaia.bands["G"][0][inside])
    results = []
    for _ in range(4):
        seed = int(rng.integers(1 << 31))
        field = render_field(
            seed, npix=600, centre=centre, density_per_arcmin2=30.0, target_mag=16.5,
            extra_stars=extra,
        )  # fmt: skip
        t = field.truth
        result = calibrate(field.catalog, [gaia, field.reference], t["target_ra"], t["target_dec"])
        assert (result.survey, result.filter) == ("SIM", "R"), result.log
        assert abs(result.mag - 16.5) <= 3 * result.mag_err, (seed, result.log)
        assert any(line.startswith("GaiaDR3:") for line in result.log)
        results.append(result)
    assert len(results) == 4


def test_image_over_a_deep_and_a_sparse_survey(gaia_demo):
    """The synth-deep survey moved onto the demo Gaia stars' field, the Gaia stars drawn on
    the frame too (saturated, as G 6-10 stars are)."""
    _, gaia, _ = gaia_demo
    centre = gaia_pair_centre(gaia)
    cols = reference_columns()
    cos_old, cos_new = math.cos(math.radians(CENTRE[1])), math.cos(math.radians(centre[1]))
    cols["ra"] = centre[0] + (cols["ra"] - CENTRE[0]) * cos_old / cos_new
    cols["dec"] = centre[1] + (cols["dec"] - CENTRE[1])
    deep = RefCatalog.from_columns("SYNTH", cols)
    shape = (1024, 1024)
    inside = in_frame(gaia, centre, shape[0] / 2 * PIXEL_SCALE)
    assert inside.sum() >= 1
    alert = (centre[0] + 40 / 3600 / cos_new, centre[1] - 25 / 3600)
    ra = np.r_[cols["ra"], gaia.ra[inside], alert[0]]
    dec = np.r_[cols["dec"], gaia.dec[inside], alert[1]]
    mag = np.r_[
        instrumental(cols["R"], cols["V"] - cols["R"]),
        instrumental(gaia.bands["G"][0][inside], 0.5),
        instrumental(16.0, 0.5),
    ]
    z = []
    for seed in range(3):
        frame = render_frame(tan_wcs(*centre, shape, PIXEL_SCALE), shape, ra, dec, mag, seed=seed)
        cal = calibrate_image(load_image(frame.to_fits()), lambda *_: [gaia, deep], *alert)
        r = cal.result
        assert (r.survey, r.filter) == ("SYNTH", "R"), r.log
        assert not r.limit
        z.append((r.mag - 16.0) / r.mag_err)
    assert np.all(np.abs(z) < 3), z

"""A limit next to a bright star: never a bound above the star itself (dividing by the blend
kernel's small share once gave 11.38 beside a 13.1 mag star on a frame reaching 17.9), never
the frame's depth where the star's light hides a transient (a 16 mag transient 2 FWHM from a
13.1 mag star was given the frame's 17.35), flagged ``blended`` with the reason."""

from __future__ import annotations

import pytest

from calib import calibrate
from simfields.sextractor import render_field, sextractor_available

pytestmark = pytest.mark.skipif(not sextractor_available(), reason="source-extractor not installed")
FWHM_PX = 3.0


def measure(seed, transient, fwhm_apart, density):
    field = render_field(
        seed, target_mag=transient, target_neighbour=(fwhm_apart * FWHM_PX, 13.1),
        fwhm_pix=FWHM_PX, density_per_arcmin2=density,
        clear_radius_arcsec=0.0 if density > 100 else None,
    )  # fmt: skip
    t = field.truth
    return calibrate(field.catalog, [field.reference], t["target_ra"], t["target_dec"])


@pytest.mark.parametrize("fwhm_apart", [1.5, 2.0])
def test_limit_beside_a_bright_star_is_never_brighter_than_the_star(rng, fwhm_apart):
    for _ in range(2):
        r = measure(int(rng.integers(1 << 31)), 40.0, fwhm_apart, 40.0)
        assert r.limit and "blended" in r.target_flags, r.log
        assert r.mag >= 13.1 - 0.2, r.log
        assert any("limit here" in w for w in r.warnings), r.warnings


@pytest.mark.parametrize("density", [40.0, 200.0])
@pytest.mark.parametrize("fwhm_apart", [1.5, 2.0, 2.5])
def test_transient_beside_a_bright_star_is_honest(rng, density, fwhm_apart):
    """A magnitude within 3 sigma, or a limit that does not claim the transient fainter."""
    for transient in (16.0, 17.5):
        r = measure(int(rng.integers(1 << 31)), transient, fwhm_apart, density)
        if r.limit:
            assert r.mag <= transient + 0.05, (r.mag, r.log)
        else:
            assert abs(r.mag - transient) <= 3 * r.mag_err, (r.mag, r.mag_err, r.log)

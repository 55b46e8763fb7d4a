"""Calibration against truth on frames rendered and measured by the real Source Extractor.

Each test renders small fields from a seed of its own (the `rng` fixture); set
`CALSERV_TEST_SEED=random` to render fresh ones and probe each rule beyond one example.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from calib import CalibrationError, calibrate, read_catalog
from simfields.sextractor import render_field, sextractor_available

pytestmark = pytest.mark.skipif(
    not sextractor_available(), reason="source-extractor not installed (deploy/bootstrap.sh)"
)


def run(field, **kwargs):
    t = field.truth
    return calibrate(field.catalog, [field.reference], t["target_ra"], t["target_dec"], **kwargs)


def assert_target_within_3_sigma(result, truth):
    assert not result.limit, result.log
    assert abs(result.mag - truth["target_mag"]) <= 3 * result.mag_err, result.log


def assert_honest(result, truth):
    """A magnitude within 3 sigma of the truth, or a limit that does not claim the alert
    fainter than it is."""
    if result.limit:
        assert result.mag <= truth["target_mag"] + 0.05, result.log
    else:
        assert_target_within_3_sigma(result, truth)


def zeropoint_error(result, truth) -> float:
    """The result's zero point minus the truth at the fit's pivot colour."""
    pivot = result.fit.colour_pivot if result.fit.colour_pivot is not None else 0.5
    return result.zeropoint - (
        truth["zeropoint"] - truth["colour_term"] * (pivot - truth["colour_pivot"])
    )


# 1. catalogues ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [None, 873603660])
def test_plain_csv_without_errors_with_sexagesimal_positions(seed, rng):
    """Seed 873603660: the isolated target's error was raised from 0.08 to 0.33 mag by the
    scatter of blended stars of its brightness; stars crowded like the target are used."""
    from astropy.coordinates import SkyCoord

    seed = int(rng.integers(1 << 31)) if seed is None else seed
    field = render_field(seed, npix=400, density_per_arcmin2=40.0, target_mag=17.0)
    cat = field.catalog
    coords = SkyCoord(cat.ra, cat.dec, unit="deg")
    ras = coords.ra.to_string(unit="hourangle", sep=":", precision=4, pad=True)
    decs = coords.dec.to_string(sep=":", precision=3, alwayssign=True, pad=True)
    rows = [f"{a},{d},{m:.4f},{f:d}" for a, d, m, f in zip(ras, decs, cat.mag, cat.flags)]  # noqa: B905
    table = read_catalog(("ra,dec,mag_auto,flags\n" + "\n".join(rows) + "\n").encode())
    assert not table.has_errors
    result = run(type(field)(field.data, table, field.reference, field.truth))
    assert any("errors estimated" in line for line in result.log)
    # The target's error is photometric, not the zero point's alone, and near SExtractor's.
    i = int(np.argmin(np.hypot(cat.ra - result.ra, cat.dec - result.dec)))
    assert result.mag_err > 2 * result.zeropoint_err
    assert 1 / 3 < result.mag_err / math.hypot(cat.mag_err[i], result.zeropoint_err) < 3
    assert abs(result.mag - field.truth["target_mag"]) <= 3 * max(result.mag_err, cat.mag_err[i])


# 2. target search radius -----------------------------------------------------------------------

COARSE = {
    "pixscale": 5.0, "fwhm_pix": 1.6, "npix": 200, "density_per_arcmin2": 0.5,
    "bright_mag": 8.0, "faint_mag": 17.0, "zeropoint": 22.0, "ref_depth_mag": 17.5,
    "target_mag": 13.0,
}  # fmt: skip


def test_target_off_by_two_arcsec_in_coarse_pixels_is_measured_and_flagged(rng):
    angle = rng.uniform(0, 2 * np.pi)
    offset = (2.0 * np.cos(angle), 2.0 * np.sin(angle))
    field = render_field(int(rng.integers(1 << 31)), **COARSE, target_offset_arcsec=offset)
    result = run(field)
    assert_target_within_3_sigma(result, field.truth)
    assert "offset" in result.target_flags
    assert result.match_dist < 2.0 < field.truth["fwhm_arcsec"]  # calibrators' radius is smaller


@pytest.mark.parametrize("separation,seed", [(3.5, None), (12.0, None), (12.0, 1783218293)])
def test_catalogued_neighbour_of_the_target_is_flagged_blended(separation, seed, rng):
    """Unresolved (3.5 arcsec, FWHM 8) or resolved inside the search radius (12 arcsec); the
    neighbour's light is subtracted or bounds the limit. Seed 1783218293: the pair merged into
    one source 8.3 arcsec from the alert, outside the one-FWHM radius (reported as the frame's
    limit before)."""
    seed = int(rng.integers(1 << 31)) if seed is None else seed
    field = render_field(seed, **COARSE, target_neighbour=(separation, 13.5))
    result = run(field)
    assert "blended" in result.target_flags, result.log
    assert any("blend" in w or "ambiguous" in w for w in result.warnings)
    assert_honest(result, field.truth)


def test_deblended_target_error_covers_the_light_deblending_shares(rng):
    """A target 1.7-2.3 FWHM from a star one magnitude brighter is split from it by Source
    Extractor's deblending; its photon noise alone left it 4.5σ off on such a frame."""
    pulls = []
    for _ in range(8):
        fwhm = 3.0  # render_field's defaults: 3 pixels of 1 arcsec
        separation = float(rng.uniform(1.7, 2.3)) * fwhm
        field = render_field(
            int(rng.integers(1 << 31)), target_mag=14.0, target_neighbour=(separation, 13.0)
        )
        result = run(field, allowed_filters=["R"])
        assert_honest(result, field.truth)
        if not result.limit:
            pulls.append((result.mag - 14.0) / result.mag_err)
    assert len(pulls) >= 4


def test_isolated_target_is_not_flagged_blended(rng):
    result = run(render_field(int(rng.integers(1 << 31)), **COARSE, clear_radius_arcsec=60.0))
    assert "blended" not in result.target_flags


# 3. target flags -------------------------------------------------------------------------------


def test_saturated_target_is_flagged_with_an_honest_error(rng):
    field = render_field(int(rng.integers(1 << 31)), target_mag=float(rng.uniform(8.5, 9.5)))
    result = run(field)
    assert "saturated" in result.target_flags
    assert result.mag_err >= 0.1
    assert result.mag >= field.truth["target_mag"] - 0.05  # never brighter than the truth
    assert abs(result.mag - field.truth["target_mag"]) <= 3 * result.mag_err
    assert any("saturated" in w for w in result.warnings)


def test_unsaturated_bright_target_is_not_flagged(rng):
    field = render_field(int(rng.integers(1 << 31)), target_mag=13.0)
    result = run(field)
    assert "saturated" not in result.target_flags
    assert_target_within_3_sigma(result, field.truth)


@pytest.mark.parametrize("seed", [None, 1000001, 1000002, 1808650543])
def test_target_on_the_frame_edge_is_flagged(seed, rng):
    """Seeds 1000001-2: the edge-flagged target was cleaned away and lay outside the box of the
    other sources (an "outside the frame" error on 23 of 100 such frames); 1808650543: cut by
    the edge, it centroided 3.6 arcsec inwards, outside the one-FWHM search radius."""
    seed = int(rng.integers(1 << 31)) if seed is None else seed
    field = render_field(seed, npix=240, target_mag=14.0, target_offset_arcsec=(119.0, 0.0))
    t = field.truth
    result = calibrate(field.catalog, [field.reference], t["source_ra"], t["source_dec"])
    assert not result.limit
    assert "edge" in result.target_flags


# 4. honest limits ------------------------------------------------------------------------------


def test_limit_of_absent_target_is_the_measured_completeness(rng):
    field = render_field(int(rng.integers(1 << 31)), target_mag=None)
    result = run(field)
    assert result.limit and result.mag == result.limiting_mag
    assert abs(result.limiting_mag - field.truth["completeness_50"]) <= 0.2, result.log
    assert any("50 %" in line for line in result.log)


def test_target_brighter_than_the_limit_is_detected(rng):
    probe = render_field(int(rng.integers(1 << 31)), target_mag=None)
    limit = run(probe).limiting_mag
    field = render_field(int(rng.integers(1 << 31)), target_mag=limit - 0.5)
    result = run(field)
    assert not result.limit, result.log


# 5. spatially varying zero point ---------------------------------------------------------------

VIGNETTED = {"npix": 640, "zeropoint": 26.0, "density_per_arcmin2": 60.0, "vignetting_mag": 0.1}


def test_vignetting_is_fitted_and_evaluated_at_the_target(rng):
    fields = [render_field(int(rng.integers(1 << 31)), **VIGNETTED) for _ in range(5)]
    results = [run(f) for f in fields]
    # The Wald test of the position terms chose order 2 on 120 of 120 such frames; when too
    # few effective stars forbid it, its distance from the order used widens the error.
    for r, f in zip(results, fields):  # noqa: B905
        assert r.zeropoint_order == 2 or any("too few effective" in x for x in r.log), r.log
        assert abs(zeropoint_error(r, f.truth)) <= 3 * r.zeropoint_err, r.log
    errors = [abs(r.zeropoint - f.truth["zeropoint"]) for r, f in zip(results, fields)]  # noqa: B905
    assert np.median(errors) < 0.015, errors  # a constant zero point is 0.03-0.05 off here


@pytest.mark.parametrize("seed", [None, 600000, 600029, 600093])
def test_vignetted_zero_point_within_its_error(seed, rng):
    """Seeds 600000, 600029, 600093: order 2 fitted, but the faint calibrators (measured 0.8
    sigma too faint) pulled the centre 0.02 mag off quoting 0.004-0.005; the disagreement of
    the brighter and fainter halves now widens the error."""
    seed = int(rng.integers(1 << 31)) if seed is None else seed
    field = render_field(seed, **VIGNETTED)
    result = run(field)
    assert abs(zeropoint_error(result, field.truth)) <= 3 * result.zeropoint_err, result.log


def test_vignetting_with_too_few_effective_stars_for_its_order_has_an_honest_error():
    """20.2 effective calibrators, short of the 21 order 2 needs: the constant zero point was
    kept 0.060 off at the centre quoting 0.009 (0.003 before the systematic errors). The order
    the data ask for now widens the error by its distance from the one used."""
    field = render_field(1438807958, **(VIGNETTED | {"npix": 500}))
    result = run(field, allowed_filters=["R", "I"])
    assert abs(zeropoint_error(result, field.truth)) <= 3 * result.zeropoint_err, result.log
    assert any("too few effective stars" in line for line in result.log)


@pytest.mark.parametrize("seed", [600028, 600077, 600108])
def test_vignetting_missed_by_the_robust_aic_is_fitted(seed):
    """Frames where AIC on the robust spread of all stars' residuals kept order 0 or 1: the
    faint stars, most of the count, hid the trend, and the centre was 0.05 mag off quoting
    0.002-0.003. The Wald test of the position terms finds it."""
    field = render_field(seed, **VIGNETTED)
    result = run(field)
    assert result.zeropoint_order == 2, result.log
    assert abs(result.zeropoint - field.truth["zeropoint"]) < 0.02, result.log


def test_flat_frame_zero_point_is_unbiased_whatever_the_order(rng):
    for _ in range(3):
        field = render_field(int(rng.integers(1 << 31)))
        result = run(field)
        error = abs(zeropoint_error(result, field.truth))
        assert error <= max(3 * result.zeropoint_err, 0.01), result.log


def test_zero_point_that_depends_on_clipped_bright_stars_has_an_honest_error():
    """Two of the four brightest calibrators (36 % of the weight) were clipped for residuals
    no larger than the faint stars' scatter; the colour term came out -0.16 (true 0.07) and the
    zero point 0.045 off quoting 0.011."""
    field = render_field(1238838165)
    result = run(field)
    error = abs(result.zeropoint - field.truth["zeropoint"])
    assert error <= 3 * result.zeropoint_err, result.log
    assert any("stars clipped" in line for line in result.log)


# 6. crowded fields -----------------------------------------------------------------------------


CROWDED = {"npix": 250, "density_per_arcmin2": 400.0, "faint_mag": 21.0}


def test_crowded_field_zero_point_within_its_error(rng):
    field = render_field(int(rng.integers(1 << 31)), **CROWDED)
    result = run(field)
    assert any("dropped for neighbours" in line for line in result.log), result.log
    # All stars give a zero point 0.2-0.3 mag too bright here; isolated ones within 0.04.
    assert abs(result.zeropoint - field.truth["zeropoint"]) < 0.04
    assert abs(zeropoint_error(result, field.truth)) <= 3 * result.zeropoint_err, result.log


@pytest.mark.parametrize("seed", [700003, 700034, 710033])
def test_crowding_error_survives_the_spatial_fit(seed):
    """The calibrators' contamination is a systematic error of the zero point; a spatial refit
    once dropped it (28 of 100 crowded frames 0.01-0.04 mag off quoting 3-8 mmag)."""
    options = CROWDED | ({"target_mag": 15.0} if seed < 710000 else {})
    field = render_field(seed, **options)
    result = run(field)
    assert result.zeropoint_order >= 1, result.log
    assert abs(zeropoint_error(result, field.truth)) <= 3 * result.zeropoint_err, result.log


def test_alert_next_to_brighter_catalogued_stars_in_a_crowded_field_is_honest(rng):
    """Source Extractor merges a transient 1-5 arcsec from a brighter star: measured as it
    stands it was 1-3 mag too bright, quoting 0.01-0.2 (17 of 30 such frames); reported absent,
    the frame's limit claimed it fainter than it was. Now the catalogued stars' light is
    subtracted with the frame's own blend model, or the limit is what could hide there."""
    for _ in range(6):
        target_mag = float(rng.uniform(14.5, 17.0))
        neighbour = (float(rng.uniform(1.0, 4.0)), target_mag - float(rng.uniform(0.5, 2.5)))
        field = render_field(
            int(rng.integers(1 << 31)), npix=250, density_per_arcmin2=float(rng.choice([100, 400])),
            faint_mag=21.0, target_mag=target_mag, target_neighbour=neighbour,
        )  # fmt: skip
        result = run(field)
        assert_honest(result, field.truth)
        if not result.limit:
            assert abs(result.mag - target_mag) < 0.5, result.log


# 7. few stars ----------------------------------------------------------------------------------

FEW = {"faint_mag": 19.0, "ref_depth_mag": 13.6, "npix": 260}


def _few_star_field(rng):
    for _ in range(10):
        field = render_field(int(rng.integers(1 << 31)), **FEW)
        try:
            result = run(field, allowed_filters=["R"])
        except CalibrationError:
            continue  # e.g. R itself fails its quality gates: then the error is the answer
        if result.npoints < 10:
            return field
    pytest.fail("could not render a frame with 5-9 calibration stars")


def test_few_stars_restricted_to_the_observatory_filters_with_a_warning(rng):
    field = _few_star_field(rng)
    result = run(field, allowed_filters=["R"])
    assert result.filter == "R"
    assert any("few calibration stars" in w for w in result.warnings)
    assert abs(result.mag - field.truth["target_mag"]) <= max(3 * result.mag_err, 0.1)
    with pytest.raises(CalibrationError, match="set forceFilter"):
        run(field, allowed_filters=["u"])


@pytest.mark.parametrize("seed", [900002, 900025, 900081])
def test_few_stars_never_choose_an_implausible_colour_term(seed):
    """With 9-10 stars both observatory filters (R, I) fitted a colour term; I's +1.08 absorbed
    the colour spread that the few-star choice looks for, and I was chosen, the target 0.3-0.45
    mag off quoting 0.05. A colour term must be plausible in the few-star choice too."""
    field = render_field(seed, **FEW)
    result = run(field, allowed_filters=["R", "I"])
    assert result.filter == "R", result.log
    assert_target_within_3_sigma(result, field.truth)


def test_no_plausible_colour_term_chooses_the_nearest_band_with_a_warning():
    """Calibrators all fainter than 15.7 mag: R's colour term came out +0.36 ± 0.16 (true
    0.07) and V's -0.42 ± 0.08, both beyond 0.3; ranked by their widened zero-point errors V
    won, the target 0.53 mag off quoting 0.045. Among implausible bands the one fewest
    standard errors beyond the limit is chosen, and the observer is warned."""
    field = render_field(960106, bright_mag=15.0, npix=240)
    result = run(field)
    assert result.filter == "R", result.log
    assert_target_within_3_sigma(result, field.truth)
    assert any("plausible colour term" in w for w in result.warnings)


# 8. bad matchDist ------------------------------------------------------------------------------


def test_wcs_offset_with_small_matchdist_is_detected_and_rematched(rng):
    field = render_field(int(rng.integers(1 << 31)), wcs_offset_arcsec=(5.0, -1.0))
    result = run(field, match_dist_arcsec=2.0)
    assert any("expected by chance" in w and "rematched" in w for w in result.warnings)
    assert abs(result.zeropoint - field.truth["zeropoint"]) < max(3 * result.zeropoint_err, 0.04)
    assert_target_within_3_sigma(result, field.truth)


def test_wcs_offset_leaving_too_few_matches_on_a_sparse_frame_is_rematched(rng):
    """A 5"/px frame 2.8" off with matchDist=2 and a shallow reference: the few matches beat
    the chance expectation (near zero) but cannot calibrate; the offset search finds the
    frame's shift."""
    shallow = {**COARSE, "ref_depth_mag": 13.5}
    for _ in range(3):
        field = render_field(int(rng.integers(1 << 31)), **shallow, wcs_offset_arcsec=(2.8, 0.0))
        result = run(field, match_dist_arcsec=2.0, allowed_filters=["R"])
        assert any("rematched" in w for w in result.warnings), result.log
        assert_target_within_3_sigma(result, field.truth)


def test_match_no_better_than_chance_fails_with_a_reason(rng):
    field = render_field(
        int(rng.integers(1 << 31)), wcs_offset_arcsec=(40.0, 25.0), density_per_arcmin2=60.0
    )
    with pytest.raises(CalibrationError, match="expected by chance"):
        run(field, match_dist_arcsec=2.0)


# 9. invalid alert position ---------------------------------------------------------------------


@pytest.mark.parametrize("ra,dec", [(math.nan, 10.0), (10.0, math.inf), (-1.0, 0.0), (10.0, 95.0)])
def test_invalid_alert_position_is_an_error(ra, dec, rng):
    field = render_field(int(rng.integers(1 << 31)), npix=150)
    with pytest.raises(CalibrationError, match="alert position"):
        calibrate(field.catalog, [field.reference], ra, dec)


# 10. fresh fields ------------------------------------------------------------------------------


def test_fresh_small_fields_give_the_right_band_and_the_target_within_3_sigma(rng):
    """A batch of ordinary 4.5 arcmin R frames (20-40 isolated calibrators, most of them faint,
    the brightest sometimes saturated without a flag): the band is R and the target within 3
    quoted sigma. A fixed seed once hid a lone saturated star fixing the colour term (SIM/V
    chosen, 0.41 mag off, quoting 0.009)."""
    for _ in range(15):
        field = render_field(int(rng.integers(1 << 31)))
        result = run(field)
        assert result.filter == field.truth["band"], result.log
        assert_target_within_3_sigma(result, field.truth)


@pytest.mark.parametrize("seed", [918841693, 881065908])
def test_target_without_calibrators_of_its_brightness_has_an_honest_error(seed):
    """No matched star within 1 mag of the 16 mag target: its SExtractor error (0.04) stood,
    and MAG_AUTO put it 0.12-0.13 mag bright. The ratio of the nearest stars' scatter to their
    quoted errors (1.9) now widens it."""
    field = render_field(seed)
    result = run(field)
    assert_target_within_3_sigma(result, field.truth)
    assert any("ratio of their scatter" in line for line in result.log)

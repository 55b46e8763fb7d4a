"""The instrument model and the checks, on simulated histories with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calib.instrument import (
    FLAGS,
    MIN_FRAMES,
    BandHistory,
    Frame,
    InstrumentModel,
    build_model,
    check_frame,
    colour_term_prior,
    robust_weighted_mean,
)


def history(
    seed: int,
    n: int = 60,
    *,
    colour_term: float = 0.08,
    zp: float = 23.0,
    trend_per_year: float = 0.0,
    exptimes=(60.0,),
    counts: bool = False,
    bad: int = 0,
) -> list[Frame]:
    """`n` nightly frames of one instrument; `bad` of them cloudy (zero point 0.3-1.5 mag low)
    and through another filter (colour term off by 0.4)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        mjd = 60000.0 + i + rng.uniform(0, 0.3)
        t = float(rng.choice(exptimes))
        dex = math.log10(t / 60.0)
        z = zp + trend_per_year * (mjd - 60030.0) / 365.25 + rng.normal(0, 0.02)
        z += 2.5 * dex if counts else 0.0
        k_err = rng.uniform(0.01, 0.04)
        k = colour_term + rng.normal(0, k_err)
        depth = 19.5 + 1.25 * dex + rng.normal(0, 0.1)
        if i < bad:
            z -= rng.uniform(0.3, 1.5)
            depth -= 1.0
            k += 0.4
        frames.append(Frame(mjd, z, 0.01, k, k_err, depth, rng.normal(2.0, 0.1), t))
    rng.shuffle(frames)
    return frames


def test_model_recovers_colour_term_zero_point_depth_and_fwhm():
    model = build_model(history(1, bad=6))
    assert model.n_frames == 60
    assert model.colour_term == pytest.approx(0.08, abs=3 * model.colour_term_err)
    assert model.colour_term_err < 0.01  # 54 good frames of ~0.025 each
    assert model.zeropoint_median == pytest.approx(23.0, abs=0.01)
    assert model.zeropoint_scatter == pytest.approx(0.02, rel=0.4)
    assert abs(model.zeropoint_trend) < 0.3
    assert model.depth_median == pytest.approx(19.5, abs=0.05)
    assert model.fwhm_median == pytest.approx(2.0, abs=0.05)
    assert model.n_colour_frames <= 54 + 1  # the wrong-filter frames are clipped


def test_zero_point_trend_and_exposure_time_scaling_are_learned():
    frames = history(2, 80, trend_per_year=-0.5, exptimes=(30.0, 60.0, 300.0), counts=True)
    model = build_model(frames)
    assert model.exptime_scaling and model.exptime_ref == 60.0
    assert model.zeropoint_trend == pytest.approx(-0.5, abs=0.15)
    assert model.zeropoint_scatter < 0.04
    late_long = model.expected_zeropoint(60079.0, 300.0)
    truth = 23.0 - 0.5 * (60079.0 - 60030.0) / 365.25 + 2.5 * math.log10(5.0)
    assert late_long == pytest.approx(truth, abs=0.03)
    assert model.expected_depth(300.0) == pytest.approx(19.5 + 1.25 * math.log10(5), abs=0.05)
    rates = build_model(history(2, 80, exptimes=(30.0, 60.0, 300.0), counts=False))
    assert not rates.exptime_scaling


def test_checks_flag_clouds_a_wrong_filter_a_shallow_frame_and_poor_seeing():
    model = build_model(history(3))
    good = Frame(60061.0, 23.01, 0.01, 0.09, 0.02, 19.45, 2.1, 60.0)
    assert check_frame(model, good).flags == []
    cloudy = Frame(60061.0, 22.5, 0.01, 0.09, 0.02, 19.0, 2.1, 60.0)
    checks = check_frame(model, cloudy)
    assert checks.flags == ["zeropoint_low", "depth_low"]
    assert checks.zeropoint_offset == pytest.approx(-0.5, abs=0.02)
    assert "clouds" in checks.warnings[0] and len(checks.warnings) == 2
    wrong = check_frame(model, Frame(60061.0, 23.0, 0.01, 0.45, 0.03, 19.5, 2.0, 60.0))
    assert wrong.flags == ["colour_term_mismatch"]
    assert wrong.colour_term_offset == pytest.approx(0.37, abs=0.02)
    blurred = check_frame(model, Frame(60061.0, 23.0, 0.01, None, None, 19.5, 3.4, 60.0))
    assert blurred.flags == ["seeing_poor"] and blurred.fwhm_ratio == pytest.approx(1.7, abs=0.1)
    assert blurred.colour_term_offset is None
    high = check_frame(model, Frame(60061.0, 23.4, 0.01, None, None, None, None, None))
    assert high.flags == ["zeropoint_high"] and high.depth_offset is None
    assert set(high.to_dict()) == {
        "zeropoint_offset", "colour_term_offset", "depth_offset", "fwhm_ratio", "flags",
    }  # fmt: skip


def test_no_checks_below_five_frames_and_the_model_round_trips():
    young = build_model(history(4, MIN_FRAMES - 1))
    assert check_frame(young, Frame(60000.0, 20.0)) is None
    assert check_frame(None, Frame(60000.0, 20.0)) is None
    model = build_model(history(4, MIN_FRAMES))
    assert check_frame(model, Frame(60000.0, 23.0)) is not None
    assert InstrumentModel.from_dict(model.to_dict()) == model
    assert build_model([]) is None


def test_false_alarm_rate_on_good_frames_is_small():
    model = build_model(history(5, 100))
    fresh = [f for f in history(6, 300) if f.mjd > 60000]
    flagged = sum(bool(check_frame(model, f).flags) for f in fresh)
    assert flagged / len(fresh) < 0.02


def test_colour_term_prior_needs_enough_frames_and_carries_the_scatter():
    assert colour_term_prior(build_model(history(7, 3))) is None
    k, err = colour_term_prior(build_model(history(7, 40)))
    assert k == pytest.approx(0.08, abs=0.02) and 0.0 < err < 0.05


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-5, 5) | st.just(math.nan),
            st.floats(0, 1) | st.sampled_from([math.nan, math.inf, -1.0]),
        ),
        min_size=0,
        max_size=40,
    )
)
def test_robust_weighted_mean_never_fails_on_adversarial_input(pairs):
    values = [p[0] for p in pairs]
    errors = [p[1] for p in pairs]
    out = robust_weighted_mean(values, errors)
    usable = [v for v, e in pairs if math.isfinite(v) and math.isfinite(e) and e > 0]
    if not usable:
        assert out is None
        return
    mean, err, tau, n = out
    assert min(usable) - 1e-9 <= mean <= max(usable) + 1e-9
    assert err > 0 and tau >= 0 and 1 <= n <= len(usable)


def test_robust_weighted_mean_ignores_outliers_and_measures_scatter():
    rng = np.random.default_rng(8)
    x = 0.1 + rng.normal(0, 0.02, 200) + rng.normal(0, 0.03, 200)  # errors 0.02, tau 0.03
    x[:10] += 0.8
    mean, err, tau, n = robust_weighted_mean(x, np.full(200, 0.02))
    assert err == pytest.approx(0.036 / math.sqrt(190), rel=0.3)
    assert mean == pytest.approx(0.1, abs=0.01)
    assert tau == pytest.approx(0.03, abs=0.01)
    assert n == pytest.approx(190, abs=5)


def few_star_frame(seed: int):
    """A small field: mostly fewer than 10 calibrators, through R or V."""
    from calib.simulate import simulate_field

    rng = np.random.default_rng(seed)
    band = "R" if seed % 2 else "V"
    field = simulate_field(
        seed, n_stars=int(rng.integers(40, 90)), band=band, zeropoint=HISTORY[band].zeropoint,
        colour_term=HISTORY[band].colour_term, field_deg=0.1, limit_mag=19.5,
        ref_limit_mag=17.0, saturation_mag=11.0, n_junk=2,
    )  # fmt: skip
    return band, field


HISTORY = {"R": BandHistory(0.12, 0.02, 25.3, 0.03), "V": BandHistory(-0.08, 0.02, 25.0, 0.03)}


def test_few_star_frames_take_the_colour_term_and_the_band_from_history():
    from calib import CalibrationError, calibrate, read_catalog

    wrong = {False: 0, True: 0}
    few = from_history = 0
    for seed in range(60):
        band, field = few_star_frame(seed)
        catalog = read_catalog(field.ascii_head())
        for prior in (False, True):
            try:
                r = calibrate(
                    catalog, [field.reference], field.truth["target_ra"],
                    field.truth["target_dec"], allowed_filters=["R", "V"],
                    instrument_history=HISTORY if prior else None,
                )  # fmt: skip
            except CalibrationError:
                continue
            if r.npoints >= 10:
                continue
            few += prior
            wrong[prior] += r.filter != band
            if prior and any(f"{r.filter}: too few stars" in line for line in r.log):
                from_history += 1  # fewer than 10 stars with a colour: the history's term
                assert r.colour_term == HISTORY[r.filter].colour_term
                assert r.colour_term_err == pytest.approx(HISTORY[r.filter].colour_term_err)
    assert few >= 30 and from_history >= 10
    assert wrong[True] <= wrong[False] and wrong[True] <= 0.05 * few


_maybe = st.none() | st.just(math.nan) | st.just(math.inf)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.builds(
            Frame,
            mjd=st.floats(59000, 61000),
            zeropoint=st.floats(15, 30) | st.just(math.nan),
            zeropoint_err=st.floats(0, 1) | _maybe,
            colour_term=st.floats(-2, 2) | _maybe,
            colour_term_err=st.floats(0, 1) | _maybe,
            depth=st.floats(10, 25) | _maybe,
            fwhm=st.floats(-1, 10) | _maybe,
            exptime=st.floats(-10, 3600) | _maybe,
        ),
        max_size=30,
    ),
    st.floats(15, 30),
)
def test_any_history_builds_a_model_or_none_and_checks_a_frame(frames, zeropoint):
    model = build_model(frames)
    if not any(math.isfinite(f.zeropoint) for f in frames):
        assert model is None
        return
    assert math.isfinite(model.zeropoint_median) and math.isfinite(model.zeropoint_scatter)
    assert model.colour_term is None or math.isfinite(model.colour_term)
    assert InstrumentModel.from_dict(model.to_dict()).n_frames == model.n_frames
    checks = check_frame(model, Frame(60000.0, zeropoint, 0.01, 0.1, 0.02, 19.0, 2.0, 60.0))
    if checks is not None:
        assert set(checks.flags) <= set(FLAGS)
        assert len(checks.warnings) == len(checks.flags)

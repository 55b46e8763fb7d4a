import json

import numpy as np
import pytest

from calib import CalibrationError, calibrate, parse_force_filter, read_catalog, schema
from calib.simulate import simulate_field


@pytest.mark.parametrize("name", ["frame.cat", "frame.ldac"])
def test_gaia_demo(gaia_demo, name):
    folder, ref, truth = gaia_demo
    cat = read_catalog((folder / name).read_bytes())
    result = calibrate(cat, [ref], truth["target_ra"], truth["target_dec"])
    assert (result.survey, result.filter) == ("GaiaDR3", "G")
    assert result.zeropoint == pytest.approx(truth["zp_true"], abs=0.01)
    assert not result.limit
    assert result.mag == pytest.approx(truth["target_mag"], abs=0.03)
    assert result.limiting_mag > result.mag


@pytest.mark.parametrize("offset_deg", [(0.0, 2.0), (2.9, 0.0), (-120.0, -45.0)])
def test_alert_off_the_frame_is_an_error_not_a_limit(gaia_demo, offset_deg):
    """The demo frame spans 3 degrees: an alert beyond its edge cannot have a limit there."""
    folder, ref, truth = gaia_demo
    cat = read_catalog((folder / "frame.cat").read_bytes())
    ra, dec = truth["target_ra"] + offset_deg[0], truth["target_dec"] + offset_deg[1]
    with pytest.raises(CalibrationError, match="outside the frame"):
        calibrate(cat, [ref], ra, dec)
    # Just inside the detected sources' box, the same frame still measures (a limit here).
    inside = calibrate(cat, [ref], truth["target_ra"], truth["target_dec"] + 1.3)
    assert inside.limiting_mag is not None


@pytest.mark.parametrize("name", ["frame.cat", "frame.ldac"])
def test_synth_deep_picks_r(synth_deep, name):
    folder, ref, truth = synth_deep
    cat = read_catalog((folder / name).read_bytes())
    result = calibrate(cat, [ref], truth["target_ra"], truth["target_dec"])
    assert result.filter == "R"
    assert result.fit.zeropoint_at(0.5) == pytest.approx(truth["zp_true"], abs=0.01)
    assert result.colour_term == pytest.approx(truth["colour_term"], abs=0.03)
    assert abs(result.mag - truth["target_mag"]) < max(3 * result.mag_err, 0.05)
    assert sum(c["chosen"] for c in result.candidates) == 1


def test_to_dict_is_json_safe_with_exact_keys(synth_deep):
    folder, ref, _ = synth_deep
    result = calibrate(read_catalog((folder / "frame.cat").read_bytes()), [ref], 150.1, 2.2)
    d = result.to_dict()
    # Exactly the schema's keys that calib sets, in its order (the worker adds processing_time).
    assert list(d) == [f.name for f in schema.RESULT_FIELDS if f.source == "calib"]
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d
    assert set(d["candidates"][0]) == {
        "survey", "filter", "zeropoint", "zeropoint_err", "colour_term", "scatter",
        "npoints", "outlier_fraction", "ok", "reason", "chosen",
    }  # fmt: skip
    assert all(isinstance(line, str) for line in d["log"])
    assert isinstance(d["zeropoint_order"], int) and d["zeropoint_order"] in (0, 1, 2)
    assert all(isinstance(x, str) for x in d["target_flags"] + d["warnings"])


@pytest.mark.parametrize("seed", range(6))
def test_simulated_zeropoint_unbiased_and_target_within_3_sigma(seed):
    field = simulate_field(seed)
    truth = field.truth
    result = calibrate(field.catalog, [field.reference], truth["target_ra"], truth["target_dec"])
    assert result.filter == truth["band"]
    assert abs(result.fit.zeropoint_at(truth["colour_pivot"]) - truth["zeropoint"]) <= 0.01
    assert abs(result.mag - truth["target_mag"]) <= 3 * result.mag_err


def test_simulated_bias_over_seeds_is_small():
    offsets = []
    for seed in range(10, 18):
        field = simulate_field(seed, n_stars=800)
        result = calibrate(field.catalog, [field.reference], 150.1, 2.2)
        offsets.append(result.fit.zeropoint_at(0.5) - 25.3)
    assert abs(np.mean(offsets)) <= 0.01


@pytest.mark.parametrize("band", ["B", "V", "R", "I"])
def test_observed_band_chosen_automatically(band):
    field = simulate_field(7, band=band)
    result = calibrate(field.catalog, [field.reference], 150.1, 2.2)
    assert result.filter == band


def test_absent_target_gives_upper_limit():
    field = simulate_field(3, target_mag=None)
    result = calibrate(field.catalog, [field.reference], 150.1, 2.2)
    assert result.limit and result.mag_err == -1
    assert (result.ra, result.dec) == (150.1, 2.2)
    assert result.limiting_mag == pytest.approx(field.truth["limiting_mag"], abs=0.3)
    assert result.mag == result.limiting_mag


def test_robust_to_outliers_and_offset_with_automatic_radius():
    field = simulate_field(4, outlier_fraction=0.3, offset_arcsec=(2.0, -1.5))
    result = calibrate(field.catalog, [field.reference], 150.1, 2.2)
    assert abs(result.fit.zeropoint_at(0.5) - 25.3) <= 0.01
    assert not result.limit and abs(result.mag - 16.0) <= 3 * result.mag_err
    assert result.match_dist < 2.0
    assert any("shifted by -2.0" in line for line in result.log)


def test_junk_rows_excluded():
    field = simulate_field(5, n_junk=40)
    result = calibrate(field.catalog, [field.reference], 150.1, 2.2)
    fit = result.fit
    assert np.all(np.abs(fit.inst_mag) < 90)
    assert any("junk_mag 20" in line and "bad_mag_err 20" in line for line in result.log)


@pytest.mark.parametrize("n_match", [0, 1, 2, 3])
def test_few_matches_raise_clear_error(n_match):
    field = simulate_field(6, n_stars=400)
    ref = field.reference
    keep = np.zeros(len(ref), dtype=bool)
    keep[:n_match] = True
    ref.ra, ref.dec = ref.ra[keep], ref.dec[keep]
    ref.bands = {b: (m[keep], e[keep]) for b, (m, e) in ref.bands.items()}
    with pytest.raises(CalibrationError) as excinfo:
        calibrate(field.catalog, [ref], 150.1, 2.2, match_dist_arcsec=2.0)
    message = str(excinfo.value)
    if n_match == 0:
        assert message.startswith("no reference stars matched within 2.0 arcsec (0 of")
    else:
        assert "quality checks" in message and "need at least 5" in message


def test_forced_and_auto_identical():
    field = simulate_field(8)
    args = (field.catalog, [field.reference], 150.1, 2.2)
    auto = calibrate(*args).to_dict()
    for forced in ("SIM/R", "any/R", "sim/any"):
        other = calibrate(*args, force_filter=forced).to_dict()
        auto_numbers = {k: v for k, v in auto.items() if k != "log"}
        assert {k: v for k, v in other.items() if k != "log"} == auto_numbers


def test_forced_other_band_is_honoured_and_missing_one_explained():
    field = simulate_field(8)
    args = (field.catalog, [field.reference], 150.1, 2.2)
    assert calibrate(*args, force_filter="SIM/V").filter == "V"
    with pytest.raises(CalibrationError, match=r"forced filter APASS/V not available; available:"):
        calibrate(*args, force_filter="APASS/V")


def test_allowed_filters_restrict_choice_when_possible():
    field = simulate_field(8)
    args = (field.catalog, [field.reference], 150.1, 2.2)
    assert calibrate(*args, allowed_filters=["V", "I"]).filter in ("V", "I")
    assert calibrate(*args, allowed_filters=["Z"]).filter == "R"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("no", None),
        ("NO", None),
        ("APASS/V", ("APASS", "V")),
        (" any/V ", (None, "V")),
        ("APASS/any", ("APASS", None)),
        ("any/any", None),
    ],
)
def test_parse_force_filter(value, expected):
    assert parse_force_filter(value) == expected


@pytest.mark.parametrize("value", ["V", "APASS/", "/V", "a/b/c", "APASS V"])
def test_parse_force_filter_rejects_bad_syntax(value):
    with pytest.raises(ValueError, match="forceFilter"):
        parse_force_filter(value)


def test_one_calibrated_frame_measures_several_alerts_without_changing():
    """The frame is calibrated once; measuring an alert on it reads it and changes nothing, so
    each alert's measurement is the one a calibration for that alert alone gives."""
    from calib.alert import measure_alert
    from calib.frame import calibrate_frame
    from calib.pipeline import calibration_result

    field = simulate_field(5)
    truth = field.truth
    alert = (truth["target_ra"], truth["target_dec"])
    elsewhere = (truth["target_ra"] + 0.02, truth["target_dec"] - 0.03)
    frame = calibrate_frame(field.catalog, [field.reference], alert)
    events = len(frame.log)
    with pytest.raises(AttributeError):
        frame.fit = None  # frozen
    first = calibration_result(frame, measure_alert(frame, alert)).to_dict()
    other = calibration_result(frame, measure_alert(frame, elsewhere)).to_dict()
    again = calibration_result(frame, measure_alert(frame, alert)).to_dict()
    assert len(frame.log) == events
    assert again == first
    assert first == calibrate(field.catalog, [field.reference], *alert).to_dict()
    assert other == calibrate(field.catalog, [field.reference], *elsewhere).to_dict()
    assert other["mag"] != first["mag"]
    assert all(e.stage for e in frame.log)

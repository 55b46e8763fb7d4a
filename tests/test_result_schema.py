"""The result vocabulary: one schema (numpy-free), the client's copy of it agrees, and the
mappings to the follow-up row and the light curve keep every key and the limit rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from calib import schema
from calserv_client.batch import RESULT_KEYS as CLIENT_KEYS

ROOT = Path(__file__).resolve().parents[1]
#: Keys of the job JSON that are not result keys but that the client records.
JOB_KEYS = {"alert", "followup_id", "image_link", "status_url"}


def test_the_schema_imports_without_numpy():
    code = "import sys, calib.schema; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_the_client_copy_agrees_with_the_schema():
    unknown = set(CLIENT_KEYS) - set(schema.RESULT_KEYS) - JOB_KEYS
    assert not unknown, f"the client records keys the server does not send: {unknown}"
    stored = set(schema.FOLLOWUP_COLUMNS.values()) | {"cutout_url"}
    missing = stored - set(CLIENT_KEYS)
    assert not missing, f"the client does not record result keys of a follow-up: {missing}"


def test_result_dict_fills_defaults_and_applies_the_limit_rule():
    out = schema.result_dict({"survey": "G", "filter": "V", "mag": 18.0, "mag_err": 0.3,
                              "limit": True, "zeropoint": 25.0, "zeropoint_err": 0.01,
                              "npoints": 40, "ra": 1.0, "dec": 2.0,
                              "scatter": float("nan")})  # fmt: skip
    assert out["mag_err"] == schema.LIMIT_MAG_ERR == -1.0
    assert out["scatter"] is None  # not NaN: the JSON column refuses NaN
    assert out["target_flags"] == [] and out["warnings"] == [] and out["zeropoint_order"] == 0
    assert out["cutout_url"] is None
    assert set(out) == {f.name for f in schema.RESULT_FIELDS if f.source == "calib"}


def test_followup_row_and_light_curve_round_trip():
    result = schema.result_dict({"survey": "APASS", "filter": "V", "mag": 15.0, "mag_err": 0.05,
                                 "limit": False, "zeropoint": 22.1, "zeropoint_err": 0.02,
                                 "npoints": 12, "ra": 1.0, "dec": 2.0, "zeropoint_order": 2,
                                 "target_flags": ["blended"],
                                 "warnings": ["few stars"]})  # fmt: skip
    row = schema.followup_values(result)
    assert row["is_limit"] is False and row["zeropoint_order"] == 2
    back = schema.followup_result(row)
    assert back == {key: result[key] for key in schema.FOLLOWUP_COLUMNS.values()}
    context = {"mjd": 60000.0, "date_obs": "2023-02-25T00:00:00.000Z"}
    point = schema.lightcurve_row(back, **context, observatory="A", followup_id=7)
    assert set(schema.LIGHTCURVE_JSON_COLUMNS) <= set(point)
    assert point["magerr"] == 0.05 and point["caliberr"] == 0.02
    assert point["target_flags"] == ["blended"]
    limit = schema.followup_result({**row, "is_limit": True, "mag_err": 0.3})
    assert limit["mag_err"] == -1.0


def test_calibration_result_to_dict_follows_the_schema():
    from calib.pipeline import CalibrationResult

    r = CalibrationResult(survey="S", filter="V", mag=16.0, mag_err=0.02, limit=False,
                          limiting_mag=19.0, zeropoint=23.0, zeropoint_err=0.01,
                          colour_term=None, scatter=0.03, npoints=30, outlier_fraction=0.1,
                          match_dist=1.5, ra=10.0, dec=20.0)  # fmt: skip
    out = r.to_dict()
    assert set(out) == {f.name for f in schema.RESULT_FIELDS if f.source == "calib"}
    for f in schema.RESULT_FIELDS:
        if f.source == "calib" and out[f.name] is not None:
            assert isinstance(out[f.name], f.type), f.name

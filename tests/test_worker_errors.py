"""Only `calib`'s own errors become a failed job with the observer's reason; a programming
error (a bare ValueError or IndexError from deep in the science) is an internal error."""

from __future__ import annotations

import pytest

from calib import CalibrationError, CatalogError, calibrate, parse_force_filter
from calib.simulate import simulate_field
from config import settings
from workers.calibration import _reason

INTERNAL = "internal error while calibrating"


@pytest.mark.parametrize(
    "error", [CalibrationError("no survey/filter passed"), CatalogError("no magnitude column")]
)
def test_calib_errors_fail_the_job_with_their_reason(error):
    assert _reason(error, settings())[0] == str(error)


@pytest.mark.parametrize("error", [ValueError("x must be positive"), IndexError("index -1")])
def test_anything_else_is_an_internal_error(error):
    assert _reason(error, settings())[0] == INTERNAL


def test_user_mistakes_raise_calibration_error():
    with pytest.raises(CalibrationError, match="forceFilter"):
        parse_force_filter("APASS V")
    field = simulate_field(0, n_stars=300)
    for ra, dec, kwargs in (
        (95.0, 100.0, {}),  # Dec out of range
        (field.truth["target_ra"] + 5, field.truth["target_dec"], {}),  # off the frame
        (field.truth["target_ra"], field.truth["target_dec"], {"force_filter": "NOPE/V"}),
    ):
        with pytest.raises(CalibrationError):
            calibrate(field.catalog, [field.reference], ra, dec, **kwargs)

"""The calibration's full answer on fixed frames, pinned: a refactoring changes no number.

Each case is a frame of `test_realistic` (rendered and measured by the real Source Extractor),
a `simulate_field` catalogue, or a rendered FITS image through the image path, with a fixed
seed. Its result JSON (numbers rounded to 1e-9, the log, warnings, candidates) or its error
message must equal the stored one in ``tests/data/golden/calibration_results.json``.

A change that is meant to alter results regenerates the file:
``CALSERV_UPDATE_GOLDEN=1 pytest tests/calib/test_golden_results.py``, and its diff is part of
the review.
"""

from __future__ import annotations

import json
import math
import os

import pytest

from calib import CalibrationError, RefCatalog, calibrate
from calib.image import load_image
from calib.imaging import calibrate_image
from calib.simulate import simulate_field
from simfields.sextractor import render_field, sextractor_available
from tests.helpers import DATA
from tests.synth_image import reference_columns, synth_frame

GOLDEN = DATA / "golden" / "calibration_results.json"

COARSE = {
    "pixscale": 5.0, "fwhm_pix": 1.6, "npix": 200, "density_per_arcmin2": 0.5,
    "bright_mag": 8.0, "faint_mag": 17.0, "zeropoint": 22.0, "ref_depth_mag": 17.5,
}  # fmt: skip
VIGNETTED = {"npix": 640, "zeropoint": 26.0, "density_per_arcmin2": 60.0, "vignetting_mag": 0.1}
CROWDED = {"npix": 250, "density_per_arcmin2": 400.0, "faint_mag": 21.0}
FEW = {"faint_mag": 19.0, "ref_depth_mag": 13.6, "npix": 260}

#: name: (render_field seed, its options, calibrate's options)
RENDERED = {
    "plain": (873603660, {"npix": 400, "density_per_arcmin2": 40.0, "target_mag": 17.0}, {}),
    "coarse-offset": (11, COARSE | {"target_offset_arcsec": (2.0, 0.0)}, {}),
    "coarse-neighbour": (1783218293, COARSE | {"target_neighbour": (12.0, 13.5)}, {}),
    "saturated": (12, {"target_mag": 9.0}, {}),
    "edge": (1808650543, {"npix": 240, "target_mag": 14.0, "target_offset_arcsec": (119.0, 0.0)},
             {}),
    "absent": (13, {"target_mag": None}, {}),
    "vignetted": (600000, VIGNETTED, {}),
    "vignetted-few-effective": (1438807958, VIGNETTED | {"npix": 500},
                                {"allowed_filters": ["R", "I"]}),
    "clipped-bright": (1238838165, {}, {}),
    "crowded": (700003, CROWDED | {"target_mag": 15.0}, {}),
    "crowded-neighbour": (14, {"npix": 250, "density_per_arcmin2": 400.0, "faint_mag": 21.0,
                               "target_mag": 16.0, "target_neighbour": (2.5, 14.8)}, {}),
    "few-stars": (900002, FEW, {"allowed_filters": ["R", "I"]}),
    "few-stars-wrong-filters": (900002, FEW, {"allowed_filters": ["u"]}),
    "implausible-colour": (960106, {"bright_mag": 15.0, "npix": 240}, {}),
    "wcs-offset": (15, {"wcs_offset_arcsec": (5.0, -1.0)}, {"match_dist_arcsec": 2.0}),
    "chance-match": (16, {"wcs_offset_arcsec": (40.0, 25.0), "density_per_arcmin2": 60.0},
                     {"match_dist_arcsec": 2.0}),
    "forced-filter": (17, {}, {"force_filter": "SIM/V"}),
    "no-bright-calibrators": (918841693, {}, {}),
}  # fmt: skip

#: name: (simulate_field seed, its options, calibrate's options)
SIMULATED = {
    "sim-default": (1, {}, {}),
    "sim-absent": (3, {"target_mag": None}, {}),
    "sim-offset-outliers": (4, {"outlier_fraction": 0.3, "offset_arcsec": (2.0, -1.5)}, {}),
    "sim-V-band": (7, {"band": "V"}, {"allowed_filters": ["V"]}),
}

#: name: (synth_frame's arguments, its keyword options)
IMAGES = {
    "image-detected": (((-30, 60), 16.5), {"seed": 100}),
    "image-saturated": (((90, 60), 9.0), {"seed": 7}),
    "image-saturated-no-keyword": (((90, 60), 9.0), {"seed": 7, "write_saturate": False}),
    "image-absent": (((-150, 0), None), {"seed": 21}),
    "image-bright": (((-30, 60), 12.5), {"seed": 200}),
    "image-wcs-error": (((20, -40), 15.0), {"seed": 5, "header_error_arcsec": (6.0, -3.0)}),
}


def rounded(value):
    """``value`` with every float rounded to 1e-9 (NaN and infinities as strings)."""
    if isinstance(value, float):
        return round(value, 9) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def answer(run) -> dict:
    """The result JSON of ``run()``, or the error it raises."""
    try:
        return {"result": rounded(run().to_dict())}
    except CalibrationError as exc:
        return {"error": str(exc)}


def compute(name: str) -> dict:
    if name in RENDERED:
        seed, options, kwargs = RENDERED[name]
        field = render_field(seed, **options)
        t = field.truth
        return answer(
            lambda: calibrate(
                field.catalog, [field.reference], t["target_ra"], t["target_dec"], **kwargs
            )
        )
    if name in SIMULATED:
        seed, options, kwargs = SIMULATED[name]
        field = simulate_field(seed, **options)
        t = field.truth
        return answer(
            lambda: calibrate(
                field.catalog, [field.reference], t["target_ra"], t["target_dec"], **kwargs
            )
        )
    args, options = IMAGES[name]
    frame, truth = synth_frame(*args, **options)
    ref = RefCatalog.from_columns("SYNTH", reference_columns())
    return answer(
        lambda: calibrate_image(
            load_image(frame.to_fits()), lambda *_: [ref], truth.target_ra, truth.target_dec
        )
    )


CASES = [*RENDERED, *SIMULATED, *IMAGES]


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


@pytest.mark.skipif(
    not sextractor_available(), reason="source-extractor not installed (deploy/bootstrap.sh)"
)
@pytest.mark.parametrize("name", CASES)
def test_result_equals_the_pinned_one(name, golden):
    got = compute(name)
    if os.environ.get("CALSERV_UPDATE_GOLDEN"):
        stored = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        stored[name] = got
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n")
        return
    assert name in golden, f"no pinned result for {name}: set CALSERV_UPDATE_GOLDEN=1"
    assert got == golden[name]

"""FITS images through the real worker: an observer uploads the frame itself in the `sexCat` field
(or `image`); the worker extracts, checks the WCS, calibrates and measures the alert by forced
photometry. Frames are rendered with known truth (`tests.synth_image`)."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import time

import numpy as np
import pytest
from astropy.io import fits

from tests.helpers import add_alert, wait_job
from tests.synth_image import synth_frame


def upload(client, hashtag: str, data: bytes, name: str, event: str, field="sexCat", **fields):
    form = {
        "EventID": event,
        "hashtag": hashtag,
        "MJD": "60999.85",
        "noPlot": "1",
        "forceFilter": "no",
        "dryRun": "1",
        "outputFormat": "json",
        field: (io.BytesIO(data), name),
    }
    form.update({k: str(v) for k, v in fields.items()})
    return client.post("/upload", data=form, content_type="multipart/form-data")


def run(client, observatory, app, name, frame_bytes, truth, filename="frame.fits", **fields):
    add_alert(app, f"ivo://images/{name}", name, truth.target_ra, truth.target_dec)
    resp = upload(client, observatory["hashtag"], frame_bytes, filename, name, **fields)
    assert resp.status_code == 202, resp.get_data(as_text=True)
    return wait_job(client, resp.get_json()["job_id"], timeout=120)


@pytest.mark.parametrize(
    ("compression", "filename", "offset", "mag"),
    [
        (None, "frame.fits", (-30, 60), 16.0),
        ("gzip", "frame.fits.gz", (-120, -150), 17.0),
        ("rice", "frame.fz", (-30, 60), 15.0),
    ],
)
def test_target_magnitude_within_its_error(
    client, worker, observatory, app, compression, filename, offset, mag
):
    # The header WCS is 3" off (a pointing model's error): the worker finds and corrects it.
    frame, truth = synth_frame(offset, mag, header_error_arcsec=(2.4, -1.8), seed=3)
    result = run(
        client,
        observatory,
        app,
        f"ImgTarget{compression}",
        frame.to_fits(compression),
        truth,
        filename=filename,
    )
    assert result["status"] == "succeeded", result
    assert result["survey"] == "SYNTH" and result["filter"] == "R"
    assert result["limit"] is False
    assert abs(result["colour_term"] - 0.07) < 0.02
    assert 0 < result["mag_err"] < 0.15
    # One frame: within 2 sigma (a 1-sigma bar misses the truth in 32 % of frames; the unit
    # test tests/calib/test_image_photometry.py checks the error bars' coverage over many frames).
    assert abs(result["mag"] - mag) <= 2 * result["mag_err"], result["log"]
    assert result["target_flags"] == []
    assert any("WCS" in w for w in result["warnings"])
    assert result["cutout_url"] is None  # noPlot=1


def test_absent_target_limit_is_the_5_sigma_depth(client, worker, observatory, app):
    frame, truth = synth_frame((-150, 0), None, seed=5)
    result = run(client, observatory, app, "ImgAbsent", frame.to_fits(), truth)
    assert result["status"] == "succeeded", result
    assert result["limit"] is True and result["mag_err"] == -1
    assert abs(result["mag"] - truth.depth) <= 0.2, (result["mag"], truth.depth)
    assert result["limiting_mag"] == pytest.approx(result["mag"])


def test_saturated_target_is_flagged_from_the_data_plateau(client, worker, observatory, app):
    # No SATURATE keyword: the saturation is read from the plateau of clipped pixels.
    frame, truth = synth_frame((90, 60), 9.0, write_saturate=False, seed=7)
    assert "SATURATE" not in frame.header
    result = run(
        client, observatory, app, "ImgSaturated", frame.to_fits(), truth, noPlot=0, field="image"
    )
    assert result["status"] == "succeeded", result
    assert "saturated" in result["target_flags"]
    assert any("saturated" in w for w in result["warnings"])
    # The cutout around the alert, with the aperture, beside the calibration plot.
    assert result["cutout_url"].endswith(f"/jobs/{result['job_id']}/cutout.png")
    png = client.get(f"/jobs/{result['job_id']}/cutout.png")
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    page = client.get(f"/jobs/{result['job_id']}", headers={"Accept": "text/html"})
    assert b'class="cutout"' in page.data and b"saturated" in page.data


def test_image_without_wcs_fails_with_what_to_do(client, worker, observatory, app):
    frame, truth = synth_frame((0, 30), None, seed=9)
    header = fits.Header({"GAIN": 1.0})
    raw = fits.PrimaryHDU(frame.data, header)
    buf = io.BytesIO()
    raw.writeto(buf)
    result = run(client, observatory, app, "ImgNoWcs", buf.getvalue(), truth)
    assert result["status"] == "failed"
    assert "WCS" in result["error"] and "astrometry.net" in result["error"]
    assert "catalogue" in result["error"]


def test_wrong_wcs_fails_with_what_to_do(client, worker, observatory, app):
    # A header WCS 10' away from the stars: nothing to correct, the frame must be solved.
    frame, truth = synth_frame((0, 30), None, header_error_arcsec=(600.0, 0.0), seed=9)
    result = run(client, observatory, app, "ImgWrongWcs", frame.to_fits(), truth)
    assert result["status"] == "failed"
    assert "astrometry.net" in result["error"]


def _fits_header_only(cards: dict, data_bytes: int = 0) -> bytes:
    header = "".join(f"{k:<8}= {v!s:>20}".ljust(80) for k, v in cards.items()) + "END".ljust(80)
    header = header.encode().ljust(-(-len(header) // 2880) * 2880, b" ")
    return header + b"\0" * data_bytes


HOSTILE = {
    "absurd NAXIS": _fits_header_only(
        {"SIMPLE": "T", "BITPIX": -32, "NAXIS": 2, "NAXIS1": 10**9, "NAXIS2": 10**9}
    ),
    "3-D cube": _fits_header_only(
        {"SIMPLE": "T", "BITPIX": 16, "NAXIS": 3, "NAXIS1": 64, "NAXIS2": 64, "NAXIS3": 5},
        64 * 64 * 5 * 2,
    ),
    "truncated": _fits_header_only(
        {"SIMPLE": "T", "BITPIX": -32, "NAXIS": 2, "NAXIS1": 512, "NAXIS2": 512}, 100_000
    ),
    "huge header": _fits_header_only(
        {"SIMPLE": "T", "BITPIX": 8, "NAXIS": 0, **{f"K{i}": i for i in range(20000)}}
    ),
    "negative NAXIS": _fits_header_only(
        {"SIMPLE": "T", "BITPIX": 16, "NAXIS": 2, "NAXIS1": -5, "NAXIS2": 64}
    ),
    "bad BITPIX": _fits_header_only(
        {"SIMPLE": "T", "BITPIX": 12, "NAXIS": 2, "NAXIS1": 64, "NAXIS2": 64}, 64 * 64 * 2
    ),
}


@pytest.fixture(scope="module")
def hostile_alert(app):
    add_alert(app, "ivo://images/hostile", "ImgHostile", 150.1, 2.2)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_image_headers_get_a_clean_422(client, worker, observatory, hostile_alert, kind):
    resp = upload(client, observatory["hashtag"], HOSTILE[kind], "x.fits", "ImgHostile")
    assert resp.status_code == 422, (kind, resp.status_code, resp.get_data(as_text=True))
    body = resp.get_json()
    assert body["error"].startswith("sexCat:") and body["detail"]
    # Gzipped, only the header is decompressed by the web tier: what it shows gets a 422, a
    # truncation (the decompressed size is unknown there) a failed job with the same reason.
    packed = gzip.compress(HOSTILE[kind])
    resp = upload(client, observatory["hashtag"], packed, "x.gz", "ImgHostile")
    if resp.status_code == 202:
        result = wait_job(client, resp.get_json()["job_id"], timeout=60)
        assert result["status"] == "failed" and "truncated" in result["error"], result
    else:
        assert resp.status_code == 422 and resp.get_json()["error"] == body["error"]


def test_hostile_images_that_need_decoding_fail_with_a_reason(
    client, worker, observatory, hostile_alert
):
    """What only decoding reveals becomes a failed job with a reason; the worker lives on."""
    frame, _ = synth_frame((0, 30), None, shape=(256, 256), seed=11)
    nan = frame.data.copy()
    nan[:] = np.nan
    buf = io.BytesIO()
    fits.PrimaryHDU(nan, frame.header).writeto(buf)
    cases = {
        "all NaN": (buf.getvalue(), "no finite pixels"),
        "truncated gzip": (gzip.compress(frame.to_fits())[:-5000], "truncated or corrupt"),
        "corrupt tiles": (_corrupt_tiles(frame.to_fits("rice")), "could not be decoded"),
    }
    for kind, (data, words) in cases.items():
        resp = upload(client, observatory["hashtag"], data, "x.fits", "ImgHostile")
        assert resp.status_code == 202, (kind, resp.get_data(as_text=True))
        result = wait_job(client, resp.get_json()["job_id"], timeout=60)
        assert result["status"] == "failed", (kind, result)
        assert words in result["error"], (kind, result["error"])
    assert worker.proc.poll() is None


def _corrupt_tiles(data: bytes) -> bytes:
    """Overwrite the compressed tiles' heap (after the tile table) with junk."""
    raw = bytearray(data)
    heap = len(raw) // 2
    raw[heap : heap + 20000] = bytes(range(256)) * 78 + bytes(32)
    return bytes(raw)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_seed_curl_uploads_an_image_unchanged(live_server, observatory, app, tmp_path):
    """The seed's curl command, with a .fits.gz where the catalogue was, then polling."""
    frame, truth = synth_frame((-30, 60), 16.0, seed=13)
    add_alert(app, "ivo://images/curl", "ImgCurl", truth.target_ra, truth.target_dec)
    path = tmp_path / "frame.fits.gz"
    path.write_bytes(frame.to_fits("gzip"))
    fields = {
        "matchDist": "2", "EventID": "ivo://images/curl", "hashtag": observatory["hashtag"],
        "MJD": "59000.5", "expTime": "60", "noPlot": "1", "forceFilter": "no", "dryRun": "1",
        "outputFormat": "json", "wait": "30",
    }  # fmt: skip
    cmd = ["curl", "-s", "-F", f"sexCat=@{path};"]
    for k, v in fields.items():
        cmd += ["-F", f"{k}={v}"]
    url = f"{live_server}/upload"
    result = json.loads(subprocess.run([*cmd, url], capture_output=True, timeout=60).stdout)
    status_url = f"{live_server}/jobs/{result['job_id']}?outputFormat=json"
    for _ in range(300):  # wait=30 usually answers with the result already
        if result["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.2)
        poll = subprocess.run(["curl", "-s", status_url], capture_output=True, timeout=10)
        result = json.loads(poll.stdout)
    assert result["status"] == "succeeded", result
    assert abs(result["mag"] - 16.0) <= 2 * result["mag_err"]

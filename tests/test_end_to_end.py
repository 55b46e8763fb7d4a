"""The spine: an observer uploads a SExtractor catalogue, a real Celery worker calibrates it
against the real reference store, and the client polls the job until the calibrated magnitude."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from calib.schema import RESULT_KEYS, followup_result
from calserv_client.batch import RESULT_KEYS as CLIENT_KEYS
from db.models import Followup, Job
from db.session import session_scope
from tests.helpers import DATA, add_alert, wait_job

GAIA = DATA / "gaia-demo"
SYNTH = DATA / "synth-deep"


@pytest.fixture(scope="module")
def gaia_alert(app) -> dict:
    truth = json.loads((GAIA / "truth.json").read_text())
    add_alert(app, "ivo://e2e/gaia-demo", "E2EGaiaDemo", truth["target_ra"], truth["target_dec"])
    return truth


@pytest.fixture(scope="module")
def synth_alert(app) -> dict:
    truth = json.loads((SYNTH / "truth.json").read_text())
    add_alert(app, "ivo://e2e/synth-deep", "E2ESynthDeep", truth["target_ra"], truth["target_dec"])
    return truth


def upload(client, hashtag: str, path: Path, **fields) -> object:
    form = {
        "matchDist": "2",
        "EventID": "ivo://e2e/gaia-demo",
        "hashtag": hashtag,
        "MJD": "59000.5",
        "expTime": "60",
        "noPlot": "1",
        "forceFilter": "no",
        "dryRun": "1",
        "outputFormat": "json",
    }
    form.update({k: str(v) for k, v in fields.items()})
    form["sexCat"] = (path.open("rb"), path.name)
    return client.post("/upload", data=form, content_type="multipart/form-data")


@pytest.mark.parametrize("catalogue", ["frame.cat", "frame.ldac"])
def test_gaia_demo_frame_is_calibrated_within_003_mag(
    client, worker, observatory, gaia_alert, catalogue
):
    resp = upload(client, observatory["hashtag"], GAIA / catalogue, dryRun=0, MJD=60999.85)
    assert resp.status_code == 202, resp.get_data(as_text=True)
    body = resp.get_json()
    assert resp.headers["Location"] == f"/jobs/{body['job_id']}"
    assert body["status"] in ("queued", "running", "succeeded")

    result = wait_job(client, body["job_id"])
    assert result["status"] == "succeeded", result
    assert result["survey"] == "GaiaDR3" and result["filter"] == "G"
    assert abs(result["mag"] - gaia_alert["target_mag"]) <= 0.03
    assert result["limit"] is False
    assert abs(result["zeropoint"] - gaia_alert["zp_true"]) <= 0.03
    assert result["followup_id"] is not None
    assert set(RESULT_KEYS) <= set(result) and set(CLIENT_KEYS) <= set(result)
    with session_scope() as s:
        row = s.get(Followup, result["followup_id"])
        assert row.job_id == body["job_id"]
        assert abs(row.mag - result["mag"]) < 1e-9
        assert row.mjd == pytest.approx(60999.85)
        # The row holds every result key it has a column for, as the job JSON shows it.
        assert followup_result(row) == {k: result[k] for k in followup_result(row)}
    point = client.get("/alerts/E2EGaiaDemo/lightcurve?format=json").get_json()["items"]
    mine = next(p for p in point if p["followup_id"] == result["followup_id"])
    assert mine["target_flags"] == result["target_flags"]
    assert mine["zeropoint_order"] == result["zeropoint_order"]
    assert mine["magerr"] == result["mag_err"] and mine["caliberr"] == result["zeropoint_err"]


def test_dry_run_stores_no_followup_and_renders_plot(client, worker, observatory, synth_alert):
    resp = upload(
        client,
        observatory["hashtag"],
        SYNTH / "frame.cat",
        EventID="E2ESynthDeep",
        noPlot=0,
        matchDist=0,
    )
    assert resp.status_code == 202
    result = wait_job(client, resp.get_json()["job_id"])
    assert result["status"] == "succeeded", result
    assert result["filter"] == "R"
    assert abs(result["mag"] - synth_alert["target_mag"]) <= 0.05
    assert result["followup_id"] is None
    with session_scope() as s:
        assert (
            s.scalars(select(Followup).where(Followup.job_id == result["job_id"])).first() is None
        )
    png = client.get(result["image_link"].replace("http://localhost", ""))
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    # Streamed from the file store, with a validator: a browser's revalidation costs no body.
    again = client.get(png.request.path, headers={"If-None-Match": png.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    html = client.get(f"/jobs/{result['job_id']}", headers={"Accept": "text/html"})
    assert b"succeeded" in html.data and b"calibration plot" in html.data


def test_identical_reupload_returns_the_same_job(client, worker, observatory, gaia_alert):
    first = upload(client, observatory["hashtag"], GAIA / "frame.cat", comment="dup").get_json()
    second = upload(client, observatory["hashtag"], GAIA / "frame.cat", comment="dup")
    assert second.get_json()["job_id"] == first["job_id"]
    # a comment is presentation: the same observation is the same job
    same = upload(client, observatory["hashtag"], GAIA / "frame.cat", comment="other")
    assert same.get_json()["job_id"] == first["job_id"]
    other = upload(client, observatory["hashtag"], GAIA / "frame.cat", MJD="59000.75")
    assert other.get_json()["job_id"] != first["job_id"]
    with session_scope() as s:
        n = s.scalars(select(Job).where(Job.id == first["job_id"])).all()
        assert len(n) == 1


def test_wait_returns_the_final_result(client, worker, observatory, gaia_alert):
    resp = upload(client, observatory["hashtag"], GAIA / "frame.cat", wait=30, comment="wait")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "succeeded"


def test_forced_filter_that_does_not_exist_fails_with_a_reason(
    client, worker, observatory, gaia_alert
):
    resp = upload(client, observatory["hashtag"], GAIA / "frame.cat", forceFilter="APASS/V")
    result = wait_job(client, resp.get_json()["job_id"])
    assert result["status"] == "failed"
    assert "APASS" in result["error"]


def test_catalogue_without_magnitudes_is_refused_at_upload(
    client, observatory, gaia_alert, tmp_path
):
    bad = tmp_path / "nomag.cat"
    bad.write_text("#   1 ALPHA_J2000  RA [deg]\n#   2 DELTA_J2000  Dec [deg]\n120.0 45.0\n")
    resp = upload(client, observatory["hashtag"], bad)
    assert resp.status_code == 422
    assert "no magnitude column" in resp.get_json()["error"]
    assert "columns found: ALPHA_J2000, DELTA_J2000" in resp.get_json()["error"]


def test_catalogue_without_usable_magnitudes_fails_with_a_reason(
    client, worker, observatory, gaia_alert, tmp_path
):
    bad = tmp_path / "junkmag.cat"
    bad.write_text("#   1 ALPHA_J2000\n#   2 DELTA_J2000\n#   3 MAG_AUTO\n120.0 45.0 99.0\n")
    result = wait_job(client, upload(client, observatory["hashtag"], bad).get_json()["job_id"])
    assert result["status"] == "failed"
    assert "no usable sources" in result["error"].lower()

    # Sending the same file again retries the same job from scratch (here: the same verdict).
    again = upload(client, observatory["hashtag"], bad)
    assert again.status_code == 202 and again.get_json()["job_id"] == result["job_id"]
    retried = wait_job(client, result["job_id"])
    assert retried["status"] == "failed" and retried["attempts"] == 1
    assert retried["finished_at"] >= result["finished_at"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_seed_curl_submit_then_poll(live_server, observatory, gaia_alert):
    """The exact curl call of the README, then polling the Location like a shell script."""
    cmd = [
        "curl",
        "-s",
        "-i",
        "-F",
        "matchDist=2",
        "-F",
        "EventID=ivo://e2e/gaia-demo",
        "-F",
        f"sexCat=@{GAIA / 'frame.cat'};",
        "-F",
        f"hashtag={observatory['hashtag']}",
        "-F",
        "MJD=59001.5",
        "-F",
        "expTime=60",
        "-F",
        "noPlot=1",
        "-F",
        "forceFilter=no",
        "-F",
        "dryRun=1",
        "-F",
        "outputFormat=json",
        "-F",
        "comment=curl",
        f"{live_server}/upload",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=os.environ).stdout
    head, _, body = out.partition("\n\n")  # text mode folds \r\n
    assert head.startswith("HTTP/1.1 202"), out
    location = next(
        line.split(":", 1)[1].strip()
        for line in head.splitlines()
        if line.lower().startswith("location:")
    )
    assert location == f"/jobs/{json.loads(body)['job_id']}"
    for _ in range(300):
        status = subprocess.run(
            ["curl", "-s", f"{live_server}{location}?outputFormat=json"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        result = json.loads(status)
        if result["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert result["status"] == "succeeded", result
    assert abs(result["mag"] - gaia_alert["target_mag"]) <= 0.03

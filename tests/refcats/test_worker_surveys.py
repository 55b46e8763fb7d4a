"""A hats-import collection registered with `flask refcat register` calibrates a frame through the
real Celery worker, read in place, over HTTP and over S3; a survey that breaks after
registration shows up in the job's ``warnings`` instead of being silently skipped."""

import json
import shutil

import pytest

from tests.helpers import DATA, add_alert, wait_job
from tests.refcats.helpers import collection_location
from tests.refcats.servers import BAND_MAP

SYNTH = DATA / "synth-deep"


@pytest.fixture(scope="module")
def synth_truth(app) -> dict:
    truth = json.loads((SYNTH / "truth.json").read_text())
    add_alert(
        app, "ivo://refcats/synth-deep", "RefcatsSynth", truth["target_ra"], truth["target_dec"]
    )
    return truth


def upload(client, hashtag, force_filter):
    form = {
        "EventID": "RefcatsSynth",
        "hashtag": hashtag,
        "MJD": "60999.85",
        "expTime": "60",
        "matchDist": "0",
        "noPlot": "1",
        "dryRun": "1",
        "forceFilter": force_filter,
        "outputFormat": "json",
        "sexCat": ((SYNTH / "frame.cat").open("rb"), "frame.cat"),
    }
    resp = client.post("/upload", data=form, content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_data(as_text=True)
    return wait_job(client, resp.get_json()["job_id"], timeout=120)


def register(runner, name, location, *extra):
    result = runner.invoke(args=["refcat", "register", name, location, *BAND_MAP, *extra])
    assert result.exit_code == 0, result.output
    return result


def remove(runner, name):
    result = runner.invoke(args=["refcat", "remove", name])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("where", ["local", "http", "s3"])
def test_registered_collection_calibrates_through_the_worker(
    client, runner, worker, observatory, synth_truth, viz_collection, where, request
):
    name = f"VIZ{where.upper()}"
    location, extra = collection_location(where, viz_collection, request)
    register(runner, name, location, *extra)
    try:
        result = upload(client, observatory["hashtag"], f"{name}/R")
    finally:
        remove(runner, name)
    assert result["status"] == "succeeded", result
    assert result["survey"] == name and result["filter"] == "R"
    assert abs(result["mag"] - synth_truth["target_mag"]) <= 0.05
    assert abs(result["zeropoint"] - synth_truth["zp_true"]) <= 0.05
    assert result["warnings"] == []


def test_survey_broken_after_registration_is_a_job_warning(
    client, runner, worker, observatory, synth_truth, viz_collection, tmp_path
):
    broken = tmp_path / "broken"
    shutil.copytree(viz_collection, broken)
    register(runner, "VIZBROKEN", str(broken))
    shutil.rmtree(broken / "viz" / "dataset")
    try:
        result = upload(client, observatory["hashtag"], "no")  # calibrated with the others
        forced = upload(client, observatory["hashtag"], "VIZBROKEN/R")
    finally:
        remove(runner, "VIZBROKEN")
    assert result["status"] == "succeeded", result
    assert result["survey"] != "VIZBROKEN"
    assert len(result["warnings"]) == 1
    assert result["warnings"][0].startswith("reference survey VIZBROKEN skipped")
    assert forced["status"] == "failed"
    assert "reference survey VIZBROKEN skipped" in forced["error"]

"""The batch client against the real service: gunicorn web tier, a Celery worker, the Gaia demo
reference store. An observer uploads a night of catalogues and gets calibrated magnitudes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import pytest
from sqlalchemy import func, select

from calserv_client import CalservError, Client
from db.models import Alert, Job
from db.session import session_scope
from tests.client.clienthelpers import CLI, GAIA, cli_env, default_sigint, run_cli

pytestmark = pytest.mark.usefixtures("worker")


def _jobs_of(ivorn: str) -> int:
    with session_scope() as s:
        return s.scalar(
            select(func.count(Job.id))
            .join(Alert, Job.alert_id == Alert.id)
            .where(Alert.ivorn == ivorn)
        )


def _night(tmp_path, truth: dict, tag: str, n_cat: int = 2, first_mjd: float = 60999.85) -> tuple:
    """A directory of distinct observations (by MJD: a comment alone does not make a new job):
    frame.cat copies and frame.ldac, plus a manifest. frame.ldac takes its MJD from its header
    when `first_mjd` is the default, else the next MJD after the copies'."""
    night = tmp_path / "night"
    night.mkdir()
    rows = ["file,event,mjd,exptime,filter,comment"]
    for i in range(n_cat):
        shutil.copy(GAIA / "frame.cat", night / f"frame{i}.cat")
        rows.append(f"frame{i}.cat,{truth['ivorn']},{first_mjd + i / 1000},60,G,{tag} copy {i}")
    shutil.copy(GAIA / "frame.ldac", night / "frame.ldac")
    ldac_mjd = "" if first_mjd == 60999.85 else f"{first_mjd + n_cat / 1000}"
    rows.append(f"frame.ldac,{truth['name']},{ldac_mjd},,,{tag} ldac")  # "": from the header
    (night / "night.csv").write_text("\n".join(rows) + "\n")
    return night, night / "night.csv"


def test_library_upload_and_wait(live_server, observatory, gaia_truth):
    c = Client(live_server, observatory["hashtag"], poll_interval=0.2)
    job = c.upload(GAIA / "frame.cat", gaia_truth["ivorn"], mjd=60999.85, comment="library")
    assert job["status"] in ("queued", "running", "succeeded")
    result = c.wait(job["job_id"], timeout=120)
    assert result["status"] == "succeeded", result
    assert abs(result["mag"] - gaia_truth["target_mag"]) <= 0.03
    assert result["survey"] == "GaiaDR3" and result["filter"] == "G"
    # an identical re-upload is the same job
    again = c.upload(GAIA / "frame.cat", gaia_truth["ivorn"], mjd=60999.85, comment="library")
    assert again["job_id"] == job["job_id"]


def test_batch_of_a_night_all_succeed_within_003_mag(live_server, gaia_truth, key_env, tmp_path):
    night, manifest = _night(tmp_path, gaia_truth, "batch", n_cat=3)
    before = _jobs_of(gaia_truth["ivorn"])
    out = run_cli(
        "--manifest",
        str(manifest),
        "--url",
        live_server,
        "--jobs",
        "3",
        "--json",
        "-v",
        env=key_env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["summary"]["counts"] == {"succeeded": 4}
    assert data["summary"]["state"] == str(night / ".calserv-upload-state.json")
    assert len({r["job_id"] for r in data["results"]}) == 4
    for r in data["results"]:
        assert r["status"] == "succeeded", r
        assert abs(r["mag"] - gaia_truth["target_mag"]) <= 0.03, r
        assert r["filter"] == "G" and r["limit"] is False and r["followup_id"] is not None
    ldac = next(r for r in data["results"] if r["file"].endswith(".ldac"))
    # MJD-OBS is the exposure's start: mid-exposure is 30 s (EXPTIME/2) later
    assert ldac["mjd"] == pytest.approx(60999.85 + 30 / 86400, abs=1e-9)
    assert ldac["mjd_source"] == "header"
    assert _jobs_of(gaia_truth["ivorn"]) == before + 4

    # A second run finds everything done in the state file and sends nothing.
    again = run_cli("--manifest", str(manifest), "--url", live_server, "--json", env=key_env)
    assert again.returncode == 0, again.stderr
    results = json.loads(again.stdout)["results"]
    assert all(r["resumed"] and r["status"] == "succeeded" for r in results)
    assert [r["job_id"] for r in results] == [r["job_id"] for r in data["results"]]
    assert _jobs_of(gaia_truth["ivorn"]) == before + 4


def test_resume_after_submitting_polls_the_same_jobs(live_server, gaia_truth, key_env, tmp_path):
    _, manifest = _night(tmp_path, gaia_truth, "resume", first_mjd=61100.5)
    state = tmp_path / "state.json"
    before = _jobs_of(gaia_truth["ivorn"])
    common = ["--manifest", str(manifest), "--url", live_server, "--state", str(state), "--json"]

    first = run_cli(*common, "--no-wait", env=key_env)  # as if killed right after submitting
    assert first.returncode == 0, first.stderr
    submitted = {r["file"]: r["job_id"] for r in json.loads(first.stdout)["results"]}
    assert all(submitted.values()) and len(set(submitted.values())) == 3
    lines = [json.loads(x) for x in state.read_text().splitlines()]
    assert {x["job_id"] for x in lines if "job_id" in x} == set(submitted.values())

    second = run_cli(*common, env=key_env)
    assert second.returncode == 0, second.stderr
    results = json.loads(second.stdout)["results"]
    assert {r["file"]: r["job_id"] for r in results} == submitted
    assert all(r["status"] == "succeeded" for r in results)
    assert _jobs_of(gaia_truth["ivorn"]) == before + 3


def test_sigint_mid_batch_then_rerun_finishes_without_duplicates(
    live_server, gaia_truth, key_env, tmp_path
):
    _, manifest = _night(tmp_path, gaia_truth, "sigint", n_cat=4, first_mjd=61200.5)
    state = tmp_path / "state.json"
    before = _jobs_of(gaia_truth["ivorn"])
    args = [
        *CLI,
        "--manifest",
        str(manifest),
        "--url",
        live_server,
        "--state",
        str(state),
        "--jobs",
        "1",
        "--json",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        env=cli_env(key_env),
    )
    deadline = time.monotonic() + 60
    while not (state.exists() and '"job_id"' in state.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=90)
    if proc.returncode == 0:  # the whole batch happened to finish first
        pytest.skip("the batch ended before the interrupt")
    assert proc.returncode == 130, stderr
    partial = json.loads(stdout)["results"]
    assert any(r["status"] == "interrupted" for r in partial)
    done_before = {r["file"]: r["job_id"] for r in partial if r.get("job_id")}

    out = run_cli(
        "--manifest",
        str(manifest),
        "--url",
        live_server,
        "--state",
        str(state),
        "--json",
        env=key_env,
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    assert all(r["status"] == "succeeded" for r in results)
    for r in results:
        if r["file"] in done_before:
            assert r["job_id"] == done_before[r["file"]]
    assert _jobs_of(gaia_truth["ivorn"]) == before + 5


def test_unknown_alert_is_a_recorded_404_and_a_failing_exit(live_server, key_env, tmp_path):
    out = run_cli(
        str(GAIA / "frame.cat"),
        "--event",
        "ivo://client-test/no-such-alert",
        "--mjd",
        "60999.85",
        "--url",
        live_server,
        "--json",
        "--state",
        str(tmp_path / "s.json"),
        env=key_env,
    )
    assert out.returncode == 1
    (r,) = json.loads(out.stdout)["results"]
    assert r["status"] == "error" and r["http_status"] == 404
    assert "unknown alert" in r["error"] and r.get("job_id") is None
    table = run_cli(
        str(GAIA / "frame.cat"),
        "--event",
        "ivo://client-test/no-such-alert",
        "--mjd",
        "1",
        "--url",
        live_server,
        "--no-state",
        "--no-progress",
        env=key_env,
    )
    assert table.returncode == 1 and "unknown alert" in table.stdout and "HTTP 404" in table.stdout


def test_a_wrong_key_is_refused_without_retries(live_server, gaia_truth):
    c = Client(live_server, "not-a-key")
    with pytest.raises(CalservError) as e:
        c.upload(GAIA / "frame.cat", gaia_truth["ivorn"], mjd=1.0)
    assert e.value.status == 401 and "hashtag" in e.value.error


def test_ascii_catalogue_without_mjd_is_not_sent(live_server, gaia_truth, key_env, tmp_path):
    out = run_cli(
        str(GAIA / "frame.cat"),
        "--event",
        gaia_truth["ivorn"],
        "--url",
        live_server,
        "--json",
        "--no-state",
        env=key_env,
    )
    assert out.returncode == 1
    (r,) = json.loads(out.stdout)["results"]
    assert r["status"] == "error" and "no MJD" in r["error"]

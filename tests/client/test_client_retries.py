"""The client's retry policy against a scripted local HTTP server (no calserv needed):
503/429/connection errors are retried with backoff honouring Retry-After; other 4xx never are."""

from __future__ import annotations

import json
import os
import socket
import time
from email.utils import formatdate

import pytest

from calserv_client import CalservError, Client, RetryPolicy, parse_retry_after
from tests.client.clienthelpers import GAIA, run_cli

FAST = RetryPolicy(max_attempts=5, base_s=0.01, cap_s=0.05)
QUEUED = (202, {"Location": "/jobs/j1"}, {"job_id": "j1", "status": "queued"})
DONE = (
    200,
    {},
    {
        "job_id": "j1",
        "status": "succeeded",
        "alert": "X",
        "survey": "GaiaDR3",
        "filter": "G",
        "mag": 9.51,
        "mag_err": 0.012,
        "limit": False,
    },
)


def test_503_then_202_is_retried_and_the_job_polled(fake_calserv):
    busy = (503, {"Retry-After": "0"}, {"error": "the database is unavailable", "detail": "retry"})
    fake_calserv.script["POST", "/upload"] = [busy, busy, QUEUED]
    fake_calserv.script["GET", "/jobs/j1"] = [
        (200, {"Retry-After": "0"}, {"status": "running"}),
        DONE,
    ]
    c = Client(fake_calserv.url, "secret-key", retry=FAST)

    job = c.upload(GAIA / "frame.cat", "ivo://x/1", mjd=60999.85, comment="c1")
    assert job["job_id"] == "j1" and job["location"] == "/jobs/j1"
    assert fake_calserv.count("POST", "/upload") == 3
    body = fake_calserv.requests[-1][3]
    for field in (
        b'name="hashtag"',
        b"secret-key",
        b'name="EventID"',
        b"ivo://x/1",
        b'name="MJD"',
        b"60999.85",
        b'name="outputFormat"',
        b"json",
        b'name="sexCat"',
    ):
        assert field in body
    assert c.wait("j1")["mag"] == pytest.approx(9.51)
    assert fake_calserv.count("GET", "/jobs/j1") == 2


@pytest.mark.parametrize("status", [503, 507])
def test_busy_or_full_server_is_retried_after_retry_after(fake_calserv, status):
    fake_calserv.script["POST", "/upload"] = [
        (status, {"Retry-After": "1"}, {"error": "the upload disk is full"}),
        QUEUED,
    ]
    c = Client(fake_calserv.url, "k", retry=FAST)
    assert c.upload(GAIA / "frame.cat", "ivo://x/1", mjd=1.0)["job_id"] == "j1"
    (_, _, t0, _), (_, _, t1, _) = fake_calserv.requests
    assert t1 - t0 >= 1.0


def test_429_waits_for_retry_after(fake_calserv):
    fake_calserv.script["POST", "/upload"] = [
        (429, {"Retry-After": "1"}, {"error": "slow down"}),
        QUEUED,
    ]
    c = Client(fake_calserv.url, "k", retry=FAST)
    c.upload(GAIA / "frame.cat", "ivo://x/1", mjd=1.0)
    (_, _, t0, _), (_, _, t1, _) = fake_calserv.requests
    assert t1 - t0 >= 1.0


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422, 500])
def test_other_errors_are_not_retried_and_carry_the_server_message(fake_calserv, status):
    fake_calserv.script["POST", "/upload"] = [
        (
            status,
            {"Retry-After": "0"},
            {"error": "unknown alert 'ivo://x/1'", "detail": "insert it"},
        )
    ]
    c = Client(fake_calserv.url, "k", retry=FAST)
    with pytest.raises(CalservError) as e:
        c.upload(GAIA / "frame.cat", "ivo://x/1", mjd=1.0)
    assert fake_calserv.count("POST", "/upload") == 1
    assert e.value.status == status and e.value.error == "unknown alert 'ivo://x/1'"
    assert e.value.detail == "insert it"


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    c = Client(f"http://127.0.0.1:{port}", "k", retry=RetryPolicy(max_attempts=3, base_s=0.01))
    attempts = []
    c.on_response = lambda method, path, status, elapsed: attempts.append(status)
    with pytest.raises(CalservError) as e:
        c.status("j1")
    assert attempts == [None, None, None]
    assert e.value.status is None and "gave up after 3 attempts" in str(e.value)


def test_backoff_is_exponential_with_jitter_and_capped():
    policy = RetryPolicy(base_s=1.0, cap_s=8.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= x <= ceiling for x in samples)
        assert max(samples) > ceiling / 2  # jittered over the whole range
    assert 5.0 <= policy.backoff(0, retry_after=5.0) <= 6.0


def test_parse_retry_after():
    now = time.time()
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("100000") == 300.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSERV_")}
    return {**env, "XDG_CONFIG_HOME": "/nonexistent", **extra}


def test_cli_json_through_503s(fake_calserv, tmp_path):
    busy = (503, {"Retry-After": "0"}, {"error": "busy"})
    fake_calserv.script["POST", "/upload"] = [busy, QUEUED]
    fake_calserv.script["GET", "/jobs/j1"] = [DONE]
    state = tmp_path / "state.json"
    out = run_cli(
        str(GAIA / "frame.cat"),
        "--event",
        "ivo://x/1",
        "--mjd",
        "60999.85",
        "--url",
        fake_calserv.url,
        "--json",
        "--state",
        str(state),
        "--no-progress",
        env=_env(CALSERV_HASHTAG="secret-key"),
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    (rec,) = data["results"]
    assert rec["status"] == "succeeded" and rec["job_id"] == "j1" and rec["mag"] == 9.51
    assert data["summary"]["counts"] == {"succeeded": 1}
    assert "secret-key" not in state.read_text() and "secret-key" not in out.stdout + out.stderr


def test_cli_table_and_exit_code_when_a_job_fails(fake_calserv, tmp_path):
    fake_calserv.script["POST", "/upload"] = [QUEUED]
    fake_calserv.script["GET", "/jobs/j1"] = [
        (200, {}, {"job_id": "j1", "status": "failed", "error": "too few reference stars"})
    ]
    out = run_cli(
        str(GAIA / "frame.ldac"),
        "-e",
        "Gaia16aye",
        "--url",
        fake_calserv.url,
        "--no-progress",
        "--state",
        str(tmp_path / "s.json"),
        env=_env(CALSERV_HASHTAG="k"),
    )
    assert out.returncode == 1
    assert "failed" in out.stdout and "too few reference stars" in out.stdout
    assert "1 files: 1 failed" in out.stdout


def test_cli_refuses_a_key_on_the_command_line_and_explains_where_it_goes(tmp_path):
    out = run_cli(str(GAIA / "frame.cat"), "-e", "x", "--hashtag", "abc", env=_env())
    assert out.returncode == 2 and "refusing --hashtag" in out.stderr
    out = run_cli(str(GAIA / "frame.cat"), "-e", "x", "--mjd", "1", env=_env())
    assert out.returncode == 2
    assert "no observatory key" in out.stderr and "CALSERV_HASHTAG" in out.stderr


def test_cli_reads_url_and_key_from_config_or_key_file(fake_calserv, tmp_path):
    fake_calserv.script["POST", "/upload"] = [QUEUED]
    fake_calserv.script["GET", "/jobs/j1"] = [DONE]
    cfg = tmp_path / "config.ini"
    cfg.write_text(f"[calserv]\nurl = {fake_calserv.url}\nhashtag = from-config\n")
    cfg.chmod(0o600)
    args = [str(GAIA / "frame.cat"), "-e", "x", "--mjd", "1", "--json", "--no-state"]
    out = run_cli(*args, "--config", str(cfg), env=_env())
    assert out.returncode == 0, out.stderr
    assert b"from-config" in fake_calserv.requests[0][3]
    keyfile = tmp_path / "key"
    keyfile.write_text("from-file\n")
    out = run_cli(
        *args, "--comment", "2", "--config", str(cfg), "--hashtag-file", str(keyfile), env=_env()
    )
    assert out.returncode == 0, out.stderr
    uploads = [body for method, path, _, body in fake_calserv.requests if path == "/upload"]
    assert b"from-file" in uploads[-1]

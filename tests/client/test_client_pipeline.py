"""The pipelined batch client against a fake queue (no calserv needed): many jobs collected with a
few bulk long-polls, no sleep per frame; an older server without the bulk endpoint still works;
resume after an interrupt; a refused key stops the batch; the Unix manners of `calserv-upload`."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import termios
import time

import pytest

from calserv_client.inputs import fits_metadata, plan
from tests.client.clienthelpers import CLI, FakeQueue, cli_env, default_sigint, run_cli


@pytest.fixture()
def queue(request):
    fake = FakeQueue(**getattr(request, "param", {}))
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSERV_")}
    return {
        **env,
        "CALSERV_HASHTAG": "k",
        "XDG_CONFIG_HOME": "/nonexistent",
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
        **extra,
    }


def _frames(tmp_path, n: int):
    night = tmp_path / "night"
    night.mkdir()
    for i in range(n):
        (night / f"f{i:04d}.cat").write_text(f"#   1 NUMBER\n{i}\n")
    return night


def _cli(queue, *args, env, timeout=120):
    return run_cli(*args, "--url", queue.url, "--json", "--mjd", "1", env=env, timeout=timeout)


@pytest.mark.parametrize("queue", [{"job_s": 0.02}], indirect=True)
def test_100_jobs_are_collected_in_a_few_bulk_requests(queue, tmp_path):
    night = _frames(tmp_path, 100)
    t0 = time.monotonic()
    out = _cli(queue, str(night), "-e", "x", env=_env(tmp_path))
    elapsed = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["summary"]["counts"] == {"succeeded": 100}
    assert queue.count("POST", "/upload") == 100
    assert queue.count("GET", "/jobs/") == 0
    polls = queue.count("POST", "/jobs/status")
    # The jobs take 2 s of (fake) work in all: one sleep of a second per frame and thread would
    # be 25 s at --jobs 4; a bulk poll every 0.5 s at most is a handful.
    assert polls <= elapsed / 0.5 + 2, (polls, elapsed)
    assert elapsed < 15, elapsed


@pytest.mark.parametrize("queue", [{"job_s": 0.02, "bulk": False}], indirect=True)
def test_an_older_server_without_the_bulk_endpoint_is_polled_per_job(queue, tmp_path):
    night = _frames(tmp_path, 8)
    out = _cli(queue, str(night), "-e", "x", env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["summary"]["counts"] == {"succeeded": 8}
    assert queue.count("POST", "/jobs/status") == 1  # asked once, then per-job polls
    assert queue.count("GET", "/jobs/") >= 8


# Jobs slow enough that the batch is still collecting when it is interrupted.
@pytest.mark.parametrize("queue", [{"job_s": 1.0}], indirect=True)
def test_interrupt_mid_batch_then_resume_collects_the_same_jobs(queue, tmp_path):
    night = _frames(tmp_path, 20)
    state = tmp_path / "state.json"
    args = [*CLI, str(night), "-e", "x", "--mjd", "1", "--url", queue.url, "--json"]
    proc = subprocess.Popen(
        [*args, "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        env=cli_env(_env(tmp_path)),
    )
    deadline = time.monotonic() + 30
    while not (state.exists() and state.read_text().count('"job_id"') >= 5):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    first = json.loads(stdout)["results"]
    assert any(r["status"] == "interrupted" for r in first)
    sent = {r["file"]: r["job_id"] for r in first if r.get("job_id")}
    uploads = queue.count("POST", "/upload")

    out = run_cli(*args[len(CLI) :], "--state", str(state), env=_env(tmp_path), timeout=60)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    assert all(r["status"] == "succeeded" for r in results)
    assert {r["file"]: r["job_id"] for r in results if r["file"] in sent} == sent
    assert len(queue.jobs) == 20  # nothing sent twice
    assert queue.count("POST", "/upload") - uploads == 20 - len(sent)


@pytest.mark.parametrize("queue", [{"upload_status": 401}], indirect=True)
def test_a_refused_key_stops_the_batch_at_once_with_exit_2(queue, tmp_path):
    night = _frames(tmp_path, 40)
    out = _cli(queue, str(night), "-e", "x", "--jobs", "4", env=_env(tmp_path))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "refused the observatory key" in out.stderr
    assert queue.count("POST", "/upload") <= 4  # the requests already in flight, no more
    results = json.loads(out.stdout)["results"]
    assert all(r["status"] == "error" for r in results)
    assert sum("not sent" in r["error"] for r in results) >= 36


@pytest.mark.parametrize("queue", [{"job_s": 0.01}], indirect=True)
def test_paths_from_stdin(queue, tmp_path):
    night = _frames(tmp_path, 3)
    paths = "".join(f"{p}\n" for p in sorted(night.iterdir()) if p.suffix == ".cat")
    out = subprocess.run(
        [*CLI, "-", "-e", "x", "--mjd", "1", "--url", queue.url, "--json"],
        input=paths + "\n",
        capture_output=True,
        text=True,
        env=cli_env(_env(tmp_path)),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert [r["file"] for r in json.loads(out.stdout)["results"]] == paths.split()


@pytest.mark.parametrize("queue", [{"job_s": 0.01}], indirect=True)
def test_state_goes_to_xdg_state_home_when_the_inputs_are_read_only(queue, tmp_path):
    night = _frames(tmp_path, 2)
    xdg = tmp_path / "xdg-state"
    args = [*CLI, str(night), "-e", "x", "--mjd", "1", "--url", queue.url, "--json"]
    if os.geteuid() == 0:  # root writes anywhere: mount the directory read-only for this run
        if not shutil.which("unshare"):
            pytest.skip("root without unshare cannot make a read-only directory")
        mount = f"mount --bind -o ro {night} {night} && exec " + " ".join(args)
        args = ["unshare", "-rm", "sh", "-c", mount]
    else:
        night.chmod(0o555)
    out = subprocess.run(
        args, capture_output=True, text=True, env=cli_env(_env(tmp_path)), timeout=60
    )
    night.chmod(0o755)
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stdout)["summary"]["state"]
    assert state.startswith(str(xdg / "calserv") + "/") and os.path.exists(state)
    assert not (night / ".calserv-upload-state.json").exists()


@pytest.mark.parametrize("queue", [{"job_s": 0.01}], indirect=True)
def test_progress_bar_only_on_a_terminal(queue, tmp_path):
    night = _frames(tmp_path, 3)
    args = [*CLI, str(night), "-e", "x", "--mjd", "1", "--url", queue.url, "--no-state"]
    piped = subprocess.run(
        args, capture_output=True, text=True, env=cli_env(_env(tmp_path)), timeout=60
    )
    assert piped.returncode == 0, piped.stderr
    assert "frame/s" not in piped.stderr and "\r" not in piped.stderr
    main, tty = pty.openpty()
    fcntl.ioctl(tty, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column tty
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=tty, env=cli_env(_env(tmp_path)), text=True
    )
    proc.communicate(timeout=60)
    os.close(tty)
    drawn = b""
    while chunk := _read(main):
        drawn += chunk
    drawn = drawn.decode()
    os.close(main)
    assert proc.returncode == 0 and "frame/s" in drawn and "3/3" in drawn


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other side is closed and everything was read
        return b""


def test_header_mjd_is_mid_exposure(tmp_path):
    from astropy.io import fits

    path = tmp_path / "frame.fits"
    header = fits.Header({"DATE-OBS": "2025-11-20T20:24:00", "EXPTIME": 120.0})
    fits.HDUList([fits.PrimaryHDU(header=header)]).writeto(path)
    start = 60999.85  # 2025-11-20T20:24:00 UTC
    assert fits_metadata(path)["mjd_start"] == pytest.approx(start, abs=1e-9)
    (item,) = plan([path], [], event="x")
    assert item.mjd == pytest.approx(start + 60 / 86400, abs=1e-9) and item.exptime == 120
    header["MJD-AVG"] = 61000.0  # already mid-exposure: taken as it is
    fits.HDUList([fits.PrimaryHDU(header=header)]).writeto(path, overwrite=True)
    assert plan([path], [], event="x")[0].mjd == 61000.0

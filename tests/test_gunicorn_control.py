"""Each gunicorn instance keeps its control socket under its own var/: a second instance on the
host no longer removes the first one's (gunicorn's default is one path per user)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import ROOT, free_port


def start(var_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "CALSERV_VAR_DIR": str(var_dir), "WEB_CONCURRENCY": "1"}
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    cmd += ["--bind", f"127.0.0.1:{free_port()}", "web:create_app()"]
    log = (var_dir / "gunicorn.log").open("wb")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, (
            path.parent.parent / "gunicorn.log"
        ).read_text()
        time.sleep(0.1)


def test_control_socket_per_instance(tmp_path):
    first_var, second_var = tmp_path / "a", tmp_path / "b"
    first_var.mkdir()
    second_var.mkdir()
    first = start(first_var)
    try:
        wait_for(first_var / "run" / "gunicorn.ctl", first)
        second = start(second_var)
        wait_for(second_var / "run" / "gunicorn.ctl", second)
        second.terminate()
        second.wait(timeout=20)
        assert not (second_var / "run" / "gunicorn.ctl").exists()
        assert (first_var / "run" / "gunicorn.ctl").exists()  # the first instance keeps its own
        mode = (first_var / "run" / "gunicorn.ctl").stat().st_mode & 0o777
        assert mode == 0o600
    finally:
        first.terminate()
        first.wait(timeout=20)

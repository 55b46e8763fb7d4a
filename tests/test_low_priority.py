"""Workers started through deploy/low-priority.sh (Procfile, bench) yield the CPU to the web."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

LOW_PRIORITY = ROOT / "deploy" / "low-priority.sh"


def _started(cmd: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, start_new_session=True)  # a session of its own, as honcho does
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # until the script has exec'd the command
        if os.readlink(f"/proc/{proc.pid}/exe").endswith("sleep"):
            return proc
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("low-priority.sh did not exec its command")


@pytest.mark.skipif(shutil.which("chrt") is None, reason="util-linux chrt is not installed")
def test_the_command_runs_at_idle_cpu_priority():
    proc = _started([str(LOW_PRIORITY), "sleep", "30"])
    try:
        assert os.sched_getscheduler(proc.pid) == os.SCHED_IDLE
        # Its CPU group yields too: an idle cgroup, or (unprivileged) its session's autogroup at
        # the lowest weight; otherwise the group would get a fair share whatever the policy.
        proc_dir = Path(f"/proc/{proc.pid}")
        if "calserv-idle" not in (proc_dir / "cgroup").read_text():
            autogroup = proc_dir / "autogroup"
            assert not autogroup.exists() or autogroup.read_text().split()[-1] == "19"
    finally:
        proc.kill()
        proc.wait()

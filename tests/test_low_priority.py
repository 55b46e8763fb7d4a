"""`make run`'s Celery worker (deploy/supervisord.conf) runs at a lower but bounded CPU weight
(nice 10, cgroup weight 20), never at idle priority, and each pool process warms up (reference
store, matplotlib) as it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, TMP, supervised_command


def _celery_processes(root: int) -> list[int]:
    """The celery processes under `root` (the main process and its pool), not the shell."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        path = Path(f"/proc/{pid}/task/{pid}/children")
        todo.extend(int(p) for p in path.read_text().split() if path.exists())
        if Path(f"/proc/{pid}/exe").resolve().name.startswith("python"):
            found.append(pid)
    return found


@pytest.fixture()
def supervised_worker(database, refstore):
    """The worker program of deploy/supervisord.conf, started as supervisord starts it: in a
    process group of its own, in the session of its supervisor (here: the test's)."""
    log = TMP / "supervised-worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WORKER_CONCURRENCY": "1"}
    proc = subprocess.Popen(
        supervised_command("worker", env),
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        process_group=0,
    )
    deadline = time.monotonic() + 90
    while b"event=worker_warm" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("worker did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    yield proc, log
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def test_worker_runs_at_a_bounded_lower_weight_and_warms_up(supervised_worker):
    proc, log = supervised_worker
    pids = _celery_processes(proc.pid)
    assert len(pids) >= 2, "no celery main and pool process"
    base = os.getpriority(os.PRIO_PROCESS, 0)
    for pid in pids:
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER  # not SCHED_IDLE, not SCHED_BATCH
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(base + 10, 19)
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        if "calserv-workers" in cgroups:  # root: the weighted cgroup, never an idle one
            v2 = Path("/sys/fs/cgroup/calserv-workers")
            group = v2 if v2.exists() else Path("/sys/fs/cgroup/cpu/calserv-workers")
            weight = group / "cpu.weight"
            if weight.exists():
                assert weight.read_text().strip() == "20"
            else:
                assert (group / "cpu.shares").read_text().strip() == "205"
            idle = group / "cpu.idle"
            assert not idle.exists() or idle.read_text().strip() == "0"
        else:  # unprivileged: in its supervisor's autogroup (the web tier's), where nice counts
            autogroup = Path(f"/proc/{pid}/autogroup")
            if autogroup.exists():
                mine = Path("/proc/self/autogroup").read_text().split()[0]
                assert autogroup.read_text().split()[0] == mine
    warm = [line for line in log.read_text().splitlines() if "event=worker_warm" in line]
    assert "GaiaDR3" in warm[0] and "SYNTH" in warm[0], warm

"""`make run` (deploy/run.sh) as a developer runs it, on free ports with a var dir of its own.

It starts its own PostgreSQL and Redis (Redis with a generated password), then nginx, web, worker,
sweeper, beat and Flower under supervisord, and says what to do next once the web tier answers. A
worker killed with SIGKILL is started again while the web tier goes on answering and nothing else
restarts; only Flower has Flower's password in its environment; Ctrl-C stops every process and
the services within seconds, without SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.helpers import ROOT, TMP, free_port

#: What make run's processes must not inherit from the test session: they find their own
#: database, Redis, store and secrets from their var dir, as on a developer's machine.
SESSION_ONLY = (
    "CALSERV_DATABASE_URL",
    "CALSERV_REDIS_URL",
    "CALSERV_QUEUE",
    "CALSERV_STORAGE_URL",
    "CALSERV_SECRET_KEY",
    "CALSERV_HASHTAG_PEPPER",
    "FLOWER_BASIC_AUTH",
)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _session_pids(sid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class MakeRun:
    def __init__(self):
        self.dir = TMP / "make-run"
        self.var = self.dir / "var"
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)  # PostgreSQL runs as `postgres` under root: it must get in
        self.ports = {
            "PORT": free_port(),
            "FLOWER_PORT": free_port(),
            "CALSERV_PG_PORT": free_port(),
            "CALSERV_REDIS_PORT": free_port(),
        }
        self.env = {k: v for k, v in os.environ.items() if k not in SESSION_ONLY}
        self.env.update(
            {k: str(v) for k, v in self.ports.items()},
            CALSERV_VAR_DIR=str(self.var),
            WORKER_CONCURRENCY="1",
        )
        self.url = f"http://127.0.0.1:{self.ports['PORT']}"
        self.log = self.dir / "run.log"

    def prepare(self) -> None:
        """What `make run` does before deploy/run.sh: the services and the migrations."""
        migrate = [sys.executable, "-m", "alembic", "upgrade", "head"]
        for cmd in (["deploy/services.sh", "start"], migrate):
            subprocess.run(cmd, cwd=ROOT, env=self.env, check=True, timeout=300)

    def start(self) -> None:
        # Appending: supervisord's processes write to the same file (stdout) at its end.
        self.proc = subprocess.Popen(
            ["deploy/run.sh"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ctl(self, *args: str) -> str:
        return subprocess.run(
            [str(ROOT / ".venv/bin/supervisorctl"), "-c", "deploy/supervisord.conf", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def pids(self) -> dict[str, int]:
        """The main pid of each supervised program that is RUNNING."""
        found = {}
        for line in self.ctl("status").splitlines():
            parts = line.split()
            if len(parts) > 3 and parts[1] == "RUNNING":
                found[parts[0].split(":")[-1]] = int(parts[3].rstrip(","))
        return found

    def wait_for(self, what: str, ok, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ok():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what}:\n{self.output()[-4000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Whatever the test left running (normally nothing)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        subprocess.run(["deploy/services.sh", "stop"], cwd=ROOT, env=self.env, timeout=60)


@pytest.fixture()
def make_run():
    run = MakeRun()
    run.prepare()
    run.start()
    try:
        yield run
    finally:
        run.stop()


def test_make_run_restarts_a_dead_worker_and_stops_cleanly_on_ctrl_c(make_run):
    run = make_run
    run.wait_for("no next steps printed", lambda: "calserv is running" in run.output(), 240)
    assert _healthy(run.url)
    said = run.output()
    assert run.url in said and str(run.var / "flower-auth") in said
    assert "flask --app web observatory add" in said

    # Redis asks for the password make run generated; config.py builds the URL with it.
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=run.ports["CALSERV_REDIS_PORT"], socket_timeout=5).ping()
    password = (run.var / "redis-password").read_text().strip()
    assert redis.Redis(port=run.ports["CALSERV_REDIS_PORT"], password=password).ping()

    run.wait_for("not every program running", lambda: len(run.pids()) == 6, 120)
    before = run.pids()
    # Flower's password is in Flower's environment only.
    for name, pid in before.items():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        has_password = any(v.startswith(b"FLOWER_BASIC_AUTH=") for v in environ)
        assert has_password == (name == "flower"), name

    os.kill(before["worker"], signal.SIGKILL)
    answered = 0
    deadline = time.monotonic() + 120
    while (now := run.pids()).get("worker") in (None, before["worker"]):
        assert time.monotonic() < deadline, run.output()[-4000:]
        assert _healthy(run.url), "the web tier stopped answering when the worker died"
        answered += 1
        time.sleep(0.3)
    assert answered > 0
    assert {k: v for k, v in now.items() if k != "worker"} == {
        k: v for k, v in before.items() if k != "worker"
    }, "a program other than the worker was restarted"
    run.wait_for(
        "the new worker never became ready",
        lambda: run.output().count("ready.") >= 2,
        120,
    )

    # Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
    t0 = time.monotonic()
    os.killpg(run.proc.pid, signal.SIGINT)
    assert run.proc.wait(timeout=60) == 130
    while _session_pids(run.proc.pid) or any(_listening(p) for p in run.ports.values()):
        assert time.monotonic() - t0 < 30, [_cmdline(p) for p in _session_pids(run.proc.pid)]
        time.sleep(0.1)
    stopped_s = time.monotonic() - t0
    supervisor_log = (run.var / "log" / "supervisord.log").read_text()
    assert "SIGKILL" not in supervisor_log.split("waiting for", 1)[-1]
    assert not (run.var / "run" / "redis.pid").exists()
    print(f"make run: every process and service stopped {stopped_s:.1f} s after Ctrl-C")
    assert stopped_s < 20  # about 5 s on an idle 2-core machine; more under load

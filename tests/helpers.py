"""Helpers shared by the tests (imported as `tests.helpers`; conftest files hold fixtures only).

Paths of the test data, the per-session scratch directory, a real `celery worker` subprocess, and
small actions done as an operator or a client script would.
"""

from __future__ import annotations

import configparser
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: This session's scratch directory: uploads, plots, the reference store, process logs.
TMP = Path(os.environ.get("CALSERV_TEST_VAR", f"/tmp/calserv-test-{os.getpid()}"))
#: The access log of the `live_server` fixture's gunicorn (`Gunicorn` names each after itself).
ACCESS_LOG = TMP / "gunicorn-access.log"


def environ(changes: dict[str, str | None]) -> dict[str, str]:
    """This process's environment with `changes` applied; a None value removes the variable."""
    env = {**os.environ, **changes}
    return {k: v for k, v in env.items() if v is not None}


class WorkerProcess:
    """A real `celery worker` subprocess (its own process group, so it can be SIGKILLed whole)."""

    def __init__(self, name: str, env: dict[str, str | None] | None = None, concurrency: int = 1):
        self.name, self.env, self.concurrency = name, env or {}, concurrency
        self.log = TMP / f"worker-{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.start()

    def start(self) -> None:
        seen = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.celery_app",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                f"--hostname={self.name}-{secrets.token_hex(3)}@%h",
            ],
            cwd=ROOT,
            env=environ(self.env),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while b"ready." not in self.log.read_bytes()[seen:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("celery worker did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and children), as an OOM killer would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def add_alert(app, ivorn: str, name: str, ra: float, dec: float) -> None:
    result = app.test_cli_runner().invoke(
        args=["alert", "add", ivorn, "--name", name, "--ra", str(ra), "--dec", str(dec)]
    )
    assert result.exit_code == 0, result.output


def wait_job(client, job_id: str, timeout: float = 60) -> dict:
    """Poll the job-status URL as a client script would, until the job ends."""
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/jobs/{job_id}?outputFormat=json").get_json()
        if data["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return data
        time.sleep(0.2)


class Gunicorn:
    """The real web tier under gunicorn with deploy/gunicorn.conf.py, as `make run` serves it;
    `env` adds to the environment (e.g. another queue), `workers` sets WEB_CONCURRENCY."""

    def __init__(
        self, workers: int = 2, env: dict[str, str | None] | None = None, name: str = "gunicorn"
    ):
        port = free_port()
        self.log = TMP / f"{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "deploy/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                str(TMP / f"{name}-access.log"),
                "--no-control-socket",  # test servers need none; the conf's is under var/run
                "web:create_app()",
            ],
            cwd=ROOT,
            env=environ({"WEB_CONCURRENCY": str(workers), **(env or {})}),
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # ready when the app itself answers, not just the listening socket
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start: " + self.log.read_text())
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop it; requests still waiting (`wait=`) would hold a graceful stop for 30 s."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown
            self.proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def supervised_command(name: str, env: dict[str, str]) -> list[str]:
    """The argv of program `name` in deploy/supervisord.conf (what `make run` starts), with its
    `%(ENV_X)s` taken from `env`, split as supervisord splits it."""
    config = configparser.RawConfigParser()
    config.read(ROOT / "deploy" / "supervisord.conf")
    line = config.get(f"program:{name}", "command")
    line = re.sub(r"%\(ENV_(\w+)\)s", lambda m: env[m.group(1)], line).replace("%%", "%")
    return shlex.split(line)


class MotoServer:
    """moto's S3-compatible server as its own process (`moto_server`), on `host`, with `bucket`.

    `prefix` runs it through a wrapper (`ip netns exec <ns>`: the test of separate hosts).
    """

    CREDENTIALS: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def __init__(self, bucket: str, host: str = "127.0.0.1", prefix: tuple[str, ...] = ()):
        port = free_port() if host == "127.0.0.1" else 9000
        self.endpoint = f"http://{host}:{port}"
        self.log = TMP / f"moto-{bucket}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection((host, port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "moto_server did not start: " + self.log.read_text()
                    ) from None
                time.sleep(0.1)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)

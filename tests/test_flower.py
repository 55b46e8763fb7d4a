"""Flower tells the truth: a failed calibration is FAILURE there, with its reason, labelled with its
alert and observatory; and no secret sits in any process's command line (`ps` shows those).

Flower runs from `make run`'s own command line (deploy/supervisord.conf), with its password in its
own environment only (deploy/flower.sh reads it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import DATA, ROOT, TMP, add_alert, free_port, supervised_command, wait_job

PASSWORD = secrets.token_urlsafe(12)
AUTH = "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()


def get(url: str, auth: str | None = AUTH):
    req = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def flower(worker):
    port = free_port()
    log = TMP / "flower.log"
    env = {**os.environ, "FLOWER_BASIC_AUTH": f"ops:{PASSWORD}", "FLOWER_PORT": str(port)}
    proc = subprocess.Popen(
        supervised_command("flower", env),
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # ready once its event receiver has seen a worker's heartbeat
        try:
            if get(f"{url}/workers?json=1").get("data"):
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("flower did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.3)
    yield url
    os.killpg(proc.pid, 15)
    proc.wait(timeout=20)


@pytest.mark.parametrize("path", ["/api/tasks", "/metrics", "/healthcheck", "/"])
def test_flower_wants_the_password_from_the_environment(flower, path):
    """Every page, the Prometheus metrics and the health check included (`workers.flower`)."""
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{flower}{path}", timeout=10)
    assert e.value.code == 401
    req = urllib.request.Request(f"{flower}{path}", headers={"Authorization": AUTH})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def test_a_failed_job_is_failure_in_flower_with_its_reason(app, client, observatory, flower):
    name = f"FlowerAlert{secrets.token_hex(3)}"
    add_alert(app, f"ivo://flower/{name}", name, 0.0, 0.0)  # no frame near it: the job fails
    form = {
        "hashtag": observatory["hashtag"],
        "EventID": name,
        "dryRun": "1",
        "noPlot": "1",
        "outputFormat": "json",
        "sexCat": ((DATA / "gaia-demo" / "frame.cat").open("rb"), "frame.cat"),
    }
    job_id = client.post("/upload", data=form, content_type="multipart/form-data").json["job_id"]
    job = wait_job(client, job_id)
    assert job["status"] == "failed"
    deadline = time.monotonic() + 30
    while True:
        try:
            task = get(f"{flower}/api/task/info/{job_id}-0")
            if task.get("state") == "FAILURE":
                break
        except urllib.error.HTTPError:  # not seen yet
            task = {}
        assert time.monotonic() < deadline, task
        time.sleep(0.3)
    assert task["name"] == "calserv.calibrate_job"
    assert "JobFailed" in task["exception"] and job["error"][:60] in task["exception"]
    assert task["retries"] == 0
    assert name in task["args"] and observatory["name"] in task["args"]
    everything = json.dumps(get(f"{flower}/api/tasks"))
    assert observatory["hashtag"] not in everything


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def test_no_secret_in_any_command_line(live_server, flower, observatory):
    """Every process this session started (gunicorn, celery worker, Flower and their children)."""
    secrets_ = {
        PASSWORD,
        observatory["hashtag"],
        os.environ["CALSERV_SECRET_KEY"],
        os.environ["CALSERV_HASHTAG_PEPPER"],
    }
    argvs = {}
    for pid in _descendants(os.getpid()):
        try:
            argvs[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    assert any("flower" in a for a in argvs.values()) and any(
        "gunicorn" in a for a in argvs.values()
    )
    assert any(re.search(r"celery .*worker", a) for a in argvs.values())
    for pid, argv in argvs.items():
        assert not any(s in argv for s in secrets_), (pid, argv)
    units = [*(ROOT / "deploy" / "systemd").glob("*.service"), ROOT / "deploy" / "supervisord.conf"]
    for unit in units:
        for line in unit.read_text().splitlines():
            if not line.startswith("#"):
                assert "BASIC_AUTH" not in line.split("=", 1)[-1] or "Environment" in line, line

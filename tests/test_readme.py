"""The README's "Using it" walkthrough, run verbatim against a live server, so it cannot drift.

The commands run in a fresh `bash` without the secret key, the pepper or `CALSERV_ENV`: the
settings come from `VAR_DIR`'s generated secrets (`deploy/services.sh secrets`), as in a new shell
after `make run`. Only the test's own isolation differs: its database, queue and stores, and the
server's port in place of the README's 5000.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tests.helpers import ROOT, TMP, Gunicorn, WorkerProcess, environ

README_PORT = "http://127.0.0.1:5000"
JOB_PLACEHOLDER = "3f2c..."


def readme_commands() -> list[str]:
    """The shell commands of the README's "Using it" section, in order: fenced lines that are not
    comments or printed output, with backslash continuations joined."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Using it\n", 1)[1].split("\n### ", 1)[0]
    commands = []
    for block in re.findall(r"```\n(.*?)```", section, flags=re.S):
        joined = block.replace("\\\n", " ")
        commands += [
            line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"
        ]
    return commands


@pytest.fixture(scope="module")
def new_shell_env(database, refstore) -> dict[str, str]:
    """A new shell's environment after `make run`: VAR_DIR with its generated secrets, nothing
    about secrets or development mode exported."""
    var = TMP / "readme-var"
    var.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["deploy/services.sh", "secrets"],
        cwd=ROOT,
        env=environ({"CALSERV_VAR_DIR": str(var)}),
        check=True,
    )
    return environ(
        {
            "CALSERV_VAR_DIR": str(var),
            "CALSERV_SECRET_KEY": None,
            "CALSERV_HASHTAG_PEPPER": None,
            "CALSERV_ENV": None,
            "CALSERV_QUEUE": f"calserv-readme-{id(var)}",
        }
    )


@pytest.fixture(scope="module")
def live(new_shell_env):
    changes = {k: new_shell_env.get(k) for k in ("CALSERV_VAR_DIR", "CALSERV_QUEUE")}
    changes |= {"CALSERV_SECRET_KEY": None, "CALSERV_HASHTAG_PEPPER": None, "CALSERV_ENV": None}
    server = Gunicorn(workers=1, env=changes, name="readme-gunicorn")
    worker = WorkerProcess("readme", env=changes)
    yield server
    worker.stop()
    server.stop()


def run(command: str, env: dict[str, str], shell_vars: dict[str, str]) -> str:
    """One README command in bash, with the variables earlier commands assigned."""
    script = "".join(f"{k}={v!r}\n" for k, v in shell_vars.items()) + command
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_readme_walkthrough_runs_verbatim(live, new_shell_env):
    commands = readme_commands()
    kinds = [c.split()[0] for c in commands]
    assert kinds[:2] == ["HASHTAG=$(.venv/bin/flask", ".venv/bin/flask"], commands
    assert kinds[2:] == ["curl", "curl"], commands

    shell_vars: dict[str, str] = {}
    # Register the observatory: the key is the last line it prints.
    assignment = commands[0]
    name, expr = assignment.split("=", 1)
    shell_vars[name] = run(f"echo {expr}", new_shell_env, {}).strip()
    assert len(shell_vars["HASHTAG"]) >= 20
    run(commands[1], new_shell_env, shell_vars)

    # Upload: 202 with a Location to poll.
    upload = commands[2].replace(README_PORT, live.url)
    out = run(upload, new_shell_env, shell_vars)
    assert out.startswith("HTTP/1.1 202"), out
    body = json.loads(out.split("\n\n", 1)[1])
    location = re.search(r"^Location: (\S+)", out, flags=re.M | re.I).group(1)
    assert location == f"/jobs/{body['job_id']}"

    # Poll the job URL, as the README says, until it has ended.
    poll = commands[3].replace(README_PORT, live.url).replace(JOB_PLACEHOLDER, body["job_id"])
    deadline = time.monotonic() + 90
    while True:
        result = json.loads(run(poll, new_shell_env, shell_vars))
        if result["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result["status"] == "succeeded", result
    assert result["survey"] == "GaiaDR3" and result["filter"] == "G"
    truth = json.loads((ROOT / "tests/data/gaia-demo/truth.json").read_text())
    assert result["mag"] == pytest.approx(truth["target_mag"], abs=3 * result["mag_err"] + 0.02)

"""calserv on separate hosts with no shared disk: uploads and plots travel through object storage.

Seven network namespaces on one machine stand for seven hosts on a private network: Postgres +
Redis (durable: fsync on, AOF), an S3-compatible server (moto), the web tier (gunicorn + the
sweeper), two Celery worker hosts and the observers' client, all with the production defaults.
Each host has its own directory and settings; the only thing the web and worker hosts share is
`CALSERV_STORAGE_URL=s3://...`. A burst of uploads goes
through the web host, one worker host is killed (SIGKILL, every process) while it runs a job, and
every job must still end exactly once, with its follow-up row and a plot the web host serves; the
killed host's job runs again within a minute (its heartbeat stops, the sweeper re-sends it).
"""

from __future__ import annotations

import json
import pwd
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import DATA, ROOT, TMP
from tests.netns import Network, why_not_available

PY = sys.executable
_INITDB = (Path("/usr/local/bin/initdb"), *sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")))
PG_BIN = next((p.parent for p in _INITDB if p.exists()), None)
DB, S3, WEB = "10.231.0.10", "10.231.0.11", "10.231.0.12"
N_UPLOADS = 16
REDIS_PASSWORD = "separate-hosts-redis"  # Redis refuses other hosts without one
BUCKET = "calserv"
SYNTH = DATA / "synth-deep"
PSQL = shutil.which("psql") or "psql"


def _missing() -> str | None:
    """Why this machine cannot run the test, or None."""
    if (reason := why_not_available()) is not None:
        return reason
    if PG_BIN is None or not shutil.which("redis-server") or not shutil.which("psql"):
        return "PostgreSQL server binaries, psql and redis-server are needed (deploy/bootstrap.sh)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` system user to run PostgreSQL as (deploy/services.sh start makes it)"
    return None


pytestmark = pytest.mark.skipif((reason := _missing()) is not None, reason=reason or "")


def _pg_bin() -> Path:
    assert PG_BIN is not None
    return PG_BIN


@pytest.fixture()
def net():
    network = Network()
    try:
        yield network
    finally:
        network.close(keep_logs=TMP / "separate-hosts")


def _settings(net: Network, host: str, **extra: str) -> dict[str, str]:
    """A calserv host's whole configuration: addresses of the others, and its own var dir."""
    return {
        "PYTHONPATH": str(ROOT),  # the installed code, read-only, as on every host
        "CALSERV_VAR_DIR": str(net.disk(host) / "var"),
        "CALSERV_DATABASE_URL": f"postgresql+psycopg2://calserv@{DB}:5432/calserv",
        "CALSERV_REDIS_URL": f"redis://:{REDIS_PASSWORD}@{DB}:6379/0",
        "CALSERV_STORAGE_URL": f"s3://{BUCKET}/store",
        "CALSERV_STORAGE_ENDPOINT_URL": f"http://{S3}:9000",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CALSERV_SECRET_KEY": "separate-hosts-secret",
        "CALSERV_HASHTAG_PEPPER": "separate-hosts-pepper",
        "CALSERV_RATE_LIMIT": "100000 per minute",
        **extra,
    }


def _start_database_host(net: Network) -> None:
    disk = net.add_host("db", 10)
    pgdata = disk / "pg"
    pgdata.mkdir()
    shutil.chown(pgdata, "postgres")
    shutil.chown(disk, "postgres")
    pg = f"runuser -u postgres -- {_pg_bin()}"  # PostgreSQL refuses to run as root
    net.run("db", f"{pg}/initdb -D {pgdata} -U postgres --auth=trust -E UTF8 --no-locale")
    with (pgdata / "pg_hba.conf").open("a") as hba:
        hba.write("host all all 10.231.0.0/24 trust\n")
    net.start(
        "db", "postgres", f"{pg}/postgres -D {pgdata} -p 5432 -k {disk} -c listen_addresses={DB}"
    )  # fmt: skip
    net.start(
        "db", "redis", f"redis-server --bind {DB} --port 6379 --appendonly yes "
        f"--appendfsync everysec --dir {disk} --requirepass {REDIS_PASSWORD}"
    )  # fmt: skip


def _wait_database(net: Network) -> None:
    psql = f"{PSQL} -h {DB} -U postgres -v ON_ERROR_STOP=1 -c"
    deadline = time.monotonic() + 30
    while True:
        try:
            net.run("db", f"{psql} 'SELECT 1'")
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    net.run("db", f"{psql} 'CREATE ROLE calserv LOGIN'")
    net.run("db", f"{psql} 'CREATE DATABASE calserv OWNER calserv'")


def _sql(net: Network, query: str) -> list[list[str]]:
    out = net.run("db", [*shlex.split(f"{PSQL} -h {DB} -U calserv -d calserv -At -c"), query])
    return [line.split("|") for line in out.splitlines() if line]


def _start_worker_host(net: Network, name: str, octet: int, refstore: Path) -> None:
    disk = net.add_host(name, octet)
    # The reference store replicated to the worker's own disk (it is read-only at run time).
    shutil.copytree(refstore, disk / "refcats")
    env = _settings(net, name, CALSERV_REFCAT_DIR=str(disk / "refcats"))
    net.start(
        name, "celery", f"{PY} -m celery -A workers.celery_app worker --loglevel=INFO "
        f"--concurrency=1 --without-gossip --without-mingle --hostname={name}@%h", env
    )  # fmt: skip


def _jobs_logged(log: str, event: str) -> list[str]:
    """The job ids of a worker's `event=<event>` lines, in order."""
    return [
        line.split("job=")[1].split()[0] for line in log.splitlines() if f"event={event}" in line
    ]


def _files_on(disk: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return [p for p in disk.rglob("*") if p.is_file() and p.suffix in suffixes]


LIST_KEYS = (
    "import os; from blobstore import open_store; "
    "s = open_store(os.environ['CALSERV_STORAGE_URL'], os.environ['CALSERV_STORAGE_ENDPOINT_URL']);"
    " print(*s.list('uploads/'), *s.list('plots/'))"
)
WAIT_HEALTHY = (
    "import requests, sys, time\n"
    "for _ in range(150):\n"
    "    try:\n"
    "        requests.get(sys.argv[1], timeout=2).raise_for_status(); break\n"
    "    except Exception: time.sleep(0.2)\n"
    "else: raise SystemExit('web host not ready')"
)


def test_web_and_workers_on_separate_hosts_share_nothing_but_the_object_store(net, refstore):
    t0 = time.monotonic()
    # The slow starters first (Celery and gunicorn import the science stack), the database after.
    _start_database_host(net)
    net.add_host("s3", 11)
    net.start("s3", "moto", f"{PY} -m moto.server -H {S3} -p 9000")
    net.add_host("web", 12)
    net.add_host("client", 30)
    for name, octet in (("w1", 21), ("w2", 22)):
        _start_worker_host(net, name, octet, refstore)
    web_env = _settings(net, "web", CALSERV_REFCAT_DIR=str(net.disk("web") / "refcats"))
    net.start("web", "gunicorn", f"{PY} -m gunicorn -b {WEB}:8000 -w 2 web:create_app()", web_env)
    _wait_database(net)
    net.run("web", f"{PY} -m alembic -c {ROOT / 'alembic.ini'} upgrade head", web_env)
    net.start("web", "sweeper", f"{PY} -m workers.sweeper", web_env)
    # The operator makes the bucket from the web host: it needs only the store's address.
    make_bucket = f"import boto3; boto3.client('s3').create_bucket(Bucket='{BUCKET}')"
    net.run("web", [PY, "-c", make_bucket], {**web_env, "AWS_ENDPOINT_URL": f"http://{S3}:9000"})
    flask = f"{PY} -m flask --app web"
    hashtag = net.run(
        "web", f"{flask} observatory add 'Remote Obs' --lon 20.5 --lat -32.4 --filters R,V,G",
        web_env,
    ).strip().splitlines()[-1]  # fmt: skip
    truth = json.loads((SYNTH / "truth.json").read_text())
    net.run(
        "web", f"{flask} alert add ivo://hosts/synth --name HostsSynth "
        f"--ra {truth['target_ra']} --dec {truth['target_dec']}", web_env,
    )  # fmt: skip
    for name in ("w1", "w2"):
        net.wait_log(name, "celery", "ready.")
    # Ready when the web host answers the client host (Postgres and Redis reached from it).
    net.run("client", [PY, "-c", WAIT_HEALTHY, f"http://{WEB}:8000/healthz"])
    # The observer's catalogue is on the client host's disk only.
    catalogue = net.disk("client") / "frame.cat"
    shutil.copy(SYNTH / "frame.cat", catalogue)
    setup_s = time.monotonic() - t0

    burst = net.start(
        "client", "burst", f"{PY} {ROOT / 'tests' / 'separate_hosts_client.py'} "
        f"http://{WEB}:8000 {hashtag} ivo://hosts/synth {catalogue} {N_UPLOADS}",
        {"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    # Mid-burst: once w1 is running a job, its host dies.
    deadline = time.monotonic() + 60
    while not _jobs_logged(net.log("w1", "celery"), "job_started"):
        assert time.monotonic() < deadline, net.log("w1", "celery")[-3000:]
        assert burst.poll() is None, net.log("client", "burst")[-3000:]
        time.sleep(0.05)
    net.kill_host("w1")
    killed = time.monotonic()
    killed_job = _jobs_logged(net.log("w1", "celery"), "job_started")[-1]
    while killed_job not in _jobs_logged(net.log("w2", "celery"), "job_started"):
        assert time.monotonic() - killed < 60, net.log("web", "sweeper")[-3000:]
        time.sleep(0.2)
    rerun_s = time.monotonic() - killed
    assert burst.wait(timeout=150) == 0, net.log("client", "burst")[-3000:]
    total_s = time.monotonic() - t0

    lines = [json.loads(line) for line in net.log("client", "burst").splitlines()]
    accepted = {r["accepted"] for r in lines if "accepted" in r}
    finals = {r["final"]["job_id"]: r for r in lines if "final" in r}
    assert len(accepted) == N_UPLOADS and set(finals) == accepted
    for job, r in finals.items():
        assert r["final"]["status"] == "succeeded", r
        assert r["final"]["followup_id"] is not None, r
        # The plot the worker wrote into the object store, served by the web host.
        assert r["plot"]["status"] == 200 and r["plot"]["head"] == "89504e470d0a1a0a", (job, r)
    assert killed_job in accepted
    assert finals[killed_job]["final"]["attempts"] >= 2  # run again after its host died

    # Exactly once: one follow-up row per job, every job ended.
    rows = _sql(
        net,
        "SELECT j.id, j.state, count(f.id) FROM jobs j "
        "LEFT JOIN followups f ON f.job_id = j.id GROUP BY j.id, j.state",
    )
    assert sorted(r[0] for r in rows) == sorted(accepted)
    assert {(r[1], r[2]) for r in rows} == {("succeeded", "1")}
    # The surviving worker host finished the job the dead one had started.
    assert killed_job in _jobs_logged(net.log("w2", "celery"), "job_succeeded")

    # Nothing on a host's own disk: every upload and plot is in the object store.
    for host in ("web", "w1", "w2"):
        assert _files_on(net.disk(host), (".cat", ".png", ".ldac")) == [], host
    keys = net.run("web", [PY, "-c", LIST_KEYS], web_env).split()
    assert sum(k.startswith("uploads/") for k in keys) == N_UPLOADS  # distinct bytes each
    assert {k for k in keys if k.startswith("plots/")} == {f"plots/{j}.png" for j in accepted}
    print(
        f"separate hosts: setup {setup_s:.1f} s, setup + burst {total_s:.1f} s, "
        f"the killed host's job running again after {rerun_s:.1f} s"
    )

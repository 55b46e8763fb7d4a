"""Faults with real processes: a worker SIGKILLed mid-job, the queue deleted, Redis restarted,
Postgres stopped.

Every job must end exactly once: one terminal state, at most one follow-up row, nothing lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from db import job_states
from db.dispatch import sweep
from db.models import Followup, Job, JobState
from db.session import engine, session_scope
from tests.helpers import DATA, ROOT, TMP, WorkerProcess, add_alert, wait_job
from workers.heartbeat import heartbeat
from workers.tasks import calibrate_job

FRAME = DATA / "gaia-demo" / "frame.cat"
SERVICES = [str(ROOT / "deploy" / "services.sh")]


@pytest.fixture(scope="module")
def alert(app):
    truth = json.loads((DATA / "gaia-demo" / "truth.json").read_text())
    add_alert(app, "ivo://faults/1", "FaultsAlert", truth["target_ra"], truth["target_dec"])


@pytest.fixture(scope="module")
def big_frame(tmp_path_factory):
    """The gaia-demo frame repeated 100 times (≈270k rows): a job that takes a while to run."""
    lines = FRAME.read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    rows = [line for line in lines if not line.startswith("#")]
    path = tmp_path_factory.mktemp("big") / "big.cat"
    path.write_text("".join(header) + "".join(rows) * 100)
    return path


def post_frame(client, hashtag: str, comment: str, frame=FRAME):
    """One observation per `comment`: its MJD is derived from it (a comment alone is
    presentation and would return the same job)."""
    form = {
        "EventID": "ivo://faults/1",
        "hashtag": hashtag,
        "MJD": f"{60000 + zlib.crc32(comment.encode()) % 100_000 / 1000:.3f}",
        "noPlot": "1",
        "outputFormat": "json",
        "comment": comment,
        "sexCat": (frame.open("rb"), frame.name),
    }
    return client.post("/upload", data=form, content_type="multipart/form-data")


def submit(client, hashtag: str, comment: str, frame=FRAME) -> str:
    resp = post_frame(client, hashtag, comment, frame)
    assert resp.status_code == 202, resp.get_data(as_text=True)
    return resp.get_json()["job_id"]


def unsent_copy(job_id: str, comment: str, age_s: int = 0) -> str:
    """A queued job row, made `age_s` seconds ago, whose task was never sent (lost message)."""
    with session_scope() as s:
        job = s.get(Job, job_id)
        copy = Job(
            idempotency_key=f"{comment}-{job_id}",
            observatory_id=job.observatory_id,
            alert_id=job.alert_id,
            upload_id=job.upload_id,
            params={**job.params, "comment": comment},
            state=JobState.queued,
        )
        s.add(copy)
    backdate(copy.id, age_s)
    return copy.id


def backdate(job_id: str, seconds: int, column: str = "created_at") -> None:
    """Pretend the job row was made (or sent: `enqueued_at`) `seconds` ago (past the sweeper's
    grace periods)."""
    with session_scope() as s:
        s.execute(
            Job.__table__.update()
            .where(Job.id == job_id)
            .values({column: func.now() - func.make_interval(0, 0, 0, 0, 0, 0, seconds)})
        )


def followups(job_id: str) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(Followup).where(Followup.job_id == job_id))


def service(action: str) -> None:
    subprocess.run([*SERVICES, action], check=True, capture_output=True, timeout=120)


def wait_state(job_id: str, states: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as s:
            state = s.get(Job, job_id).state.value
        if state in states:
            return state
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {states}")


@pytest.fixture()
def sweeper():
    """The sweeper process (`workers.sweeper`) with the production defaults of SWEEP_INTERVAL,
    STALE_JOB_SECONDS and HEARTBEAT_SECONDS; yields its log."""
    log = TMP / "sweeper.log"
    seen = log.stat().st_size if log.exists() else 0
    defaults = ("SWEEP_INTERVAL", "STALE_JOB_SECONDS", "HEARTBEAT_SECONDS")
    env = {k: v for k, v in os.environ.items() if k.removeprefix("CALSERV_") not in defaults}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.sweeper"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while b"event=sweeper_started" not in log.read_bytes()[seen:]:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    yield log
    proc.terminate()
    proc.wait(timeout=30)


def attempts(job_id: str) -> tuple[str, int]:
    with session_scope() as s:
        job = s.get(Job, job_id)
        return job.state.value, job.attempts


def test_a_dead_workers_job_runs_again_within_a_minute_with_the_defaults(
    client, worker, observatory, alert, big_frame, sweeper
):
    """SIGKILL of the worker running a job (its supervisor starts a new one at once): its
    heartbeat stops, the sweeper re-sends it and the new worker runs it, all within 60 s, long
    before the broker's visibility timeout (300 s) would have given the message back."""
    worker.stop()
    victim = WorkerProcess("victim")
    try:
        job_id = submit(client, observatory["hashtag"], "sigkill", frame=big_frame)
        wait_state(job_id, {"running"})
        victim.kill()
        killed = time.monotonic()
    finally:
        victim.stop()
    rescuer = WorkerProcess("rescuer")
    try:
        while attempts(job_id) == ("running", 1):
            assert time.monotonic() - killed < 60, sweeper.read_text()[-3000:]
            time.sleep(0.2)
        rerun_s = time.monotonic() - killed
        result = wait_job(client, job_id, timeout=120)
    finally:
        rescuer.stop()
        worker.start()
    print(f"job of a killed worker running again {rerun_s:.1f} s after the kill")
    assert result["status"] == "succeeded", result
    assert result["attempts"] >= 2
    assert followups(job_id) == 1
    assert f"event=job_resent job={job_id} state=running" in sweeper.read_text()


def test_a_deleted_queue_is_noticed_and_its_jobs_sent_again(
    client, worker, observatory, alert, redis_client, sweeper
):
    """Someone deletes the Redis queue while jobs wait in it: the sweeper sees the jobs are gone
    from it (and from every worker) and sends them again."""
    worker.stop()
    try:
        ids = [submit(client, observatory["hashtag"], f"deleted-queue-{i}") for i in range(3)]
        assert redis_client.delete(os.environ["CALSERV_QUEUE"]) == 1
        deleted = time.monotonic()
    finally:
        worker.start()
    results = [wait_job(client, j, timeout=60) for j in ids]
    assert [r["status"] for r in results] == ["succeeded"] * 3
    assert time.monotonic() - deleted < 60
    assert [followups(j) for j in ids] == [1, 1, 1]
    logged = sweeper.read_text()
    assert all(f"event=job_resent job={j} state=queued" in logged for j in ids)


def test_the_heartbeat_keeps_a_running_job_from_being_swept(client, worker, observatory, alert):
    done = submit(client, observatory["hashtag"], "heartbeat-template")
    wait_job(client, done)
    job_id = unsent_copy(done, "heartbeat")
    with session_scope() as s:
        s.execute(
            Job.__table__.update()
            .where(Job.id == job_id)
            .values(state=JobState.running, started_at=func.now() - timedelta(minutes=5))
        )
    stale_after = timedelta(seconds=2)
    with heartbeat(job_id, every_s=0.3):
        time.sleep(1.0)
        with session_scope() as s:
            job = s.get(Job, job_id)
            assert job.heartbeat_at > job.started_at + timedelta(minutes=4)
            assert job not in job_states.lost(s, datetime.now(UTC), stale_after)
    time.sleep(2.5)  # silent for longer than stale_after: its worker is gone
    with session_scope() as s:
        assert s.get(Job, job_id) in job_states.lost(s, datetime.now(UTC), stale_after)
        s.rollback()
        s.get(Job, job_id).state = JobState.failed  # not for a worker of later tests


def test_queued_jobs_survive_a_redis_restart(client, worker, observatory, alert):
    worker.stop()
    try:
        ids = [submit(client, observatory["hashtag"], f"redis-{i}") for i in range(3)]
        service("stop-redis")
        service("start-redis")
    finally:
        worker.start()
    results = [wait_job(client, j, timeout=60) for j in ids]
    assert [r["status"] for r in results] == ["succeeded"] * 3
    assert [followups(j) for j in ids] == [1, 1, 1]


def test_postgres_down_gives_503_and_workers_retry(app, client, worker, observatory, alert):
    job_id = submit(client, observatory["hashtag"], "pg-before")
    wait_job(client, job_id)
    # A job the worker will get while Postgres is down: its row exists, its message is sent later.
    clone_id = unsent_copy(job_id, "pg-retry")

    service("stop-postgres")
    try:
        calibrate_job.apply_async(args=[clone_id])
        resp = post_frame(client, observatory["hashtag"], "pg-down")
        assert resp.status_code == 503
        assert resp.headers["Retry-After"]
        assert "database" in resp.get_json()["error"]
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["postgres"].startswith("down")
        time.sleep(3)  # the worker meets the outage and schedules a retry
    finally:
        service("start-postgres")
    engine().dispose()
    assert client.get("/healthz").status_code == 200
    result = wait_job(client, clone_id, timeout=90)
    assert result["status"] == "succeeded", result
    assert followups(clone_id) == 1


def test_no_request_fails_on_a_connection_that_a_postgres_restart_closed(
    client, worker, observatory, alert
):
    """Pooled connections closed by a restart are replaced when checked out, not used and failed."""
    before = submit(client, observatory["hashtag"], "pg-restart")
    assert wait_job(client, before)["status"] == "succeeded"  # the pools are warm, the worker idle
    service("stop-postgres")
    service("start-postgres")
    assert client.get(f"/jobs/{before}?outputFormat=json").status_code == 200
    after = submit(client, observatory["hashtag"], "pg-restarted")
    assert wait_job(client, after)["status"] == "succeeded"  # the worker's pool recovered too
    assert followups(after) == 1


def test_sweeper_resends_a_job_whose_message_was_lost(client, worker, observatory, alert, runner):
    done = submit(client, observatory["hashtag"], "sweeper-template")
    wait_job(client, done)
    lost_id = unsent_copy(done, "lost", age_s=60)
    out = runner.invoke(args=["jobs", "sweep"])
    assert out.exit_code == 0, out.output
    assert lost_id in out.output.splitlines()[1:], out.output
    assert wait_job(client, lost_id)["status"] == "succeeded"
    assert followups(lost_id) == 1


def test_uploads_are_accepted_while_redis_is_down_and_sent_later(
    client, worker, observatory, alert
):
    """Redis down at upload: the job row is committed (202), the sweeper sends it afterwards."""
    service("stop-redis")
    try:
        job_id = submit(client, observatory["hashtag"], "redis-down")
        with session_scope() as s:
            job = s.get(Job, job_id)
            assert job.state == JobState.queued and job.enqueued_at is None
    finally:
        service("start-redis")
    backdate(job_id, 60)
    assert job_id in sweep(timedelta(minutes=10))
    assert wait_job(client, job_id, timeout=60)["status"] == "succeeded"
    assert followups(job_id) == 1


def test_a_job_whose_worker_keeps_dying_fails_with_a_reason(client, worker, observatory, alert):
    """A poison message (its worker died on each of 3 attempts) ends as `failed`, not in a loop."""
    done = submit(client, observatory["hashtag"], "poison-template")
    wait_job(client, done)
    poisoned = unsent_copy(done, "poison")
    with session_scope() as s:
        s.get(Job, poisoned).attempts = 3
    calibrate_job.apply_async(args=[poisoned])
    result = wait_job(client, poisoned)
    assert result["status"] == "failed" and "interrupted 3 times" in result["error"]
    assert followups(poisoned) == 0


def test_retry_after_counts_the_wait_for_a_silent_workers_job(client, worker, observatory, alert):
    """While the worker beats, a running job's Retry-After is the mean job time; once its beats
    stop, it also counts the wait until the sweeper sends the job again (default settings:
    STALE_JOB_SECONDS 30 after the last beat, then the next sweep within SWEEP_INTERVAL 10)."""
    done = submit(client, observatory["hashtag"], "retry-after-template")
    wait_job(client, done)
    job_id = unsent_copy(done, "retry-after")

    def retry_after(silent_s: int) -> int:
        with session_scope() as s:
            s.execute(
                Job.__table__.update()
                .where(Job.id == job_id)
                .values(
                    state=JobState.running,
                    started_at=func.now(),
                    heartbeat_at=func.now() - timedelta(seconds=silent_s),
                )
            )
        return int(client.get(f"/jobs/{job_id}?outputFormat=json").headers["Retry-After"])

    try:
        assert retry_after(0) <= 5
        assert 19 <= retry_after(20) <= 25  # 10 s to stale, up to 10 s to the sweep, the job
        assert 10 <= retry_after(120) <= 15  # stale already: the next sweep, then the job
    finally:
        with session_scope() as s:
            s.get(Job, job_id).state = JobState.failed  # not for a worker of later tests


def test_a_duplicate_delivery_leaves_a_job_to_its_live_worker(client, worker, observatory, alert):
    """A second delivery of a job whose worker still beats (the broker's redelivery, a re-send
    racing a slow worker) neither starts it again nor fails it: the live worker ends it."""
    done = submit(client, observatory["hashtag"], "duplicate-template")
    wait_job(client, done)
    job_id = unsent_copy(done, "duplicate")
    with session_scope() as s:
        s.execute(
            Job.__table__.update()
            .where(Job.id == job_id)
            .values(state=JobState.running, started_at=func.now(), heartbeat_at=func.now())
        )
    try:
        calibrate_job.apply_async(args=[job_id])
        deadline = time.monotonic() + 30
        while f"job={job_id} event=job_running_elsewhere" not in worker.log.read_text():
            assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
            time.sleep(0.1)
        assert attempts(job_id) == ("running", 0)
    finally:
        with session_scope() as s:
            s.get(Job, job_id).state = JobState.failed  # not for a worker of later tests

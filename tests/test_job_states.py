"""The worker's one-statement start and end of a job (`db.job_states.claim`, `succeed` and
`succeed_with_point`) on a real Postgres: a job ends exactly once, with one follow-up row and one
notification, whatever order concurrent deliveries reach it in."""

from __future__ import annotations

import secrets
import select

import psycopg2
import pytest
from sqlalchemy import func, make_url
from sqlalchemy import select as sql_select

from db import job_states
from db.job_events import CHANNEL
from db.job_params import JobParams
from db.models import Followup, Job, JobState, Observatory, Upload
from db.session import engine, session_scope
from tests.helpers import DATA, add_alert

FRAME = DATA / "gaia-demo" / "frame.cat"
RESULT = {
    "survey": "GaiaDR3",
    "filter": "G",
    "mag": 9.5,
    "mag_err": 0.01,
    "limit": False,
    "zeropoint": 25.0,
    "zeropoint_err": 0.01,
    "npoints": 40,
    "processing_time": 0.25,
}


@pytest.fixture(scope="module")
def alert_name(app) -> str:
    name = f"States{secrets.token_hex(3)}"
    add_alert(app, f"ivo://states/{name}", name, 120.5, 45.25)
    return name


@pytest.fixture()
def job_id(app, observatory, alert_name) -> str:
    """A queued job row of the demo frame (no task sent: the test plays the worker)."""
    from db.models import Alert

    with session_scope() as s:
        obs = s.scalars(sql_select(Observatory).where(Observatory.name == observatory["name"]))
        alert = s.scalars(sql_select(Alert).where(Alert.name == alert_name)).one()
        upload = Upload(sha256=secrets.token_hex(32), size=1, path=str(FRAME))
        job = Job(
            idempotency_key=secrets.token_hex(32),
            observatory_id=obs.one().id,
            alert_id=alert.id,
            upload=upload,
            params={"mjd": 60000.5, "comment": "states", "dry_run": False},
        )
        s.add(job)
    return job.id


def _point() -> dict:
    from calib.schema import followup_values

    return {"mjd": 60000.5, "exptime": None, "comment": "states", **followup_values(RESULT)}


def _followups(job_id: str) -> int:
    with session_scope() as s:
        return s.scalar(
            sql_select(func.count()).select_from(Followup).where(Followup.job_id == job_id)
        )


@pytest.fixture()
def listener(database):
    """A LISTEN connection on the job-end channel; yields a function draining its payloads."""
    dsn = make_url(database).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    conn.cursor().execute(f"LISTEN {CHANNEL}")

    def drain(timeout: float = 0.5) -> list[str]:
        select.select([conn], [], [], timeout)
        conn.poll()
        out = [n.payload for n in conn.notifies]
        conn.notifies.clear()
        return out

    yield drain
    conn.close()


def test_claim_starts_the_job_and_reads_what_it_needs(job_id, observatory):
    with engine(autocommit=True).connect() as conn:
        claimed = job_states.claim(conn, job_id)
    assert claimed.attempt == 1
    assert claimed.path == str(FRAME)
    assert claimed.target == (120.5, 45.25)
    assert claimed.filters == ["R", "V", "G"]
    # a row written with only some options (as earlier versions did) reads back typed
    assert claimed.params == JobParams(mjd=60000.5, comment="states")
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job.state == JobState.running and job.started_at is not None


def test_claim_refuses_an_ended_or_exhausted_job(job_id):
    with session_scope() as s:
        s.get(Job, job_id).attempts = job_states.MAX_ATTEMPTS
    with engine(autocommit=True).connect() as conn:
        assert job_states.claim(conn, job_id) is None
        assert job_states.claim(conn, "no-such-job") is None
    with session_scope() as s:
        job = s.get(Job, job_id)
        job.attempts = 0
        job_states.fail(job, "bad frame")
    with engine(autocommit=True).connect() as conn:
        assert job_states.claim(conn, job_id) is None
    with session_scope() as s:
        assert s.get(Job, job_id).attempts == 0  # nothing was written


def test_succeed_ends_once_with_one_point_and_one_notification(job_id, listener):
    with engine(autocommit=True).connect() as conn:
        job_states.claim(conn, job_id)
    listener(0.0)
    with session_scope() as s:
        point_id = job_states.succeed_with_point(s, job_id, RESULT, None, _point())
        assert point_id is not None
        assert listener(0.3) == []  # announced at the commit, not before
    assert listener() == [f"{job_id} 0.2500"]
    # A second delivery finishing the same job writes nothing and announces nothing.
    with session_scope() as s:
        again = job_states.succeed_with_point(s, job_id, {**RESULT, "mag": 1.0}, None, _point())
        assert again is None
    with engine(autocommit=True).connect() as conn:
        assert not job_states.succeed(conn, job_id, {**RESULT, "mag": 1.0}, None)
    assert listener(0.3) == []
    assert _followups(job_id) == 1
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job.state == JobState.succeeded and job.result["mag"] == 9.5
        assert job.finished_at is not None
        assert s.get(Followup, point_id).job_id == job_id


def test_succeed_after_a_failure_changes_nothing(job_id, listener):
    with engine(autocommit=True).connect() as conn:
        job_states.claim(conn, job_id)
    with session_scope() as s:
        job_states.fail(s.get(Job, job_id), "interrupted")
    assert listener() == [job_id]
    with session_scope() as s:
        assert job_states.succeed_with_point(s, job_id, RESULT, None, _point()) is None
    assert listener(0.3) == []
    assert _followups(job_id) == 0
    with session_scope() as s:
        assert s.get(Job, job_id).state == JobState.failed


def test_a_dry_run_succeeds_without_a_point(job_id, listener):
    with engine(autocommit=True).connect() as conn:
        job_states.claim(conn, job_id)
        assert job_states.succeed(conn, job_id, RESULT, "/plots/x.png")
    assert listener() == [f"{job_id} 0.2500"]
    assert _followups(job_id) == 0
    with session_scope() as s:
        assert s.get(Job, job_id).image_path == "/plots/x.png"


def test_a_job_claim_missed_is_told_apart_under_the_lock(job_id):
    """The worker's fallback when `claim` returns None: a job that has become startable since
    (a failed job queued again) is started under the lock; an ended one gives its state."""
    from workers.calibration import JobFailed, _unclaimed

    claimed = _unclaimed(job_id)
    assert claimed.attempt == 1 and claimed.path == str(FRAME)
    assert _unclaimed("no-such-job") == "missing"
    with session_scope() as s:
        job_states.fail(s.get(Job, job_id), "bad frame")
    with pytest.raises(JobFailed, match="bad frame"):
        _unclaimed(job_id)

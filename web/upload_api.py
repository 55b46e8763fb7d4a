"""`POST /upload` (and the seed's `/cgi/upload`): authenticate, validate, queue, answer 202.

The rules live in :mod:`web.job_submission`; this view only maps the seed's form onto them.
"""

from __future__ import annotations

from flask import Blueprint

from web.auth import authenticate
from web.job_submission import (
    catalogue_file,
    create_job,
    parse_params,
    parse_wait,
    resolve_alert,
)
from web.jobs import FINISHED, job_response, wait_for_job, waiter_slot
from web.ops import rate_limited
from web.request_session import db

bp = Blueprint("uploads", __name__)


NEW_ALERT_HINT = (
    "insert it first: POST /newevent with hashtag, EventID, name, ra, dec "
    "(or `flask --app web alert add IVORN --name NAME --ra RA --dec DEC`)"
)


@bp.post("/upload")
@bp.post("/cgi/upload")
@rate_limited
def upload():
    s = db()
    obs = authenticate(s)
    alert = resolve_alert(s, NEW_ALERT_HINT)
    params = parse_params()
    wait = parse_wait()
    job = create_job(s, obs, alert, params, catalogue_file())
    if wait and job.state not in FINISHED:
        s.close()  # give the connection back to the pool while waiting
        with waiter_slot() as slot:
            if slot:  # else answer 202 at once: every waiting slot of this process is taken
                job = wait_for_job(job.id, wait)
    return job_response(job, status=200 if job.state in FINISHED else 202)

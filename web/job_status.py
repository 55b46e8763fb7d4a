"""`POST /jobs/status`: many jobs' states in one request, for batch clients.

A batch client that polled each of its jobs with `GET /jobs/<id>` would send one request per job
per second, and sleep a second per frame. Here it lists its unfinished jobs with the states it has
seen; the answer holds only the jobs whose state differs, and with `wait` the request is held
until one of them ends (woken by the job-end notification, not a sleep).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from calib.schema import RESULT_KEYS
from db.jobs import find_jobs, states_of
from web.errors import ApiError, parse_bounded
from web.jobs import (
    FINISHED,
    MAX_WAIT_S,
    job_json,
    read_connection,
    retry_after_s,
    wait_for_end,
    waiter_slot,
)
from web.negotiation import TABLE_FORMATS, negotiate
from web.tables import TableInfo, table_response

bp = Blueprint("job_status", __name__)
#: The most job ids one request may list.
MAX_IDS = 1000
#: JSON (the first) unless `?format=` or Accept asks for an astronomy table.
STATUS_FORMATS = ("json", *TABLE_FORMATS)
#: The job JSON's keys that fit a table cell (not the candidates and log lists of objects).
TABLE_COLUMNS = (
    "job_id", "status", "alert", "ivorn", "observatory", "mjd", "date_obs", "dry_run",
    *(k for k in RESULT_KEYS if k not in ("candidates", "log", "cutout_url")),
    "error", "followup_id", "attempts", "created_at", "finished_at", "status_url", "url_page",
)  # fmt: skip


def _request_body() -> tuple[list[str], dict[str, str], float]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(
            422,
            "the body must be a JSON object",
            'e.g. {"ids": [...], "states": {...}, "wait": 30}',
        )
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ApiError(422, "ids must be a list of job ids", "the job_id values from /upload")
    if any("\x00" in i for i in ids):
        raise ApiError(400, "malformed request", "a job id contains a NUL character")
    if len(ids) > MAX_IDS:
        raise ApiError(422, f"too many ids ({len(ids)})", f"list at most {MAX_IDS} jobs a request")
    states = body.get("states", {})
    if not isinstance(states, dict) or not all(isinstance(v, str) for v in states.values()):
        raise ApiError(422, "states must be an object", 'e.g. {"<job_id>": "queued"}')
    wait = body.get("wait", 0)
    if isinstance(wait, bool) or not isinstance(wait, (int, float, str)):
        raise ApiError(422, "wait must be a number of seconds", f"0 to {MAX_WAIT_S}")
    return list(dict.fromkeys(ids)), states, parse_bounded("wait", str(wait), float, 0, MAX_WAIT_S)


@bp.post("/jobs/status")
def bulk_status():
    """The listed jobs whose state differs from the one the client gives for them.

    Body: ``{"ids": [job ids, at most 1000], "states": {job id: last seen state}, "wait": N}``;
    a job missing from ``states`` counts as changed. With ``wait`` (seconds, at most 60) and
    nothing changed yet, the answer waits until one of the listed jobs ends or N seconds pass;
    when this server process already holds its most waiting requests it answers at once.
    Answer: ``{"jobs": [job JSON as GET /jobs/<id>], "unknown": [ids of no job], "pending": number
    of listed jobs not finished}``; ``Retry-After`` estimates when the oldest pending job ends.
    Job ids are capabilities, as for ``GET /jobs/<id>``: no key is needed.
    """
    fmt = negotiate(STATUS_FORMATS)
    listed, seen, wait = _request_body()
    ids = [i for i in listed if len(i) <= 32]  # longer ones are no job's id

    def read() -> dict:
        with read_connection() as conn:
            return states_of(conn, ids)

    def changed(rows: dict) -> list[str]:
        return [i for i in ids if i in rows and seen.get(i) != rows[i].state.value]

    rows = read()
    pending = [i for i in ids if i in rows and rows[i].state not in FINISHED]
    if wait and pending and not changed(rows):
        with waiter_slot() as slot:
            if slot:
                rows = wait_for_end(pending, wait, read, lambda r: bool(changed(r)))
    with read_connection() as conn:
        wanted = changed(rows)
        views = find_jobs(conn, wanted) if wanted else {}
        pending = [rows[i] for i in ids if i in rows and rows[i].state not in FINISHED]
        retry_after = None
        if pending:
            oldest = min(pending, key=lambda r: r.created_at)
            retry_after = retry_after_s(conn, oldest.state, oldest.created_at)
    jobs = [job_json(views[i]) for i in wanted if i in views]
    unknown = [i for i in listed if i not in rows]
    if fmt in TABLE_FORMATS:
        facts = {"pending": len(pending), "unknown": " ".join(unknown)}
        info = TableInfo(title="calserv jobs whose state changed", facts=facts)
        resp = table_response(jobs, TABLE_COLUMNS, fmt, info, "jobs")
    else:
        resp = jsonify(jobs=jobs, unknown=unknown, pending=len(pending))
    resp.headers["Cache-Control"] = "no-store"
    if retry_after is not None:
        resp.headers["Retry-After"] = str(retry_after)
    return resp

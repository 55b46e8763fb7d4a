"""The jobs table's statements of creating and reading jobs (with their uploads).

Every change of a job's state is :mod:`db.job_states`; the web tier's other statements on job
rows (a new job and its upload, the job views polls read, the queue ahead of a job) are here, as
Core statements built once: job polls are the busiest
request, and a Core read costs a quarter of the CPU of loading the ORM entities (measured: 0.5
against 2.1 ms).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    Connection,
    Row,
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session

from db.job_params import JobParams
from db.models import Alert, Followup, Job, JobState, Observatory, Upload

_J, _A, _O, _F, _U = (t.__table__ for t in (Job, Alert, Observatory, Followup, Upload))
#: The job's own columns that its JSON shows; :data:`JOB_VIEW` adds its alert's, observatory's
#: and follow-up's.
JOB_FIELDS = (
    "id",
    "state",
    "params",
    "result",
    "error",
    "image_path",
    "attempts",
    "created_at",
    "finished_at",
    "heartbeat_at",
    "alert_id",
    "file_name",
)
#: What a job's JSON shows (:class:`JobView`), as plain columns.
JOB_VIEW: Select = select(
    *(_J.c[name] for name in JOB_FIELDS),
    _A.c.name.label("alert"),
    _A.c.ivorn,
    _O.c.name.label("observatory"),
    _F.c.id.label("followup_id"),
).select_from(
    _J.join(_A, _A.c.id == _J.c.alert_id)
    .join(_O, _O.c.id == _J.c.observatory_id)
    .outerjoin(_F, _F.c.job_id == _J.c.id)
)
_IDS = bindparam("ids", type_=ARRAY(String(32)))
_BY_ID = JOB_VIEW.where(_J.c.id == bindparam("job_id"))
_BY_KEY = JOB_VIEW.where(_J.c.idempotency_key == bindparam("key"))
_BY_IDS = JOB_VIEW.where(_J.c.id == any_(_IDS))
_STATES = select(_J.c.id, _J.c.state, _J.c.created_at).where(_J.c.id == any_(_IDS))


class JobView(NamedTuple):
    """A job as its JSON shows it: the columns of :data:`JOB_VIEW`, in order."""

    id: str
    state: JobState
    params: JobParams
    result: dict | None
    error: str | None
    image_path: str | None
    attempts: int
    created_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    alert_id: int
    file_name: str | None
    alert: str
    ivorn: str
    observatory: str
    followup_id: int | None

    @classmethod
    def of(cls, columns: Sequence[Any]) -> JobView:
        """The view of a row of :data:`JOB_VIEW`'s columns (the stored params typed)."""
        view = cls(*columns)
        return view._replace(params=JobParams.from_json(view.params))


def find_job(
    s: Session | Connection, job_id: str | None = None, idempotency_key: str | None = None
) -> JobView | None:
    """The job with this id (or idempotency key) in one indexed query, or None."""
    if job_id is not None:
        if len(job_id) > 32:
            return None
        row = s.execute(_BY_ID, {"job_id": job_id}).one_or_none()
    else:
        row = s.execute(_BY_KEY, {"key": idempotency_key}).one_or_none()
    return None if row is None else JobView.of(row)


def find_jobs(conn: Connection, job_ids: Sequence[str]) -> dict[str, JobView]:
    """The jobs among `job_ids` that exist, by id, in one query."""
    return {r.id: JobView.of(r) for r in conn.execute(_BY_IDS, {"ids": list(job_ids)})}


def states_of(conn: Connection, job_ids: Sequence[str]) -> dict[str, Row]:
    """(id, state, created_at) of the jobs among `job_ids` that exist, by id: the cheap read
    that a batch client's poll repeats while it waits."""
    return {r.id: r for r in conn.execute(_STATES, {"ids": list(job_ids)})}


_RUNNING_AND_AHEAD = select(
    func.count().filter(_J.c.state == JobState.running),
    func.count().filter(
        and_(_J.c.state == JobState.queued, _J.c.created_at < bindparam("created_at"))
    ),
).where(_J.c.state.in_([JobState.queued, JobState.running]))


def running_and_ahead(conn: Connection, created_at: datetime) -> tuple[int, int]:
    """The jobs running now, and the queued jobs made before `created_at` (ahead in the queue)."""
    running, ahead = conn.execute(_RUNNING_AND_AHEAD, {"created_at": created_at}).one()
    return running, ahead


_NEW_UPLOAD = (
    insert(_U)
    .values(
        sha256=bindparam("sha256"),
        size=bindparam("size"),
        original_name=bindparam("name"),
        path=bindparam("path"),
    )
    .on_conflict_do_nothing(index_elements=["sha256"])
    .returning(_U.c.id)
)
_UPLOAD_ID = select(_U.c.id).where(_U.c.sha256 == bindparam("sha256"))


def record_upload(s: Session, sha256: str, size: int, name: str, key: str) -> int:
    """The id of the upload row of these bytes (stored under `key`), made if they are new: one
    statement for new bytes (INSERT ... RETURNING), a second to read the id of bytes seen
    before."""
    values = {"sha256": sha256, "size": size, "name": name[:300], "path": key}
    upload_id = s.execute(_NEW_UPLOAD, values).scalar()
    if upload_id is None:
        upload_id = s.execute(_UPLOAD_ID, {"sha256": sha256}).scalar_one()
    return upload_id


_NEW_JOB = (
    insert(_J)
    .values(
        id=bindparam("id"),
        idempotency_key=bindparam("key"),
        observatory_id=bindparam("observatory_id"),
        alert_id=bindparam("alert_id"),
        upload_id=bindparam("upload_id"),
        params=bindparam("params", type_=_J.c.params.type),
        file_name=bindparam("file_name"),
        state=JobState.queued,
        enqueued_at=func.now(),  # cleared again if the send fails (job_states.mark_unsent)
    )
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(*(_J.c[name] for name in JOB_FIELDS))
)


class Named(Protocol):
    """An observatory (or alert) as the caller has it: its id and name."""

    id: int
    name: str


def new_job(
    s: Session,
    idempotency_key: str,
    observatory: Named,
    alert: Row,
    upload_id: int,
    params: JobParams,
    file_name: str | None = None,
) -> JobView | None:
    """Insert a queued job under a new random id (INSERT ... ON CONFLICT DO NOTHING RETURNING:
    one statement); None when a job with this idempotency key exists already. The alert row
    brings its id, name and ivorn, as the view shows them. The caller commits before it sends
    the task."""
    row = s.execute(
        _NEW_JOB,
        {
            "id": uuid.uuid4().hex,
            "key": idempotency_key,
            "observatory_id": observatory.id,
            "alert_id": alert.id,
            "upload_id": upload_id,
            "params": params.to_json(),
            "file_name": file_name,
        },
    ).one_or_none()
    if row is None:
        return None
    return JobView.of((*row, alert.name, alert.ivorn, observatory.name, None))

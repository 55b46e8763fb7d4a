"""An observatory's own jobs, newest first, a page at a time (`GET /jobs`): what an observer
reads after uploading a night of frames from a browser tab they have since closed.

One indexed query (`ix_jobs_observatory_created`) over plain columns; the web tier shapes the
rows. Only the observatory's own jobs are ever read: the id comes from its key or login.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Alert, Followup, Job, JobState

_J, _A, _F = Job.__table__, Alert.__table__, Followup.__table__


class JobListRow(NamedTuple):
    """One line of the list: the job, its alert and its result."""

    id: str
    state: JobState
    created_at: datetime | None
    finished_at: datetime | None
    file_name: str | None
    params: dict
    result: dict | None
    error: str | None
    alert_id: int
    alert: str
    followup_id: int | None


_ROWS = select(
    _J.c.id,
    _J.c.state,
    _J.c.created_at,
    _J.c.finished_at,
    _J.c.file_name,
    _J.c.params,
    _J.c.result,
    _J.c.error,
    _J.c.alert_id,
    _A.c.name,
    _F.c.id,
).select_from(_J.join(_A, _A.c.id == _J.c.alert_id).outerjoin(_F, _F.c.job_id == _J.c.id))


def observatory_jobs(
    s: Session,
    observatory_id: int,
    offset: int,
    limit: int,
    state: JobState | None = None,
) -> tuple[int, list[JobListRow]]:
    """(how many jobs the observatory has (in `state`, if given), the page of them from `offset`
    newest first)."""
    where = [_J.c.observatory_id == observatory_id]
    if state is not None:
        where.append(_J.c.state == state)
    total = s.scalar(select(func.count()).select_from(_J).where(*where))
    rows = s.execute(
        _ROWS.where(*where)
        .order_by(_J.c.created_at.desc(), _J.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return total, [JobListRow(*r) for r in rows]

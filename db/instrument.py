"""The instrument models' storage: an (observatory, filter)'s frames, its model row, and the
lock that serialises two rebuilds of one model.

A frame is a current follow-up point (neither withdrawn nor superseded) with what its job's
result adds (colour term and its error, FWHM, the checks it got), so withdrawing a point takes
its frame out of the next rebuild. The statistics are `calib.instrument`'s; this module moves
plain dicts.
"""

from __future__ import annotations

import zlib

from sqlalchemy import Connection, Float, and_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import Alert, Followup, InstrumentModel, Job

_MODELS = InstrumentModel.__table__
MODEL_COLUMNS = tuple(
    c.name for c in _MODELS.columns if c.name not in ("observatory_id", "filter", "updated_at")
)
_CURRENT = and_(Followup.withdrawn_at.is_(None), Followup.superseded_by.is_(None))


def _result_number(key: str):
    return Job.result[key].astext.cast(Float)


_FRAMES = (
    select(
        Followup.id.label("followup_id"),
        Followup.job_id,
        Followup.alert_id,
        Alert.name.label("alert"),
        Followup.filter,
        Followup.mjd,
        Followup.exptime,
        Followup.survey,
        Followup.zeropoint,
        Followup.zeropoint_err,
        Followup.limiting_mag.label("depth"),
        Followup.npoints,
        _result_number("colour_term").label("colour_term"),
        _result_number("colour_term_err").label("colour_term_err"),
        _result_number("fwhm").label("fwhm"),
        Job.result["instrument_checks"]["flags"].label("flags"),
    )
    .join(Job, Job.id == Followup.job_id)
    .join(Alert, Alert.id == Followup.alert_id)
    .where(_CURRENT)
)


def frames(
    s: Session, observatory_id: int, filter_: str | None = None, limit: int = 1000
) -> list[dict]:
    """The most recent current frames of the observatory (of one filter, or all), oldest
    first."""
    q = _FRAMES.where(Followup.observatory_id == observatory_id)
    if filter_ is not None:
        q = q.where(Followup.filter == filter_)
    q = q.order_by(Followup.mjd.desc(), Followup.id.desc()).limit(limit)
    rows = [dict(r._mapping) for r in s.execute(q)]
    for r in rows:
        r["flags"] = r["flags"] or []
    return rows[::-1]


def models(s: Session, observatory_id: int) -> list[dict]:
    """Every model of the observatory, by filter."""
    q = select(_MODELS).where(_MODELS.c.observatory_id == observatory_id).order_by(_MODELS.c.filter)
    return [dict(r._mapping) for r in s.execute(q)]


_JOB_MODELS = (
    select(_MODELS)
    .join(Job.__table__, Job.__table__.c.observatory_id == _MODELS.c.observatory_id)
    .where(Job.__table__.c.id == bindparam("job_id"))
    .order_by(_MODELS.c.filter)
)


def job_models(conn: Connection | Session, job_id: str) -> list[dict]:
    """Every model of the observatory that sent the job: one statement (an autocommit
    connection makes it one round trip)."""
    return [dict(r._mapping) for r in conn.execute(_JOB_MODELS, {"job_id": job_id})]


def point_instrument(s: Session, job_id: str) -> tuple[int, str] | None:
    """(observatory, filter) of the job's current point; None for a dry run or a point already
    withdrawn or superseded."""
    row = s.execute(
        select(Followup.observatory_id, Followup.filter).where(Followup.job_id == job_id, _CURRENT)
    ).first()
    return (row.observatory_id, row.filter) if row else None


def lock(s: Session, observatory_id: int, filter_: str, timeout_ms: int = 5000) -> None:
    """Hold the model's rebuild lock until the transaction ends (two workers finishing frames of
    one instrument would otherwise each miss the other's frame); waits at most `timeout_ms`."""
    s.execute(text(f"SET LOCAL lock_timeout = {int(timeout_ms)}"))
    key = zlib.crc32(filter_.encode()) - 2**31  # a signed 32-bit int
    s.execute(select(func.pg_advisory_xact_lock(observatory_id, key)))


def store(s: Session, observatory_id: int, filter_: str, values: dict) -> None:
    """Insert or replace the model row (`values`: `MODEL_COLUMNS`)."""
    row = {k: values[k] for k in MODEL_COLUMNS}
    stmt = insert(_MODELS).values(observatory_id=observatory_id, filter=filter_, **row)
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=[_MODELS.c.observatory_id, _MODELS.c.filter],
            set_={**row, "updated_at": func.now()},
        )
    )


def delete(s: Session, observatory_id: int, filter_: str) -> None:
    """The model of an instrument left with no frame (all withdrawn)."""
    s.execute(
        _MODELS.delete().where(
            _MODELS.c.observatory_id == observatory_id, _MODELS.c.filter == filter_
        )
    )

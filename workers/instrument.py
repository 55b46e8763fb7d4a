"""A job against its instrument's history, and the history updated with the job.

`history` gives the calibration what each of the observatory's bands expects (the prior of a
frame with few stars); `check` adds `instrument_checks` (and a warning per flag) to a result
before it is stored; `update_model` rebuilds the (observatory, filter) model from its frames once
the job's point is committed, in a transaction of its own. None of them ever fails or holds up a
job: the job's outcome does not depend on them, and the model can be rebuilt from the points at
any time.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from calib.instrument import (
    BandHistory,
    Frame,
    InstrumentModel,
    band_history,
    build_model,
    check_frame,
)
from db import instrument as store
from db.job_params import JobParams
from db.session import engine, session_scope

log = logging.getLogger(__name__)


def frame_of(values: dict, mjd: float | None, exptime: float | None) -> Frame:
    """A frame from a result (or a stored frame row: `depth` for `limiting_mag`)."""
    return Frame(
        mjd=mjd,
        zeropoint=values["zeropoint"],
        zeropoint_err=values.get("zeropoint_err"),
        colour_term=values.get("colour_term"),
        colour_term_err=values.get("colour_term_err"),
        depth=values.get("depth", values.get("limiting_mag")),
        fwhm=values.get("fwhm"),
        exptime=exptime,
    )


def history(job_id: str, params: JobParams) -> dict[str, BandHistory]:
    """What the observatory's history expects in each of its bands at this frame's date and
    exposure time: the prior of frames with few stars (`calib.pipeline.calibrate`)."""
    try:
        rows = _models(job_id)
    except Exception:
        log.exception("event=instrument_history_failed")
        return {}
    out = {}
    for row in rows:
        known = band_history(InstrumentModel.from_dict(row), params.mjd, params.exptime)
        if known is not None:
            out[row["filter"]] = known
    return out


def check(job_id: str, params: JobParams, result: dict) -> dict:
    """`result` with `instrument_checks` when its instrument has enough history (and its flags'
    sentences in `warnings`)."""
    try:
        row = next((m for m in _models(job_id) if m["filter"] == result["filter"]), None)
        if row is None:
            return result
        model = InstrumentModel.from_dict(row)
        mjd = params.mjd or model.last_mjd  # a dry run may come without a date
        checks = check_frame(model, frame_of(result, mjd, params.exptime))
    except Exception:  # the checks are advice: a job never fails for them
        log.exception("event=instrument_check_failed")
        return result
    if checks is not None:
        result["instrument_checks"] = checks.to_dict()
        result["warnings"] = [*(result.get("warnings") or []), *checks.warnings]
        if checks.flags:
            log.info("event=instrument_flags flags=%s", ",".join(checks.flags))
    return result


def _models(job_id: str) -> list[dict]:
    with engine(autocommit=True).connect() as conn:  # one statement: no BEGIN, no COMMIT
        return store.job_models(conn, job_id)


def update_model(job_id: str) -> None:
    """Rebuild the model of the instrument that made the job's point (none for a dry run)."""
    try:
        with session_scope() as s:
            instrument = store.point_instrument(s, job_id)
            if instrument is None:
                return
            rebuild(s, *instrument)
    except Exception:
        log.exception("event=instrument_update_failed")


def rebuild(s: Session, observatory_id: int, filter_: str) -> InstrumentModel | None:
    """The model of (observatory, filter) rebuilt from its current frames and stored."""
    store.lock(s, observatory_id, filter_)
    rows = store.frames(s, observatory_id, filter_)
    model = build_model([frame_of(r, r["mjd"], r["exptime"]) for r in rows])
    if model is None:
        store.delete(s, observatory_id, filter_)
    else:
        store.store(s, observatory_id, filter_, model.to_dict())
    return model

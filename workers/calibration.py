"""One calibration job: stored upload → `calib` against `refcats` → result rows, in one statement.

The job is claimed by one UPDATE that locks its row and re-checks its state, so a redelivered task
(its first worker was killed) resumes the job, and a job that already finished is never written
twice; its end (result, follow-up row, notification) is one statement too (`db.job_states`).
"""

from __future__ import annotations

import io
import logging
import time
from contextlib import contextmanager
from functools import cache

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from blobstore import BlobStore, StoreUnavailable, open_store
from blobstore.keys import cutout_key, plot_key
from calib import CalibrationError, CatalogError, RefCatalog, calibrate, read_catalog
from calib.cutout import render_cutout
from calib.image import SNIFF_BYTES, load_image, looks_like_image
from calib.imaging import calibrate_image
from calib.pipeline import CalibrationResult
from calib.plot import render_calibration_plot
from calib.schema import followup_values
from config import Settings, settings
from db import job_states
from db.job_params import JobParams
from db.models import JobState
from db.observations import make_current
from db.session import engine, session_scope
from refcats.location import PartitionCache
from refcats.store import RefStore, enclosing_cone
from workers import instrument, refcat_stats
from workers.budget import memory_budget
from workers.heartbeat import heartbeat
from workers.job_log import job_context

log = logging.getLogger(__name__)
MJD_J2000 = 51544.5  # MJD of J2000.0 (2000 Jan 1.5 TT)


def warm_up() -> str:
    """Pay a worker's one-off costs before its first job, and before any job's memory budget
    applies: open every survey of the reference store (metadata, footprint indexes, a first
    Parquet read, which maps pyarrow's allocator: ~1.3 GB of address space, little resident),
    then calibrate and plot a small simulated frame (the parsers', the fit's and matplotlib's
    first-use costs: fonts, Agg renderer). Without this the first plotted job after a start
    took seconds, the next a few tenths. Returns a log line.
    """
    from calib.simulate import simulate_field

    t0 = time.perf_counter()
    store = _store()
    surveys = [info.name for info in store.surveys()]
    for name in surveys:
        store.warm(name)
    field = simulate_field(0, n_stars=300)
    catalog = read_catalog(field.ascii_head())
    truth = field.truth
    result = calibrate(catalog, [field.reference], truth["target_ra"], truth["target_dec"])
    render_calibration_plot(result, io.BytesIO())
    return f"surveys={','.join(surveys) or '-'} seconds={time.perf_counter() - t0:.2f}"


class JobFailed(Exception):
    """The job ended as failed; raised only after its row says so and why.

    The row stays the truth; the exception makes Celery record FAILURE with the reason, which is
    what Flower shows. A task that raises is acknowledged like one that returns (late acks give a
    message back only when its worker dies), and nothing retries on it.
    """


def run_job(job_id: str) -> str:
    """Run the job if it still needs running; returns its final state, or raises JobFailed."""
    with job_context(job_id):  # every log line of the job names it
        return _run(job_id)


def _run(job_id: str) -> str:
    with _autocommit() as conn:
        job = job_states.claim(conn, job_id)
    if job is None:
        job = _unclaimed(job_id)
        if isinstance(job, str):
            return job
    params = job.params
    log.info("event=job_started attempt=%d", job.attempt)
    cfg = settings()
    t0 = time.perf_counter()
    try:
        with heartbeat(job_id, cfg.heartbeat_seconds), memory_budget(cfg.job_memory_mb):
            result, image = _calibrate(job_id, job.path, job.target, params, job.filters)
    except Exception as e:
        reason = _reason(e, cfg)
        if reason is None:
            raise  # the database or the file store is down: the task retries, nothing is lost
        return _finish_failed(job_id, *reason)
    result["processing_time"] = round(time.perf_counter() - t0, 3)
    return _finish_succeeded(job_id, params, result, image)


def _reason(e: Exception, cfg: Settings) -> tuple[str, str | None] | None:
    """What to tell the observer about a failed calibration, or None to retry the task.

    The parser wraps whatever stopped it in a CatalogError, so the chain of causes is searched
    for a time limit or the memory budget first: they are the real reason. Then `calib`'s own
    errors (CatalogError, CalibrationError) carry the observer's reason; anything else is an
    internal error, logged with its traceback.
    """
    chain = [e]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    if any(isinstance(c, SoftTimeLimitExceeded) for c in chain):
        return (
            f"calibration took longer than {cfg.task_soft_time_limit} s",
            "the catalogue may be too large; cut it to the sources you need",
        )
    if any(isinstance(c, MemoryError) for c in chain):
        log.warning("event=job_over_memory_budget budget_mb=%d", cfg.job_memory_mb)
        return (
            f"calibration needed more than the {cfg.job_memory_mb} MB of memory a job may use",
            "the catalogue may be too large or malformed; cut it to the sources you need",
        )
    if isinstance(e, (CatalogError, CalibrationError)):
        return str(e), getattr(e, "detail", None)
    if isinstance(e, (OperationalError, StoreUnavailable)):
        return None
    # Anything else is a programming error, never the observer's: a bare ValueError or
    # IndexError from deep in the science once read "the catalogue holds values that cannot
    # be calibrated" and hid the bug.
    log.error("event=job_error", exc_info=e)
    return "internal error while calibrating", "operators have been told"


def _unclaimed(job_id: str) -> job_states.Claimed | str:
    """The rare job that `claim` did not start, locked to tell why: missing, running on a live
    worker (a duplicate delivery), ended (its final state), or out of attempts (failed now: a
    poison message); one that became startable meanwhile (a failed job queued again) is started
    under the lock."""
    with session_scope() as s:
        job = job_states.lock(s, job_id)
        if job is None:
            log.warning("event=job_missing")
            return "missing"
        if job_states.alive_elsewhere(s, job):
            log.info("event=job_running_elsewhere")  # a duplicate delivery: the live one ends it
            return job.state.value
        if job.state not in job_states.FINISHED and job.attempts < job_states.MAX_ATTEMPTS:
            return job_states.claim(s, job_id)
        if job.state not in job_states.FINISHED:
            job_states.fail(
                job,
                f"the calibration was interrupted {job.attempts} times (its worker died); "
                "the catalogue may be too large or malformed: check it, then upload it again",
            )
            log.warning("event=job_poisoned attempts=%d", job.attempts)
        ended = job.state, job.error
    return _ended(*ended)


def _autocommit():
    """A connection whose every statement is its own transaction: no BEGIN and COMMIT round
    trips around the one-statement start and end of a job."""
    return engine(autocommit=True).connect()


@cache
def _blobs() -> BlobStore:
    """Where uploads are read from and plots written to: all this host needs of the others."""
    cfg = settings()
    return open_store(cfg.storage_url, cfg.storage_endpoint_url)


@cache
def _store() -> RefStore:
    """The process's reference store: its row-group cache is shared by the jobs it runs."""
    cfg = settings()
    disk = PartitionCache(cfg.refcat_disk_cache_dir, cfg.refcat_disk_cache_bytes)
    return RefStore(cfg.refcat_dir, cfg.refcat_cache_bytes, disk)


def _calibrate(
    job_id: str, upload: str, target: tuple[float, float], params: JobParams, filters: list[str]
) -> tuple[dict, str | None]:
    with _blobs().open(upload) as f:  # streamed from the store, on this host or not
        data = f.read()
    if looks_like_image(data[:SNIFF_BYTES]):
        return _calibrate_image(job_id, data, target, params, filters)
    catalog = read_catalog(data)
    del data
    references = _References(params.mjd)
    with references.named_on_failure():
        result = calibrate(
            catalog,
            references(catalog.ra, catalog.dec),
            target[0],
            target[1],
            match_dist_arcsec=params.match_dist,
            force_filter=params.force_filter,
            allowed_filters=filters or None,
            instrument_history=instrument.history(job_id, params),
        )
    out = references.add_warnings(result.to_dict())
    image = None if params.no_plot else _put_plot(job_id, result, out)
    return out, image


def _calibrate_image(
    job_id: str, data: bytes, target: tuple[float, float], params: JobParams, filters: list[str]
) -> tuple[dict, str | None]:
    """A FITS image: extraction, WCS check, calibration and forced photometry (`calib.imaging`);
    the calibration plot and the cutout around the alert are written to the store together."""
    frame = load_image(data)
    del data  # the bytes are freed once decoded
    references = _References(params.mjd)
    with references.named_on_failure():
        cal = calibrate_image(
            frame,
            references,
            target[0],
            target[1],
            match_dist_arcsec=params.match_dist,
            force_filter=params.force_filter,
            allowed_filters=filters or None,
            instrument_history=instrument.history(job_id, params),
        )
    result = references.add_warnings(cal.to_dict())
    image = None
    if not params.no_plot:
        r = cal.result
        shown = f"> {r.mag:.2f} (5σ)" if r.limit else f"{r.mag:.3f} ± {r.mag_err:.3f}"
        png = io.BytesIO()
        render_cutout(
            cal.extraction,
            cal.forced,
            cal.pixel_scale_arcsec,
            png,
            f"{r.survey}/{r.filter} {shown}, S/N {cal.forced.snr:.1f}"
            + "".join(f" [{flag}]" for flag in cal.result.target_flags),
        )
        if _put_image(cutout_key(job_id), png.getvalue(), result, "cutout"):
            result["cutout_url"] = f"/jobs/{job_id}/cutout.png"  # web.jobs serves it from there
        image = _put_plot(job_id, cal.result, result)
    return result, image


def _put_plot(job_id: str, result: CalibrationResult, out: dict) -> str | None:
    """The calibration plot rendered in memory and stored durably (before the row naming it
    commits); returns its key, or None when it could not be stored (`out` then says so)."""
    png = io.BytesIO()
    render_calibration_plot(result, png)
    key = plot_key(job_id)
    return key if _put_image(key, png.getvalue(), out, "calibration plot") else None


def _put_image(key: str, data: bytes, out: dict, what: str) -> bool:
    """Store an image of the result, retried with backoff while the store is full or away; if
    it stays so, the result is kept without the image and its `warnings` say so: a briefly full
    disk or a store outage never costs the observer the point."""
    try:
        _blobs().put_retrying(key, data)
    except (StoreUnavailable, OSError) as e:
        log.warning("event=image_not_stored key=%s error=%r", key, str(e))
        out["warnings"] = [
            *(out.get("warnings") or []),
            f"the {what} could not be stored (the file store was full or unreachable); "
            "the measurement is complete without it",
        ]
        return False
    return True


class _References:
    """Reference stars of every survey around source positions, moved to the frame's epoch
    (its MJD) where a survey has proper motions. A survey that cannot be read is skipped and
    kept in ``warnings``: the job's result names it, and so does its failure reason when no
    survey was left to calibrate with."""

    def __init__(self, mjd: float | None):
        self.epoch = 2000.0 + (mjd - MJD_J2000) / 365.25 if mjd else None  # Julian years
        self.warnings: list[str] = []

    def __call__(self, ra, dec) -> list[RefCatalog]:
        _check_footprint(ra, dec, settings().max_frame_radius_deg)
        found = _store().footprint(ra, dec, epoch=self.epoch)
        refcat_stats.report(_store(), settings().redis_url, settings().queue)
        self.warnings += [w for w in found.warnings if w not in self.warnings]
        return [
            RefCatalog.from_columns(survey, {c: t.column(c).to_numpy() for c in t.column_names})
            for survey, t in found.tables.items()
        ]

    @contextmanager
    def named_on_failure(self):
        try:
            yield
        except CalibrationError as e:
            if self.warnings:  # an unreadable survey may be why nothing calibrated
                e.detail = "; ".join(filter(None, [e.detail, *self.warnings]))
            raise

    def add_warnings(self, result: dict) -> dict:
        result["warnings"] = [*(result.get("warnings") or []), *self.warnings]
        return result


def _check_footprint(ra, dec, max_radius_deg: float) -> None:
    """Refuse a frame wider than calserv calibrates before reading the reference store: two
    sources at opposite poles would otherwise read a whole survey."""
    _, _, radius = enclosing_cone(ra, dec)
    if radius is not None and radius > max_radius_deg:
        raise CalibrationError(
            f"the sources spread {radius:.1f} degrees from the frame's centre, more than the "
            f"{max_radius_deg:g} degrees calserv calibrates",
            "check the catalogue's ALPHA/DELTA columns: a few sources far off the frame "
            "(a bad astrometric solution) widen it",
        )


def _finish_succeeded(job_id: str, params: JobParams, result: dict, image: str | None) -> str:
    result = instrument.check(job_id, params, result)
    if params.dry_run:  # no point: the end is one statement, its own transaction
        with _autocommit() as conn:
            ended = job_states.succeed(conn, job_id, result, image)
    else:
        point = {
            "mjd": params.mjd,
            "exptime": params.exptime,
            "comment": params.comment,
            **followup_values(result),
        }
        with session_scope() as s:
            point_id = job_states.succeed_with_point(s, job_id, result, image, point)
            ended = point_id is not None
            if ended:
                make_current(s, point_id)  # it replaces earlier points of the same observation
    if not ended:
        return _final_state(job_id)
    if not params.dry_run:
        instrument.update_model(job_id)  # after the commit: the job has ended whatever happens
    log.info(
        "event=job_succeeded survey=%s filter=%s mag=%.3f limit=%s seconds=%.3f",
        result["survey"],
        result["filter"],
        result["mag"],
        result["limit"],
        result.get("processing_time", 0.0),
    )
    return JobState.succeeded.value


def _final_state(job_id: str) -> str:
    """The state of a job another delivery ended first (the sweeper re-sent it while this one
    ran)."""
    with session_scope() as s:
        return job_states.lock(s, job_id).state.value


def _finish_failed(job_id: str, error: str, detail: str | None) -> str:
    with session_scope() as s:
        job = job_states.lock(s, job_id)
        if job.state not in job_states.FINISHED:
            job_states.fail(job, f"{error}: {detail}" if detail else error)
            log.info("event=job_failed error=%r", error)
        ended = job.state, job.error
    return _ended(*ended)


def _ended(state: JobState, error: str | None) -> str:
    """The state of a job that has ended; JobFailed (with its reason) when it failed."""
    if state == JobState.failed:
        raise JobFailed(error or "failed") from None
    return state.value

"""A validated upload becomes a job: for `POST /upload` (scripts) and `/submit` (browsers).

The one copy of the rules: form fields (or, for seed-era scripts, query parameters) are validated
into a :class:`db.job_params.JobParams`; the raw bytes are stored durably under a server-made
name before anything else; an identical re-upload returns the existing job, a re-sent failed job
is queued again, and the task is sent only after the row is committed (the statements are
`db.jobs` and `db.job_states`). Only the catalogue's header is read here (`check_columns` on the
first kilobytes, so a table without position or magnitude columns is a 422 at once); workers
parse the rest, under time and memory limits. Those header checks live in calib's numpy modules,
imported on first use (`web.ON_FIRST_USE`): building the app for a command or a test never loads
the science stack.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PureWindowsPath

from flask import current_app, request
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from blobstore import BlobStore
from blobstore.keys import upload_key
from calib.options import parse_force_filter
from db import job_states
from db.dispatch import send
from db.job_params import JobParams
from db.jobs import JobView, find_job, new_job, record_upload
from db.models import JobState
from db.observations import job_identity, make_current
from web.alert_registry import find_alert
from web.dates import mjd_of
from web.errors import ApiError, parse_bounded
from web.hygiene import free_text
from web.jobs import MAX_WAIT_S
from web.keys import KeyOwner
from web.seedparams import seed_value

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}
HEAD_BYTES = 64 << 10  # the part of a text catalogue whose header is checked
IMAGE_HINT = (
    "upload one 2-D FITS frame (plain, .fits.gz or Rice-compressed .fz) with a celestial WCS, "
    "or its SExtractor catalogue"
)


def number(name: str, lo: float, hi: float, required: bool = False) -> float | None:
    raw = seed_value(name, "").strip()
    if not raw:
        if required:
            raise ApiError(422, f"{name} is required", HINTS.get(name))
        return None
    return parse_bounded(name, raw, float, lo, hi)


def _flag(name: str, default: bool) -> bool:
    raw = seed_value(name)
    if raw is None:
        return default
    raw = raw.strip().lower()
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ApiError(422, f"{name} must be 0 or 1", f"got {raw[:40]!r}")


HINTS = {
    "MJD": "the Modified Julian Date of mid-exposure, e.g. MJD=59000.5",
    "EventID": "the alert's IVORN (e.g. EventID=ivo://110610) or its name (e.g. Gaia16aye)",
}


def resolve_alert(s: Session, missing_hint: str) -> Row:
    """The alert named by `EventID` (IVORN or name); 422 when absent, 404 when unknown."""
    event = seed_value("EventID", "").strip()
    if not event:
        raise ApiError(422, "EventID is required", HINTS["EventID"])
    alert = find_alert(s, event)
    if alert is None:
        raise ApiError(404, f"unknown alert {event[:100]!r}", missing_hint)
    return alert


def parse_wait() -> int:
    """`wait=N`: hold the request up to N seconds (at most MAX_WAIT_S) for the result."""
    return int(number("wait", 0, MAX_WAIT_S) or 0)


def _mjd(required: bool, dates: bool) -> float | None:
    """`MJD`; with `dates` (the browser form) also a JD or an ISO 8601 date, read as its MJD."""
    raw = request.form.get("MJD", "").strip()
    if not dates or not raw:
        return number("MJD", 0.0, 200000.0, required=required)
    try:
        value = mjd_of(raw)
    except ValueError as e:
        raise ApiError(422, "MJD must be an MJD, a JD or an ISO 8601 date", str(e)) from None
    return parse_bounded("MJD", repr(value), float, 0.0, 200000.0)


def parse_params(dates: bool = False) -> JobParams:
    """The job's options from the form (or a seed-era query string); a 422 names a bad one."""
    dry_run = _flag("dryRun", False)
    match_dist = number("matchDist", 0.0, 60.0)
    force = seed_value("forceFilter", "").strip()
    try:
        parsed = parse_force_filter(force)
    except ValueError as e:
        raise ApiError(422, "forceFilter is malformed", str(e)) from None
    comment = free_text("comment", seed_value("comment", "").strip())
    if len(comment) > 2000:
        raise ApiError(422, "comment too long", "keep comments under 2000 characters")
    return JobParams(
        match_dist=match_dist or None,
        mjd=_mjd(required=not dry_run, dates=dates),
        exptime=number("expTime", 0.0, 1e6),
        comment=comment or None,
        dry_run=dry_run,
        force_filter=None if parsed is None else force,
        no_plot=_flag("noPlot", False),
    )


def catalogue_file() -> FileStorage:
    """The uploaded catalogue or FITS image: field `sexCat`, or its alias `image`."""
    f = request.files.get("sexCat") or request.files.get("image")
    if f is None or (not f.filename and not f.content_length and f.stream is None):
        raise ApiError(
            400,
            "sexCat is missing",
            "attach the SExtractor catalogue (-F sexCat=@frame.cat) or the FITS image "
            "(-F sexCat=@frame.fits, .fits.gz or .fz)",
        )
    return f


def store_upload(s: Session, f: FileStorage) -> tuple[int, str]:
    """Write the bytes durably under their sha256 (`blobstore`) and record them once.

    Returns the upload's id (`db.jobs.record_upload`) and sha256. A full store is a 507 and an
    unreachable one a 503 (`web.errors`; the client retries later), with nothing partial left.
    """
    from calib.image import SNIFF_BYTES

    store: BlobStore = current_app.extensions["blobstore"]
    digest = hashlib.sha256()
    size = 0
    head = b""
    with store.writer() as out:
        while chunk := f.stream.read(1 << 20):
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        if size == 0:
            raise ApiError(400, "sexCat is empty", "the uploaded catalogue has no bytes")
        _check_content(head, size)
        sha = digest.hexdigest()
        key = upload_key(sha)
        out.commit(key)  # durable before the job row that points at it is committed
    return record_upload(s, sha, size, f.filename or "", key), sha


def _check_content(head: bytes, size: int) -> None:
    """Refuse what is neither a catalogue nor a usable FITS image, from the first bytes alone.

    FITS headers are walked (gzip: its first megabyte decompressed) so that a cube, an absurd
    NAXIS, an endless header or a truncated image gets a 422 now; pixels are never decoded here.
    """
    from calib.catalog import check_columns
    from calib.errors import CatalogError
    from calib.image import ImageError, gunzip_head, inspect_fits, is_gzip

    total: int | None = size
    try:
        if is_gzip(head):
            head, total = gunzip_head(head), None
            if not head.startswith(b"SIMPLE  ="):
                raise ImageError("the gzip-compressed upload is not a FITS file")
        if head.startswith(b"SIMPLE  ="):
            inspect_fits(head, total)
            return
    except ImageError as e:
        raise ApiError(422, f"sexCat: {e}", IMAGE_HINT) from None
    try:
        check_columns(head[:HEAD_BYTES])
    except CatalogError as e:
        raise ApiError(
            422,
            f"sexCat is not a usable catalogue: {e.message}",
            "upload SExtractor ASCII_HEAD or FITS_1.0/FITS_LDAC output, a text table whose header "
            "line names the columns (RA DEC MAG [MAGERR] [FLAGS]), or a FITS image (.fits, "
            ".fits.gz, .fz) with a celestial WCS",
        ) from None


def file_name(f: FileStorage) -> str | None:
    """The name the file was sent under, without any folders a client put before it."""
    name = PureWindowsPath(f.filename or "").name.strip()
    return name[:300] or None


def idempotency_key(obs: KeyOwner, alert: Row, sha256: str, params: JobParams) -> str:
    """The job's identity: the observation (observatory, alert, catalogue, MJD) and the options
    that change its point; presentation options (noPlot, comment) are left out."""
    payload = json.dumps(
        {"obs": obs.id, "alert": alert.id, "sha": sha256, "params": job_identity(params)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def create_job(s: Session, obs: KeyOwner, alert: Row, params: JobParams, f: FileStorage) -> JobView:
    """Store the catalogue durably, then return its (new, existing or re-queued) job.

    A new job is one INSERT ... ON CONFLICT DO NOTHING RETURNING and a commit (synchronous: the
    job must be durable before the 202 promises it), then the send; a conflict means an identical
    upload came first, possibly at this very moment, and its committed job is the answer.
    """
    upload_id, sha = store_upload(s, f)
    key = idempotency_key(obs, alert, sha, params)
    job = new_job(s, key, obs, alert, upload_id, params, file_name(f))
    if job is not None:
        s.commit()
        _send(s, job.id, job.attempts, alert.name, obs.name)
        return job
    job = find_job(s, idempotency_key=key)
    # Sending the same frame again is how a user retries a failed job: a fresh start.
    if job.state == JobState.failed and job_states.requeue_failed(s, job.id):
        s.commit()
        _send(s, job.id, 0, alert.name, obs.name)
        job = find_job(s, job.id)
    elif job.followup_id is not None:  # its point may have been superseded or withdrawn since
        make_current(s, job.followup_id)
        s.commit()
    return job


def _send(s: Session, job_id: str, attempt: int, alert: str, observatory: str) -> None:
    if not send(job_id, attempt, alert, observatory):
        job_states.mark_unsent(s, job_id)

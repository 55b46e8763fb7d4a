"""Calibrate one data product of a target with calserv and keep the result as its photometry.

The target is matched to a calserv alert by its names (its name and aliases), then by position
(`CALSERV_MATCH_RADIUS_ARCSEC`, default 5"); a target calserv does not know is created there
with `/newevent` (IVORN `ivo://tom-calserv/<TOM_NAME>/<target id>`). The frame is uploaded with
the user's key, its job awaited (`CALSERV_WAIT_SECONDS`, default 120) and, once it succeeded,
stored as a `PhotometryReducedDatum`: `brightness` and `brightness_error` (or `limit` for an
upper limit), `bandpass` (calserv's survey band), `source_name="calserv"` and
`source_location` the job's URL; `value` keeps calserv's own words: magnitude, error, filter,
limit, survey, zero point, flags, warnings, job_url.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from tom_dataproducts.models import DataProduct, PhotometryReducedDatum

from tom_calserv.client import CalservClient, CalservError
from tom_calserv.models import CalservCalibration, CalservProfile

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)


def client_for(user) -> CalservClient:
    """A client with the user's own key; CalservError when the user has not set one."""
    profile = CalservProfile.objects.filter(user=user).first()
    if profile is None or not profile.api_key:
        raise CalservError("set your calserv key on your profile page first")
    url = getattr(settings, "CALSERV_URL", "")
    if not url:
        raise CalservError("this TOM has no CALSERV_URL setting")
    return CalservClient(url, profile.api_key, getattr(settings, "CALSERV_TIMEOUT_SECONDS", 30))


def target_ivorn(target) -> str:
    tom = re.sub(r"[^A-Za-z0-9._~-]+", "-", getattr(settings, "TOM_NAME", "tom")).strip("-")
    return f"ivo://tom-calserv/{tom or 'tom'}/{target.pk}"


def alert_for(client: CalservClient, target) -> dict:
    """The calserv alert of `target`, created when calserv has none by name or position."""
    names = [target.name, *(a.name for a in target.aliases.all())]
    radius = float(getattr(settings, "CALSERV_MATCH_RADIUS_ARCSEC", 5.0))
    alert = client.find_alert([*names, target_ivorn(target)], target.ra, target.dec, radius)
    if alert is None:
        alert = client.new_event(target_ivorn(target), target.name, target.ra, target.dec)
    return alert


def calibrate(
    data_product: DataProduct, user, mjd: float, exptime: float | None = None
) -> CalservCalibration:
    """Send the frame, wait for its job and store the photometry; the returned record says how
    it ended (`status` succeeded, failed or still running, with `error`)."""
    record = CalservCalibration.objects.create(
        data_product=data_product, user=user, mjd=mjd, exptime=exptime
    )
    try:
        client = client_for(user)
        alert = alert_for(client, data_product.target)
        record.alert = alert["name"]
        with data_product.data.open("rb") as f:
            data = f.read()
        job = client.upload(
            alert["ivorn"], Path(data_product.data.name).name, data, mjd, exptime, wait_s=30
        )
        record.job_url = job["status_url"]
        job = client.wait(job, float(getattr(settings, "CALSERV_WAIT_SECONDS", 120)))
    except CalservError as e:
        record.status, record.error = "failed", str(e)
        record.save()
        return record
    _finish(record, job)
    return record


def refresh(record: CalservCalibration) -> None:
    """Look again at a job that had not ended when its request did (one short poll)."""
    try:
        client = client_for(record.user)
        job_id = record.job_url.rstrip("/").rsplit("/", 1)[-1]
        job = client.wait({"job_id": job_id, "status": record.status}, 1)
    except CalservError as e:
        record.error = str(e)
        record.save()
        return
    _finish(record, job)


def _finish(record: CalservCalibration, job: dict) -> None:
    record.status = job["status"]
    if job["status"] == "failed":
        record.error = job.get("error") or "calserv could not calibrate the frame"
    elif job["status"] == "succeeded":
        record.datum = store_photometry(record.data_product, job, record.mjd, record.exptime)
    record.save()


def store_photometry(
    data_product: DataProduct, job: dict, mjd: float, exptime: float | None
) -> PhotometryReducedDatum:
    """The job's result as the target's photometry point (one per job: a repeat updates it)."""
    limit = bool(job["limit"])
    value = {
        "magnitude": job["mag"],
        "error": None if limit else job["mag_err"],
        "filter": job["filter"],
        "limit": limit,
        "survey": job["survey"],
        "zeropoint": job["zeropoint"],
        "zeropoint_err": job["zeropoint_err"],
        "target_flags": job.get("target_flags") or [],
        "warnings": job.get("warnings") or [],
        "observatory": job["observatory"],
        "alert": job["alert"],
        "job_url": job["status_url"],
    }
    datum, _ = PhotometryReducedDatum.objects.update_or_create(
        target=data_product.target,
        data_product=data_product,
        source_name="calserv",
        source_location=job["status_url"][:200],
        defaults={
            "timestamp": MJD_EPOCH + timedelta(days=mjd),
            "brightness": None if limit else job["mag"],
            "brightness_error": None if limit else job["mag_err"],
            "limit": job["mag"] if limit else None,
            "unit": "mag",
            "bandpass": job["filter"],
            "exposure_time": exptime,
            "telescope": job["observatory"][:255],
            "reduction_version": f"calserv {job['survey']}"[:50],
            "value": value,
        },
    )
    return datum

"""An alert's light curve as data: its follow-up points as rows, and the summaries the alert page
shows (the last magnitude per filter). The plots of them are `web.lightcurve_png` (matplotlib)
and `web.lightcurve_bokeh` (interactive), styled by `web.lightcurve_style`.

The rows are the public light-curve format (`calib.schema.LIGHTCURVE_COLUMNS`): `mjd, date_obs,
mag, magerr, caliberr, filter, survey, observatory, followup_id`, with `magerr = -1` for upper
limits (then `mag` is the limit), `caliberr` the zero-point uncertainty of the calibration and
`date_obs` the MJD in ISO 8601 UTC. Withdrawn and superseded points are not part of the light
curve (they stay in the database).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from calib.schema import followup_result, lightcurve_row
from db.models import Followup, Observatory
from web.dates import date_obs

#: The points that make light curves and lists: neither withdrawn nor superseded.
CURRENT = and_(Followup.withdrawn_at.is_(None), Followup.superseded_by.is_(None))


def lightcurve_rows(s: Session, alert_id: int) -> list[dict]:
    """The alert's follow-up points in time order (`calib.schema.lightcurve_row`, plus job_id)."""
    q = (
        select(Followup, Observatory.name)
        .join(Observatory, Observatory.id == Followup.observatory_id)
        .where(Followup.alert_id == alert_id, CURRENT)
        .order_by(Followup.mjd, Followup.id)
    )
    return [row_of(f, obs_name) for f, obs_name in s.execute(q)]


def row_of(f: Followup, observatory: str) -> dict:
    return lightcurve_row(
        followup_result(f),
        mjd=f.mjd,
        date_obs=date_obs(f.mjd),
        observatory=observatory,
        followup_id=f.id,
        job_id=f.job_id,
        exptime=f.exptime,
        comment=f.comment,
    )


def last_per_filter(rows: Sequence[dict]) -> list[dict]:
    """The newest point of each filter (a detection, or a limit when that is the newest), the
    most recently observed filter first: what an observer checks before the next exposure."""
    last: dict[str, dict] = {}
    for r in rows:  # time order: a later point replaces an earlier one
        last[r["filter"]] = r
    return sorted(last.values(), key=lambda r: r["mjd"], reverse=True)

"""One point per observation.

An observation is identified by (observatory, alert, catalogue content, MJD). Sending it again
with only presentation options changed (noPlot, comment; outputFormat and wait are not stored)
returns the existing job: see :func:`job_identity`. Changing what the point is made from
(forceFilter, matchDist, expTime, dryRun) makes a new job, whose point replaces the old one when
it succeeds; the old point stays in the database, marked superseded by the new one.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.job_params import JobParams

#: Job options that change how a result is shown, not what it is.
PRESENTATION = frozenset({"comment", "no_plot"})

_SUPERSEDE_OTHERS = text(
    """
    UPDATE followups AS o SET superseded_by = n.id
      FROM followups AS n, jobs AS nj, jobs AS oj
     WHERE n.id = :id AND nj.id = n.job_id AND oj.id = o.job_id
       AND oj.upload_id = nj.upload_id AND o.alert_id = n.alert_id
       AND o.observatory_id = n.observatory_id AND o.mjd = n.mjd
       AND o.id <> n.id AND o.superseded_by IS NULL AND o.withdrawn_at IS NULL
    """
)
_RESTORE = text(
    "UPDATE followups SET superseded_by = NULL, withdrawn_at = NULL "
    "WHERE id = :id AND (superseded_by IS NOT NULL OR withdrawn_at IS NOT NULL)"
)


def job_identity(params: JobParams) -> dict:
    """The job options that make a job different (its idempotency key's share)."""
    return {k: v for k, v in params.to_json().items() if k not in PRESENTATION}


def make_current(s: Session, followup_id: int) -> None:
    """Make this point the one shown for its observation: the other current points of the same
    observation become superseded by it, and it is itself no longer superseded or withdrawn
    (sending an observation again puts its point back). The caller commits.

    Concurrent writers are serialised by the row lock the followups trigger takes on the alert.
    """
    s.execute(_SUPERSEDE_OTHERS, {"id": followup_id})
    s.execute(_RESTORE, {"id": followup_id})

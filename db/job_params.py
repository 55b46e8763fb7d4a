"""A calibration job's options, typed once: parsed from the upload form by the web tier, stored
as the job row's `params` JSON, read back by the worker, and (all but the presentation options)
part of the job's identity (`db.observations.job_identity`).

The names are the form's, in snake case (`matchDist` → `match_dist`, arcsec), and stay so from
the form to the worker. Rows written by any earlier version still load: a missing option takes
its default and an unknown one (written by a newer web tier during a rolling upgrade) is
ignored, so a queued job never becomes unreadable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict


class JobParams(BaseModel):
    """The options that change a calibration or its presentation."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: Modified Julian Date of mid-exposure (None only for a dry run).
    mjd: float | None = None
    #: Crossmatch radius, arcsec; None chooses it per survey.
    match_dist: float | None = None
    #: Exposure time, seconds.
    exptime: float | None = None
    #: The observer's note, shown with the point.
    comment: str | None = None
    #: Calibrate without adding a point to the light curve.
    dry_run: bool = False
    #: `forceFilter` as uploaded (`SURVEY/FILTER`, `any/FILTER`, ...; None: automatic), already
    #: checked with `calib.options.parse_force_filter`.
    force_filter: str | None = None
    #: Skip the calibration plot (and an image's cutout).
    no_plot: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in the job row."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> JobParams:
        """The options of a stored job row (of this or any earlier version; see above).

        Raises ``pydantic.ValidationError`` (a ValueError) when a value has the wrong type.
        """
        return cls.model_validate(dict(data or {}))

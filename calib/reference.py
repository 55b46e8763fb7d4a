"""Reference catalogue as handed over by ``refcats`` (or built by hand in a notebook)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RefCatalog:
    """Reference stars of one survey.

    Attributes
    ----------
    survey : str
        Survey name as users write it in ``forceFilter`` (e.g. ``GaiaDR3``, ``APASS``).
    ra, dec : ndarray
        ICRS degrees.
    bands : dict
        band name -> (magnitudes, errors); NaN marks a missing measurement.
    """

    survey: str
    ra: np.ndarray
    dec: np.ndarray
    bands: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def from_columns(cls, survey: str, columns: Mapping[str, object]) -> RefCatalog:
        """Build from ``ra, dec, <band>, <band>_err`` columns (any array-like, e.g. pyarrow).

        Every column ``X`` that has a matching ``X_err`` column is taken as a band, so extra
        columns (``source_id``, flags...) are ignored without configuration.
        """
        if "ra" not in columns or "dec" not in columns:
            raise ValueError("reference columns must include 'ra' and 'dec'")
        ra = np.asarray(columns["ra"], dtype=np.float64)
        dec = np.asarray(columns["dec"], dtype=np.float64)
        bands = {}
        for name in columns:
            if name in ("ra", "dec") or name.endswith("_err") or f"{name}_err" not in columns:
                continue
            mag = np.asarray(columns[name], dtype=np.float64)
            err = np.asarray(columns[f"{name}_err"], dtype=np.float64)
            bands[name] = (mag, err)
        return cls(survey=survey, ra=ra, dec=dec, bands=bands)

    def __len__(self) -> int:
        return len(self.ra)

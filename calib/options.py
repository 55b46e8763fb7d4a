"""The upload options calib understands, parsed without the science stack.

Numpy-free, like `calib.schema`: the web tier validates ``forceFilter`` when the upload arrives (a
malformed one is a 422 at once) with the very rule `calib.pipeline.calibrate` applies in the
worker, without loading numpy and the calibration modules into every web process.
"""

from __future__ import annotations

import re

from calib.errors import CalibrationError

#: ``forceFilter`` values that leave the survey and band to the automatic choice.
AUTOMATIC = ("", "no", "none", "auto", "0")
_FORCE_RE = re.compile(r"^\s*([^/\s]+)\s*/\s*([^/\s]+)\s*$")


def parse_force_filter(value: str | None) -> tuple[str | None, str | None] | None:
    """Parse ``forceFilter``: ``None`` for automatic, else ``(survey, band)``.

    ``'no'``, ``''`` or ``None`` mean automatic; ``'APASS/V'`` forces both; ``any`` on either
    side leaves that side free (``'any/V'`` -> ``(None, 'V')``).

    Raises
    ------
    CalibrationError
        The value is neither automatic nor ``SURVEY/FILTER`` (a ``ValueError``).
    """
    if value is None or value.strip().lower() in AUTOMATIC:
        return None
    match = _FORCE_RE.match(value)
    if match is None:
        raise CalibrationError(
            f"forceFilter {value!r} is not understood; use 'no' for automatic, SURVEY/FILTER "
            "(e.g. APASS/V), any/FILTER or SURVEY/any"
        )
    survey, band = (None if part.lower() == "any" else part for part in match.groups())
    if survey is None and band is None:
        return None
    return survey, band

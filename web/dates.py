"""Modified Julian Dates as ISO 8601 UTC (`date_obs`), and the observer's date input as an MJD.

MJD 0 is 1858-11-17T00:00Z and a day has 86400 s (the usual UTC-based MJD: leap seconds are not
counted), so the conversion is plain arithmetic, to the millisecond.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)
JD_MINUS_MJD = 2400000.5


def date_obs(mjd: float | None) -> str | None:
    """`mjd` as `YYYY-MM-DDThh:mm:ss.sssZ`, or None."""
    if mjd is None:
        return None
    when = MJD_EPOCH + timedelta(days=mjd)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mjd_of(text: str) -> float:
    """An MJD from what an observer types: an MJD (`60000.5`), a JD (`2460000.5`) or an ISO date
    (`2023-02-25T12:00:00`, UTC unless it names an offset). ValueError says what was expected."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number - JD_MINUS_MJD if number >= JD_MINUS_MJD else number
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text[:40]!r} is neither an MJD, a JD nor an ISO 8601 date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - MJD_EPOCH) / timedelta(days=1)

"""Exceptions whose message is shown to the observer as is: what the observer sent cannot be
calibrated, and the message says why. They are the only exceptions a job fails on with its
reason; anything else raised in `calib` is a programming error (an internal error)."""

from __future__ import annotations


class _UserFacingError(Exception):
    """Carry a user-facing ``message`` plus an optional technical ``detail``."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class CatalogError(_UserFacingError, ValueError):
    """The uploaded catalogue cannot be read or lacks a required column."""


class CalibrationError(_UserFacingError, ValueError):
    """The frame could not be calibrated (no match, no candidate passing the quality gates, a
    malformed forceFilter, an alert off the frame...)."""

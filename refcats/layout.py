"""On-disk layout of HATS catalogues and collections: pixels, paths, ``properties`` files.

A survey written by calserv is a HATS *collection* (IVOA HATS note, the layout ``hats-import``
writes), the object catalogue and its margin catalogue side by side::

    SURVEY/collection.properties                obs_collection, hats_primary_table_url=SURVEY,
                                                all_margins/default_margin=SURVEY_<w>arcs
    SURVEY/SURVEY/properties                    key=value text (HATS keys + calserv_*)
    SURVEY/SURVEY/partition_info.csv            Norder,Npix — one line per partition
    SURVEY/SURVEY/dataset/_common_metadata      Parquet schema
    SURVEY/SURVEY/dataset/_metadata             Parquet footers of every partition
    SURVEY/SURVEY/dataset/Norder=k/Dir=D/Npix=n<suffix>
    SURVEY/SURVEY_<w>arcs/...                   the margin catalogue, same layout,
                                                ``dataproduct_type=margin``

``D = n // 10000 * 10000``; pixels are HEALPix NESTED; rows are sorted by ``_healpix_29``
(the order-29 NESTED pixel of each star). ``<suffix>`` is ``hats_npix_suffix``: ``.parquet``
(one file per partition) or ``/`` (a directory of Parquet files per partition).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from refcats.sky import shift

PROPERTIES = "properties"
HATS_PROPERTIES = "hats.properties"  # name used by newer hats-import versions
COLLECTION_PROPERTIES = "collection.properties"
PARTITION_INFO = "partition_info.csv"
DATASET = "dataset"
HEALPIX_29 = "_healpix_29"
DIR_STEP = 10_000
DIRECTORY_SUFFIX = "/"


class RefcatError(ValueError):
    """Bad input or a bad store; the message says what is wrong in the user's terms."""


@dataclass(frozen=True, order=True)
class Pixel:
    """One HEALPix NESTED pixel (a HATS partition): ``order`` and index ``npix``."""

    order: int
    npix: int

    @property
    def dir(self) -> int:
        """``Dir`` value of the partition, as HATS computes it."""
        return self.npix // DIR_STEP * DIR_STEP

    @property
    def start(self) -> int:
        """First order-29 pixel inside this pixel."""
        return self.npix << shift(self.order)

    @property
    def end(self) -> int:
        """One past the last order-29 pixel inside this pixel."""
        return (self.npix + 1) << shift(self.order)

    @property
    def sky_fraction(self) -> float:
        return 1.0 / (12 << (2 * self.order))

    def relative_path(self, npix_suffix: str = ".parquet") -> str:
        """Path of the partition below the catalogue directory (file, or directory for ``/``)."""
        suffix = "" if npix_suffix == DIRECTORY_SUFFIX else npix_suffix
        return f"{DATASET}/Norder={self.order}/Dir={self.dir}/Npix={self.npix}{suffix}"


@dataclass(frozen=True)
class SurveyInfo:
    """What the store knows about one survey.

    Attributes
    ----------
    name : survey name (directory name under the store root, or registered name)
    bands : photometric bands; query results have columns ``<band>`` and ``<band>_err`` (mag)
    nrows : number of stars
    min_order, max_order : lowest and highest HEALPix order of the partitions
    npartitions : number of Parquet partitions
    sky_fraction : fraction of the sky with stars (0..1)
    path : the catalogue location (local directory with symlinks resolved, or URL)
    margin_arcsec : width of the margin catalogue, 0 when there is none
    dropped_rows : rows dropped at ingest because their coordinates were NaN/null
    epoch : Julian epoch of the positions when the survey has proper motions, else None
    """

    name: str
    bands: tuple[str, ...]
    nrows: int
    min_order: int
    max_order: int
    npartitions: int
    sky_fraction: float
    path: str
    margin_arcsec: float = 0.0
    dropped_rows: int = 0
    epoch: float | None = None


def parse_properties(text: str) -> dict[str, str]:
    """Parse a HATS ``key=value`` properties text (``#`` comments, blank lines ignored)."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props[key.strip()] = value.strip()
    return props


def format_properties(props: dict[str, object], title: str = "HATS catalog") -> str:
    """``key=value`` properties text; values are written with ``str``."""
    return "\n".join([f"#{title}"] + [f"{key}={value}" for key, value in props.items()]) + "\n"


def parse_partition_info(text: str) -> list[Pixel]:
    """The pixels listed in a ``partition_info.csv`` text, sorted."""
    rows = csv.DictReader(io.StringIO(text))
    return sorted(Pixel(int(r["Norder"]), int(r["Npix"])) for r in rows)


def format_partition_info(pixels: list[Pixel]) -> str:
    """``partition_info.csv`` text (header ``Norder,Npix``)."""
    return "Norder,Npix\n" + "".join(f"{p.order},{p.npix}\n" for p in sorted(pixels))


def row_group_bounds(metadata) -> np.ndarray:
    """(min, max) of ``_healpix_29`` per row group; (-1, -1) when statistics are missing."""
    col = metadata.schema.names.index(HEALPIX_29) if HEALPIX_29 in metadata.schema.names else -1
    out = np.full((metadata.num_row_groups, 2), -1, dtype=np.int64)
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(col).statistics if col >= 0 else None
        if stats is not None and stats.has_min_max:
            out[i] = (stats.min, stats.max)
    return out


def row_groups_for(bounds: np.ndarray, ranges: np.ndarray) -> list[int]:
    """Row groups whose ``_healpix_29`` span meets one of ``ranges`` (all, without stats)."""
    if ranges.size == 0:
        return []
    unknown = bounds[:, 0] < 0
    # first range whose end is beyond each group's min
    j = np.searchsorted(ranges[:, 1], bounds[:, 0], side="right")
    hit = (j < len(ranges)) & (ranges[np.minimum(j, len(ranges) - 1), 0] <= bounds[:, 1])
    return np.flatnonzero(hit | unknown).tolist()

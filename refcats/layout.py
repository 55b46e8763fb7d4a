"""On-disk layout of the reference store: paths, ``properties`` files, partition lists.

A survey is a HATS catalogue (IVOA HATS note, as written by ``hats-import``)::

    ROOT/SURVEY/properties                      key=value text (HATS keys + calserv_*)
    ROOT/SURVEY/partition_info.csv              Norder,Npix — one line per partition
    ROOT/SURVEY/dataset/_common_metadata        Parquet schema
    ROOT/SURVEY/dataset/_metadata               Parquet footers of every partition
    ROOT/SURVEY/dataset/Norder=k/Dir=D/Npix=n.parquet
    ROOT/SURVEY/margin/...                      the margin catalogue, same layout,
                                                ``dataproduct_type=margin``

``D = n // 10000 * 10000``; pixels are HEALPix NESTED; rows are sorted by
``_healpix_29`` (the order-29 NESTED pixel of each star).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROPERTIES = "properties"
HATS_PROPERTIES = "hats.properties"  # name used by newer hats-import versions
COLLECTION_PROPERTIES = "collection.properties"
PARTITION_INFO = "partition_info.csv"
DATASET = "dataset"
MARGIN = "margin"
HEALPIX_29 = "_healpix_29"
DIR_STEP = 10_000


class RefcatError(ValueError):
    """Bad input or a bad store; the message says what is wrong in the user's terms."""


@dataclass(frozen=True)
class SurveyInfo:
    """What the store knows about one survey.

    Attributes
    ----------
    name : survey name (directory name under the store root)
    bands : photometric bands; each has columns ``<band>`` and ``<band>_err`` (mag)
    nrows : number of stars
    min_order, max_order : lowest and highest HEALPix order of the partitions
    npartitions : number of Parquet partitions
    sky_fraction : fraction of the sky with stars (0..1)
    path : the catalogue directory (symlinks resolved)
    margin_arcsec : width of the margin catalogue, 0 when there is none
    dropped_rows : rows dropped at ingest because their coordinates were NaN/null
    """

    name: str
    bands: tuple[str, ...]
    nrows: int
    min_order: int
    max_order: int
    npartitions: int
    sky_fraction: float
    path: Path
    margin_arcsec: float = 0.0
    dropped_rows: int = 0


def pixel_dir(order: int, npix: int) -> str:
    """``Dir`` value of a partition, as HATS computes it."""
    return str(npix // DIR_STEP * DIR_STEP)


def partition_path(catalog: Path, order: int, npix: int) -> Path:
    """Parquet file of partition (order, npix) below catalogue directory ``catalog``."""
    return (
        catalog
        / DATASET
        / f"Norder={order}"
        / f"Dir={pixel_dir(order, npix)}"
        / f"Npix={npix}.parquet"
    )


def properties_file(catalog: Path) -> Path | None:
    """The properties file of a catalogue directory (either HATS name), or None."""
    for name in (PROPERTIES, HATS_PROPERTIES):
        path = catalog / name
        if path.is_file():
            return path
    return None


def read_properties(path: Path) -> dict[str, str]:
    """Parse a HATS ``key=value`` properties file (``#`` comments, blank lines ignored)."""
    props: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props[key.strip()] = value.strip()
    return props


def write_properties(path: Path, props: dict[str, object], title: str = "HATS catalog") -> None:
    """Write a ``key=value`` properties file; values are written with ``str``."""
    lines = [f"#{title}"] + [f"{key}={value}" for key, value in props.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_partition_info(catalog: Path) -> list[tuple[int, int]]:
    """(Norder, Npix) of every partition listed in ``partition_info.csv``.

    Falls back to scanning ``dataset/Norder=*/Dir=*/Npix=*.parquet`` when the CSV is absent.
    """
    path = catalog / PARTITION_INFO
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as fh:
            rows = [(int(r["Norder"]), int(r["Npix"])) for r in csv.DictReader(fh)]
        return sorted(rows)
    rows = []
    for file in (catalog / DATASET).glob("Norder=*/Dir=*/Npix=*.parquet"):
        order = int(file.parent.parent.name.split("=", 1)[1])
        npix = int(file.name.split("=", 1)[1].split(".", 1)[0])
        rows.append((order, npix))
    return sorted(rows)


def write_partition_info(catalog: Path, partitions: list[tuple[int, int]]) -> None:
    """Write ``partition_info.csv`` (header ``Norder,Npix``)."""
    with (catalog / PARTITION_INFO).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Norder", "Npix"])
        writer.writerows(sorted(partitions))


def catalog_dirs(survey_dir: Path) -> tuple[Path, Path | None]:
    """The object catalogue and margin catalogue directories of a survey entry.

    ``survey_dir`` is either a catalogue (``properties`` + ``dataset/``) or a HATS collection
    (``collection.properties`` naming ``hats_primary_table_url`` and ``default_margin`` /
    ``all_margins``). The margin is looked up, in order: the collection's margin, the
    catalogue's ``calserv_margin`` key, ``<catalogue>/margin``, a sibling ``<SURVEY>_margin``.
    """
    survey_dir = Path(os.path.realpath(survey_dir))
    coll = survey_dir / COLLECTION_PROPERTIES
    if coll.is_file():
        props = read_properties(coll)
        primary = props.get("hats_primary_table_url")
        if not primary:
            raise RefcatError(f"{coll}: no hats_primary_table_url")
        margin_name = props.get("default_margin") or props.get("all_margins", "").split(" ")[0]
        margin = survey_dir / margin_name if margin_name else None
        return survey_dir / primary, margin if margin and margin.is_dir() else None
    candidates = []
    pfile = properties_file(survey_dir)
    if pfile is not None:
        key = read_properties(pfile).get("calserv_margin")
        if key:
            candidates.append(survey_dir / key)
    candidates += [survey_dir / MARGIN, survey_dir.parent / f"{survey_dir.name}_margin"]
    for cand in candidates:
        pfile = properties_file(cand)
        if pfile is not None and read_properties(pfile).get("dataproduct_type") == "margin":
            return survey_dir, cand
    return survey_dir, None


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

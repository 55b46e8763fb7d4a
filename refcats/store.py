"""Read the reference store: list surveys, cone and footprint queries, partition cache.

A query turns the cone into order-29 ranges (``healpy.query_disc(..., inclusive=True,
nest=True)`` at an order about a third of the radius), reads from the touched partitions only
the Parquet row groups whose ``_healpix_29`` span meets a range (rows are sorted by it), and
keeps the rows at exact angular distance ≤ radius. When the radius is within the survey's
margin width, only the partition holding the centre and its margin file are read: every star
of the cone outside that partition lies within the margin. Row groups are held in an LRU cache
bounded in bytes (``pyarrow.Table.nbytes``) and shared by threads.

Surveys are re-opened when ``ROOT/SURVEY`` starts pointing to a new version (see
`refcats.ingest`), so a long-running worker picks up a re-ingest at its next query.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import healpy as hp
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from refcats import sky
from refcats.layout import (
    COLLECTION_PROPERTIES,
    DATASET,
    HEALPIX_29,
    RefcatError,
    SurveyInfo,
    catalog_dirs,
    partition_path,
    properties_file,
    read_partition_info,
    read_properties,
    row_group_bounds,
    row_groups_for,
)

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024


class RowGroupCache:
    """Thread-safe LRU cache of Parquet row groups with a byte budget.

    Keys are ``(file path, row group)``; the size of an entry is its ``Table.nbytes``. An entry
    larger than the whole budget is returned but not kept.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[tuple[str, int], _Group] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, int]) -> _Group | None:
        with self._lock:
            group = self._entries.get(key)
            if group is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return group

    def put(self, key: tuple[str, int], group: _Group) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            if group.nbytes > self.max_bytes:
                return
            self._entries[key] = group
            self.nbytes += group.nbytes
            while self.nbytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.nbytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0


@dataclass
class _Group:
    """One cached row group: the table and its ``_healpix_29`` values (None if absent)."""

    table: pa.Table
    hp29: np.ndarray | None
    is_sorted: bool
    nbytes: int


@dataclass
class _Catalog:
    """An opened HATS catalogue (object or margin): partitions and their row-group spans."""

    path: Path
    props: dict[str, str]
    partitions: list[tuple[int, int]]
    starts: np.ndarray  # order-29 range of each partition, sorted
    ends: np.ndarray
    ra_col: str
    dec_col: str
    _meta: dict[int, tuple] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path) -> _Catalog:
        pfile = properties_file(path)
        if pfile is None:
            raise RefcatError(f"{path}: not a HATS catalogue (no properties file)")
        props = read_properties(pfile)
        parts = read_partition_info(path)
        starts = np.array([p << sky.shift(k) for k, p in parts], dtype=np.int64)
        ends = np.array([(p + 1) << sky.shift(k) for k, p in parts], dtype=np.int64)
        order = np.argsort(starts)
        return cls(
            path=path,
            props=props,
            partitions=[parts[i] for i in order],
            starts=starts[order],
            ends=ends[order],
            ra_col=props.get("hats_col_ra", "ra"),
            dec_col=props.get("hats_col_dec", "dec"),
        )

    def file_meta(self, i: int) -> tuple[Path, pq.FileMetaData, np.ndarray]:
        """Path, Parquet footer and per-row-group ``_healpix_29`` span of partition ``i``."""
        meta = self._meta.get(i)
        if meta is None:
            path = partition_path(self.path, *self.partitions[i])
            md = pq.read_metadata(path)
            meta = self._meta[i] = (path, md, row_group_bounds(md))
        return meta

    def schema(self) -> pa.Schema:
        common = self.path / DATASET / "_common_metadata"
        if common.is_file():
            return pq.read_schema(common)
        if self.partitions:
            return self.file_meta(0)[1].schema.to_arrow_schema()
        return pa.schema([])

    def overlapping(self, ranges: np.ndarray) -> dict[int, np.ndarray]:
        """Partition index → the part of ``ranges`` inside that partition."""
        out: dict[int, np.ndarray] = {}
        if ranges.size == 0 or self.starts.size == 0:
            return out
        first = np.searchsorted(self.ends, ranges[:, 0], side="right")
        last = np.searchsorted(self.starts, ranges[:, 1], side="left")
        for i in sorted({i for a, b in zip(first, last, strict=True) for i in range(a, b)}):
            out[i] = np.clip(ranges, self.starts[i], self.ends[i])
            out[i] = out[i][out[i][:, 1] > out[i][:, 0]]
        return out

    def locate(self, hp29: int) -> int | None:
        """Index of the partition holding order-29 pixel ``hp29``, if any."""
        i = int(np.searchsorted(self.starts, hp29, side="right")) - 1
        return i if i >= 0 and hp29 < self.ends[i] else None


@dataclass
class _Survey:
    info: SurveyInfo
    real_path: str
    main: _Catalog
    margin: _Catalog | None
    columns: list[str]  # default output columns (store names)


class RefStore:
    """A directory of HATS reference catalogues, one per survey.

    Parameters
    ----------
    root : the store root (calserv's ``refcat_dir`` setting)
    cache_bytes : byte budget of the shared row-group cache
    """

    def __init__(self, root: Path, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.root = Path(root)
        self.cache = RowGroupCache(cache_bytes)
        self._surveys: dict[str, _Survey] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ surveys

    def survey_names(self) -> list[str]:
        """Names of the surveys in the store (hidden entries and margin catalogues skipped)."""
        if not self.root.is_dir():
            return []
        names = []
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            if (entry / COLLECTION_PROPERTIES).is_file():
                names.append(entry.name)
                continue
            pfile = properties_file(entry)
            if pfile and read_properties(pfile).get("dataproduct_type", "object") != "margin":
                names.append(entry.name)
        return names

    def surveys(self) -> list[SurveyInfo]:
        """`SurveyInfo` of every readable survey, sorted by name."""
        out = []
        for name in self.survey_names():
            try:
                out.append(self._open(name).info)
            except (RefcatError, OSError, pa.ArrowException) as exc:
                log.error("reference survey %s is unreadable: %s", name, exc)
        return out

    def info(self, survey: str) -> SurveyInfo:
        """`SurveyInfo` of one survey (RefcatError if unknown)."""
        return self._open(survey).info

    def warm(self, survey: str) -> int:
        """Read the first row group of ``survey`` into the cache; returns its rows.

        For a worker's start-up: the first Parquet read of a process pays one-off costs (pyarrow
        imports pandas when it is installed, for the files' pandas metadata) that would
        otherwise land on the first job.
        """
        s = self._open(survey)
        if not s.main.partitions:
            return 0
        path, md, _ = s.main.file_meta(0)
        return self._group(path, md, 0).table.num_rows if md.num_row_groups else 0

    def _open(self, name: str) -> _Survey:
        entry = self.root / name
        real = os.path.realpath(entry)
        with self._lock:
            cached = self._surveys.get(name)
        if cached is not None and cached.real_path == real:
            return cached
        if name.startswith(".") or not os.path.isdir(real):
            known = ", ".join(self.survey_names()) or "none"
            raise RefcatError(f"unknown reference survey {name!r} (known: {known})")
        survey = _load_survey(name, Path(real))
        with self._lock:
            self._surveys[name] = survey
        return survey

    # ------------------------------------------------------------------ queries

    def cone(
        self,
        survey: str,
        ra: float,
        dec: float,
        radius_deg: float,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """Stars of ``survey`` within ``radius_deg`` of (``ra``, ``dec``), ICRS degrees.

        Returns a table with ``columns`` (default ``[source_id,] ra, dec, <band>, <band>_err``;
        RA/Dec are always named ``ra``/``dec`` whatever the catalogue calls them).
        """
        s = self._open(survey)
        if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
            raise RefcatError(f"bad cone centre ({ra}, {dec})")
        if not (np.isfinite(radius_deg) and radius_deg >= 0):
            raise RefcatError(f"bad cone radius {radius_deg}")
        ra = float(ra) % 360.0
        wanted = list(columns) if columns is not None else s.columns
        unknown = [c for c in wanted if c not in s.columns and c not in _all_columns(s)]
        if unknown:
            raise RefcatError(f"{survey}: no column(s) {unknown}; columns: {_all_columns(s)}")
        ranges = sky.disc_ranges(ra, dec, radius_deg, sky.query_order(radius_deg))
        reads: list[tuple[_Catalog, int, np.ndarray]] = []
        home = None
        if s.margin is not None and radius_deg * 3600.0 <= s.info.margin_arcsec:
            home = s.main.locate(int(sky.healpix_29(np.array([ra]), np.array([dec]))[0]))
        if home is not None:
            lo, hi = s.main.starts[home], s.main.ends[home]
            inside = np.clip(ranges, lo, hi)
            reads.append((s.main, home, inside[inside[:, 1] > inside[:, 0]]))
            mi = s.margin.locate(int(lo))
            if mi is not None and s.margin.partitions[mi] == s.main.partitions[home]:
                reads.append((s.margin, mi, sky.subtract_range(ranges, lo, hi)))
        else:
            reads = [(s.main, i, sub) for i, sub in s.main.overlapping(ranges).items()]
        pieces = []
        for catalog, i, sub in reads:
            pieces += self._select(catalog, i, sub, ra, dec, radius_deg)
        return _output(s, pieces, wanted)

    def footprint(
        self, ra: np.ndarray, dec: np.ndarray, pad_arcsec: float = 30.0
    ) -> dict[str, pa.Table]:
        """Reference stars of every survey around a catalogue's positions.

        The region is the cone centred on the mean direction of the positions, with radius to
        the farthest one plus ``pad_arcsec`` (RA wrap and poles need no special case). Returns
        ``{survey: table}`` for the surveys with stars there; a survey that cannot be read is
        logged and skipped so one broken catalogue does not stop calibration with the others.
        """
        ra0, dec0, radius = enclosing_cone(ra, dec)
        if radius is None:
            return {}
        radius = min(radius + pad_arcsec / 3600.0, 180.0)
        out = {}
        for name in self.survey_names():
            try:
                table = self.cone(name, ra0, dec0, radius)
            except (RefcatError, OSError, pa.ArrowException) as exc:
                log.error("reference survey %s skipped: %s", name, exc)
                continue
            if table.num_rows:
                out[name] = table
        return out

    def _select(self, catalog: _Catalog, i: int, ranges, ra0, dec0, radius) -> list[pa.Table]:
        if ranges.size == 0:
            return []
        path, md, bounds = catalog.file_meta(i)
        pieces = []
        for rg in row_groups_for(bounds, ranges):
            group = self._group(path, md, rg)
            if group.hp29 is None:
                rows = None
            elif group.is_sorted:
                rows = sky.rows_in_ranges(group.hp29, ranges)
            else:
                rows = np.flatnonzero(np.searchsorted(ranges.ravel(), group.hp29, "right") % 2)
            table = group.table if rows is None else group.table.take(pa.array(rows))
            if table.num_rows == 0:
                continue
            ra = table.column(catalog.ra_col).to_numpy()
            dec = table.column(catalog.dec_col).to_numpy()
            keep = sky.within(ra, dec, ra0, dec0, radius)
            if keep.any():
                pieces.append(table.filter(pa.array(keep)))
        return pieces

    def _group(self, path: Path, md: pq.FileMetaData, rg: int) -> _Group:
        key = (str(path), rg)
        group = self.cache.get(key)
        if group is None:
            table = pq.ParquetFile(path, metadata=md).read_row_group(rg)
            hp29 = None
            if HEALPIX_29 in table.column_names:
                hp29 = table.column(HEALPIX_29).to_numpy()
            is_sorted = hp29 is not None and bool(np.all(hp29[1:] >= hp29[:-1]))
            group = _Group(table, hp29, is_sorted, table.nbytes)
            self.cache.put(key, group)
        return group


def enclosing_cone(ra, dec) -> tuple[float, float, float | None]:
    """Centre (mean direction) and radius (to the farthest point), degrees, of positions.

    Returns radius None when there is no finite position; radius 180 when the positions
    surround the sphere (mean direction undefined).
    """
    ra = np.asarray(ra, dtype=np.float64).ravel()
    dec = np.asarray(dec, dtype=np.float64).ravel()
    ok = np.isfinite(ra) & np.isfinite(dec)
    if not ok.any():
        return 0.0, 0.0, None
    vec = hp.ang2vec(ra[ok], dec[ok], lonlat=True).reshape(-1, 3)
    mean = vec.mean(axis=0)
    norm = np.linalg.norm(mean)
    if norm < 1e-9:
        return 0.0, 90.0, 180.0
    ra0, dec0 = hp.vec2ang(mean / norm, lonlat=True)
    ra0, dec0 = float(ra0[0]) % 360.0, float(dec0[0])
    radius = float(sky.angular_distance_deg(ra0, dec0, ra[ok], dec[ok]).max())
    return ra0, dec0, radius


def _all_columns(s: _Survey) -> list[str]:
    names = [n for n in s.main.schema().names if n not in (HEALPIX_29, "Norder", "Dir", "Npix")]
    return ["ra" if n == s.main.ra_col else "dec" if n == s.main.dec_col else n for n in names]


def _output(s: _Survey, pieces: list[pa.Table], wanted: list[str]) -> pa.Table:
    rename = {s.main.ra_col: "ra", s.main.dec_col: "dec"}
    if pieces:
        table = pa.concat_tables(pieces, promote_options="permissive")
    else:
        table = s.main.schema().empty_table()
    table = table.rename_columns([rename.get(n, n) for n in table.column_names])
    return table.select(wanted)


def _load_survey(name: str, real: Path) -> _Survey:
    main_dir, margin_dir = catalog_dirs(real)
    main = _Catalog.open(main_dir)
    margin = _Catalog.open(margin_dir) if margin_dir is not None else None
    props = main.props
    schema_names = main.schema().names
    if props.get("calserv_bands"):
        bands = tuple(b for b in props["calserv_bands"].split(",") if b)
    else:  # a dropped-in HATS catalogue: bands are the columns X that have an X_err
        bands = tuple(
            n for n in schema_names if f"{n}_err" in schema_names and n not in (main.ra_col,)
        )
    columns = (["source_id"] if "source_id" in schema_names else []) + ["ra", "dec"]
    for band in bands:
        columns += [band] + ([f"{band}_err"] if f"{band}_err" in schema_names else [])
    orders = [k for k, _ in main.partitions] or [0]
    if "moc_sky_fraction" in props:
        sky_fraction = float(props["moc_sky_fraction"])
    else:
        sky_fraction = sum(1.0 / (12 << (2 * k)) for k, _ in main.partitions)
    margin_arcsec = float(margin.props.get("hats_margin_threshold", 0.0)) if margin else 0.0
    info = SurveyInfo(
        name=name,
        bands=bands,
        nrows=int(props.get("hats_nrows", 0)),
        min_order=min(orders),
        max_order=max(orders),
        npartitions=len(main.partitions),
        sky_fraction=sky_fraction,
        path=real,
        margin_arcsec=margin_arcsec,
        dropped_rows=int(props.get("calserv_dropped_rows", 0)),
    )
    return _Survey(info, str(real), main, margin, columns)

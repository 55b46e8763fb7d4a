"""Read reference surveys: list them, check their health, cone and footprint queries.

A survey is a HATS catalogue or collection, either built by `refcats.ingest` under the store
root (``ROOT/SURVEY``) or registered in place with `refcats.registry` (a local path or a URL).
A query is done in two steps, as lsdb does:

1. *partition search* (`search_partitions`): the cone becomes order-29 ranges
   (``healpy.query_disc(..., inclusive=True, nest=True)`` at an order about a third of the
   radius) and the partitions they meet. When the radius is within the survey's margin width,
   only the partition holding the centre and its margin partition are read: every star of the
   cone outside that partition lies within the margin.
2. *point filter* (`RefStore._filter_points`): of each partition, only the Parquet row groups
   whose ``_healpix_29`` span meets a range are read, and only the rows at exact angular
   distance ≤ radius are kept (after moving them to the requested epoch when the survey has
   proper motions).

Row groups are held in an LRU cache bounded in bytes and shared by threads; partition files of
remote surveys are first copied to an on-disk `refcats.location.PartitionCache`.

Surveys are re-opened when ``ROOT/SURVEY`` starts pointing to a new version (see
`refcats.ingest`) or their registration changes, so a long-running worker picks them up at its
next query.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import healpy as hp
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from refcats import registry, sky, stats
from refcats.layout import (
    COLLECTION_PROPERTIES,
    DATASET,
    DIRECTORY_SUFFIX,
    HATS_PROPERTIES,
    HEALPIX_29,
    PARTITION_INFO,
    PROPERTIES,
    Pixel,
    RefcatError,
    SurveyInfo,
    parse_partition_info,
    parse_properties,
    row_group_bounds,
    row_groups_for,
)
from refcats.location import Location, PartitionCache

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024
DEFAULT_DISK_CACHE_BYTES = 20 * 1024**3
#: Proper motion assumed as the fastest of a survey that does not say (``calserv_pm_max``):
#: cones are widened by it times the epoch difference so that no moving star is missed.
DEFAULT_PM_MAX_MASYR = 1000.0
HIDDEN_COLUMNS = (HEALPIX_29, "Norder", "Dir", "Npix")
READ_ERRORS = (RefcatError, OSError, pa.ArrowException)
#: A survey that could not be read is tried again for a frame after this many seconds.
RETRY_S = 60.0
#: Added to a frame's radius when testing it against a survey's footprint (proper motions).
FOOTPRINT_SLACK_DEG = 0.05


class RowGroupCache:
    """Thread-safe LRU cache of Parquet row groups with a byte budget.

    Keys are ``(file path, row group, columns)``; the size of an entry is its ``Table.nbytes``.
    An entry larger than the whole budget is returned but not kept.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[tuple, _Group] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple) -> _Group | None:
        with self._lock:
            group = self._entries.get(key)
            if group is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return group

    def put(self, key: tuple, group: _Group) -> None:
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
class _File:
    """One Parquet file of a partition: local path, footer, ``_healpix_29`` span per row group."""

    path: str
    metadata: pq.FileMetaData
    bounds: np.ndarray


@dataclass
class _Catalog:
    """An opened HATS catalogue (object or margin): partitions and their files."""

    location: Location
    props: dict[str, str]
    version: str  # hash of the properties text: partitions are immutable while it holds
    pixels: list[Pixel]
    starts: np.ndarray  # order-29 range of each partition, sorted
    ends: np.ndarray
    ra_col: str
    dec_col: str
    npix_suffix: str
    _files: dict[int, list[_File]] = field(default_factory=dict)
    _schema: pa.Schema | None = None

    @classmethod
    def open(cls, location: Location) -> _Catalog:
        text = location.read_text(HATS_PROPERTIES) or location.read_text(PROPERTIES)
        if text is None:
            raise RefcatError(f"{location.url}: not a HATS catalogue (no properties file)")
        props = parse_properties(text)
        suffix = props.get("hats_npix_suffix", ".parquet")
        info = location.read_text(PARTITION_INFO)
        pixels = parse_partition_info(info) if info is not None else _scan_pixels(location)
        pixels.sort(key=lambda p: p.start)
        return cls(
            location=location,
            props=props,
            version=hashlib.sha256(text.encode()).hexdigest()[:16],
            pixels=pixels,
            starts=np.array([p.start for p in pixels], dtype=np.int64),
            ends=np.array([p.end for p in pixels], dtype=np.int64),
            ra_col=props.get("hats_col_ra", "ra"),
            dec_col=props.get("hats_col_dec", "dec"),
            npix_suffix=suffix,
        )

    def files(self, i: int, cache: PartitionCache) -> list[_File]:
        """The Parquet files of partition ``i`` (a local copy for remote catalogues)."""
        files = self._files.get(i)
        if files is None:
            rel = self.pixels[i].relative_path(self.npix_suffix)
            if self.npix_suffix == DIRECTORY_SUFFIX:
                paths = self.location.parquet_files(rel)
                if not paths:
                    raise RefcatError(f"{self.location.url}: partition directory {rel} is empty")
            else:
                paths = [self.location.file(rel)]
            files = []
            for path in paths:
                local = cache.local_path(self.location, path, self.version)
                md = pq.read_metadata(local)
                files.append(_File(local, md, row_group_bounds(md)))
            self._files[i] = files
        return files

    def schema(self, cache: PartitionCache) -> pa.Schema:
        if self._schema is None:
            common = self.location.file(f"{DATASET}/_common_metadata")
            try:
                with self.location.fs.open(common, "rb") as fh:
                    self._schema = pq.read_schema(fh)
            except FileNotFoundError:
                files = self.files(0, cache) if self.pixels else []
                md = files[0].metadata if files else None
                self._schema = md.schema.to_arrow_schema() if md else pa.schema([])
        return self._schema

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


def _scan_pixels(location: Location) -> list[Pixel]:
    """Pixels from the ``Norder=k/Dir=D/Npix=n`` names, for catalogues without partition_info."""
    pixels = []
    for path in location.fs.glob(location.file(f"{DATASET}/Norder=*/Dir=*/Npix=*")):
        parts = path.rstrip("/").split("/")
        order = int(parts[-3].split("=", 1)[1])
        npix = int(parts[-1].split("=", 1)[1].split(".", 1)[0])
        pixels.append(Pixel(order, npix))
    return sorted(set(pixels))


@dataclass
class _Survey:
    info: SurveyInfo
    key: object  # what the survey was opened from; a change re-opens it
    main: _Catalog
    margin: _Catalog | None
    outputs: dict[str, str | None]  # output column -> catalogue column (None: all-NaN errors)
    pm_columns: tuple[str, str] | None
    pm_max_masyr: float


@dataclass(frozen=True)
class SurveyHealth:
    """Result of `RefStore.health` for one survey: its info, or why it cannot be used."""

    name: str
    location: str
    info: SurveyInfo | None
    problem: str | None

    @property
    def usable(self) -> bool:
        return self.problem is None


@dataclass
class Footprint:
    """Reference stars per survey around a frame, and why any survey was left out."""

    tables: dict[str, pa.Table]
    warnings: list[str]


@dataclass(frozen=True)
class _Read:
    """One partition (or margin partition) to read, and the order-29 ranges wanted in it."""

    catalog: _Catalog
    index: int
    ranges: np.ndarray


class RefStore:
    """The reference surveys of a store root: built ones and registered ones.

    Parameters
    ----------
    root : the store root (calserv's ``refcat_dir`` setting)
    cache_bytes : byte budget of the shared in-memory row-group cache
    disk_cache : on-disk cache of remote partition files (default ``ROOT/.cache``, 20 GiB)
    """

    def __init__(
        self,
        root: Path,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        disk_cache: PartitionCache | None = None,
    ):
        self.root = Path(root)
        self.cache = RowGroupCache(cache_bytes)
        self.disk_cache = disk_cache or PartitionCache(
            self.root / ".cache", DEFAULT_DISK_CACHE_BYTES
        )
        self._surveys: dict[str, _Survey] = {}
        self._lock = threading.Lock()
        self._down: dict[str, tuple[float, str]] = {}  # survey -> (retry after, why)
        self._unreadable: dict[str, int] = {}  # survey -> frames in its footprint it failed
        self._coverage_saved: set[str] = set()

    # ------------------------------------------------------------------ surveys

    def survey_names(self) -> list[str]:
        """Names of the surveys: built under the root (hidden entries and margins skipped)
        and registered."""
        names = set(registry.load(self.root))
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if entry.name.startswith(".") or not entry.is_dir():
                    continue
                if (entry / COLLECTION_PROPERTIES).is_file():
                    names.add(entry.name)
                    continue
                for pname in (HATS_PROPERTIES, PROPERTIES):
                    pfile = entry / pname
                    if pfile.is_file():
                        kind = parse_properties(pfile.read_text(encoding="utf-8"))
                        if kind.get("dataproduct_type", "object") != "margin":
                            names.add(entry.name)
                        break
        return sorted(names)

    def surveys(self) -> list[SurveyInfo]:
        """`SurveyInfo` of every readable survey, sorted by name."""
        return [h.info for h in self.health() if h.info is not None]

    def health(self) -> list[SurveyHealth]:
        """Every survey with its info or the reason it is unusable (unreadable properties or
        partitions, no band with magnitude columns)."""
        out = []
        registered = registry.load(self.root)
        for name in self.survey_names():
            where = registered[name].location if name in registered else str(self.root / name)
            try:
                survey = self._open(name)
                if survey.main.pixels:
                    survey.main.files(0, self.disk_cache)  # the data are where they should be
                problem = None
                if not survey.info.bands:
                    problem = "no usable band: map bands with --band BAND:MAGCOL:ERRCOL"
                out.append(SurveyHealth(name, where, survey.info, problem))
            except READ_ERRORS as exc:
                out.append(SurveyHealth(name, where, None, f"unreadable: {exc}"))
        return out

    def reachable(self, name: str) -> str | None:
        """None when survey ``name``'s location answers now, else why not: its properties file
        is read again (over the network for a remote survey), whatever was cached before."""
        reg = registry.load(self.root).get(name)
        if reg is not None:
            location = Location(reg.location, reg.storage_options)
        else:
            location = Location(str(self.root / name))
        try:
            for pname in (COLLECTION_PROPERTIES, HATS_PROPERTIES, PROPERTIES):
                if location.read_text(pname) is not None:
                    return None
        except Exception as exc:  # any transport's error (aiohttp, botocore, OS): a probe
            return f"unreachable: {type(exc).__name__}: {exc}"[:300]
        return "unreachable: no properties file"

    def stats(self) -> dict[str, float]:
        """This process's cumulative read counters (names in `refcats.stats`)."""
        disk = self.disk_cache
        out = {
            stats.CACHE_HITS: self.cache.hits,
            stats.CACHE_MISSES: self.cache.misses,
            stats.FETCHES: disk.fetches,
            stats.FETCH_SECONDS: disk.fetch_seconds,
        }
        for upper, n in zip(stats.FETCH_BUCKETS, disk.fetch_buckets, strict=True):
            out[stats.bucket_field(upper)] = n
        for name, n in self._unreadable.items():
            out[stats.UNREADABLE + name] = n
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
        if not s.main.pixels:
            return 0
        file = s.main.files(0, self.disk_cache)[0]
        if not file.metadata.num_row_groups:
            return 0
        columns = list(dict.fromkeys(c for c in s.outputs.values() if c))
        return self._group(file, 0, columns).table.num_rows

    def _open(self, name: str) -> _Survey:
        reg = registry.load(self.root).get(name)
        if reg is not None:
            key: object = reg
            location = Location(reg.location, reg.storage_options)
        else:
            entry = self.root / name
            if name.startswith(".") or not entry.is_dir():
                known = ", ".join(self.survey_names()) or "none"
                raise RefcatError(f"unknown reference survey {name!r} (known: {known})")
            key = os.path.realpath(entry)
            location = Location(str(key))
        with self._lock:
            cached = self._surveys.get(name)
        if cached is not None and cached.key == key:
            return cached
        survey = _load_survey(name, location, key, reg, self.disk_cache)
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
        epoch: float | None = None,
    ) -> pa.Table:
        """Stars of ``survey`` within ``radius_deg`` of (``ra``, ``dec``), ICRS degrees.

        Returns a table with ``columns`` (default ``[source_id,] ra, dec, <band>, <band>_err``;
        RA/Dec are always named ``ra``/``dec`` and bands by their calserv names whatever the
        catalogue calls them). With ``epoch`` (Julian year) and a survey with proper motions,
        positions are moved to that epoch before the distance cut.
        """
        s = self._open(survey)
        if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
            raise RefcatError(f"bad cone centre ({ra}, {dec})")
        if not (np.isfinite(radius_deg) and radius_deg >= 0):
            raise RefcatError(f"bad cone radius {radius_deg}")
        ra = float(ra) % 360.0
        available = _available_outputs(s, self.disk_cache)
        wanted = list(columns) if columns is not None else list(s.outputs)
        unknown = [c for c in wanted if c not in available]
        if unknown:
            raise RefcatError(f"{survey}: no column(s) {unknown}; columns: {list(available)}")
        years = None
        if epoch is not None and s.pm_columns is not None and s.info.epoch is not None:
            years = float(epoch) - s.info.epoch
        pad = abs(years) * s.pm_max_masyr / 3.6e6 if years else 0.0
        reads = search_partitions(s, ra, dec, min(radius_deg + pad, 180.0))
        sources = [available[c] for c in wanted if available[c] is not None]
        read_cols = list(dict.fromkeys([s.main.ra_col, s.main.dec_col, *sources]))
        if years:
            read_cols += [c for c in s.pm_columns if c not in read_cols]
        pieces = []
        for r in reads:
            pieces += self._filter_points(r, read_cols, ra, dec, radius_deg, s.pm_columns, years)
        return _output(s, pieces, wanted, available, self.disk_cache)

    def footprint(
        self,
        ra: np.ndarray,
        dec: np.ndarray,
        pad_arcsec: float = 30.0,
        epoch: float | None = None,
    ) -> Footprint:
        """Reference stars of every survey around a catalogue's positions.

        The region is the cone centred on the mean direction of the positions, with radius to
        the farthest one plus ``pad_arcsec`` (RA wrap and poles need no special case). Surveys
        with stars there are in ``tables``; a survey that cannot be read is logged and named in
        ``warnings`` so one broken catalogue neither stops calibration with the others nor
        goes unnoticed.
        """
        ra0, dec0, radius = enclosing_cone(ra, dec)
        if radius is None:
            return Footprint({}, [])
        radius = min(radius + pad_arcsec / 3600.0, 180.0)
        wide = min(radius + FOOTPRINT_SLACK_DEG, 180.0)
        region = sky.disc_ranges(ra0, dec0, wide, sky.query_order(wide))
        tables, warnings = {}, []
        for name in self.survey_names():
            covered = self._coverage(name)
            if covered is not None and not _overlaps(*covered, region):
                continue  # outside its footprint: not consulted, reachable or not
            try:
                table = self._cone_unless_down(name, ra0, dec0, radius, epoch)
            except READ_ERRORS as exc:
                self._unreadable[name] = self._unreadable.get(name, 0) + 1
                log.error("reference survey %s skipped: %s", name, exc)
                warnings.append(f"reference survey {name} skipped: it could not be read ({exc})")
                continue
            if table.num_rows:
                tables[name] = table
        return Footprint(tables, warnings)

    def _cone_unless_down(self, name, ra, dec, radius, epoch) -> pa.Table:
        """`cone`, but a survey that failed less than `RETRY_S` ago fails again at once (a
        remote one that does not answer would cost every frame its timeout)."""
        now = time.monotonic()
        with self._lock:
            down = self._down.get(name)
        if down is not None and down[0] > now:
            raise RefcatError(down[1])
        try:
            table = self.cone(name, ra, dec, radius, epoch=epoch)
        except READ_ERRORS as exc:
            with self._lock:
                self._down[name] = (now + RETRY_S, str(exc))
            raise
        with self._lock:
            self._down.pop(name, None)
        self._save_coverage(name)
        return table

    def _coverage(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The order-29 ranges a survey's partitions cover: from the open survey, else as last
        saved in the disk cache (so a survey unreachable since this process started is still
        known by its footprint), else None."""
        with self._lock:
            survey = self._surveys.get(name)
        if survey is not None:
            return survey.main.starts, survey.main.ends
        try:
            data = json.loads(self._coverage_file(name).read_text())
            return np.array(data["starts"], dtype=np.int64), np.array(data["ends"], dtype=np.int64)
        except (OSError, ValueError, KeyError):
            return None

    def _save_coverage(self, name: str) -> None:
        with self._lock:
            survey = self._surveys.get(name)
        if survey is None or name in self._coverage_saved:
            return
        path = self._coverage_file(name)
        data = {"starts": survey.main.starts.tolist(), "ends": survey.main.ends.tolist()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)
            self._coverage_saved.add(name)
        except OSError as exc:  # a read-only cache only costs the offline footprint check
            log.warning("footprint of %s not saved: %s", name, exc)

    def _coverage_file(self, name: str) -> Path:
        reg = registry.load(self.root).get(name)
        where = reg.location if reg is not None else str(self.root / name)
        digest = hashlib.sha256(f"{name}\n{where}".encode()).hexdigest()[:32]
        return self.disk_cache.directory / "footprints" / f"{digest}.json"

    def _filter_points(
        self, read: _Read, columns, ra0, dec0, radius, pm_columns, years
    ) -> list[pa.Table]:
        """Rows of one partition within ``radius`` of the centre (moved by ``years`` of proper
        motion first when given)."""
        if read.ranges.size == 0:
            return []
        cat = read.catalog
        pieces = []
        for file in cat.files(read.index, self.disk_cache):
            for rg in row_groups_for(file.bounds, read.ranges):
                group = self._group(file, rg, columns)
                if group.hp29 is None:
                    rows = None
                elif group.is_sorted:
                    rows = sky.rows_in_ranges(group.hp29, read.ranges)
                else:
                    edges = read.ranges.ravel()
                    rows = np.flatnonzero(np.searchsorted(edges, group.hp29, "right") % 2)
                table = group.table if rows is None else group.table.take(pa.array(rows))
                if table.num_rows == 0:
                    continue
                ra = table.column(cat.ra_col).to_numpy(zero_copy_only=False).astype(float)
                dec = table.column(cat.dec_col).to_numpy(zero_copy_only=False).astype(float)
                if years:
                    pmra, pmdec = (
                        table.column(c).to_numpy(zero_copy_only=False).astype(float)
                        for c in pm_columns
                    )
                    ra, dec = sky.propagate(ra, dec, pmra, pmdec, years)
                    table = table.set_column(
                        table.column_names.index(cat.ra_col), cat.ra_col, pa.array(ra)
                    )
                    table = table.set_column(
                        table.column_names.index(cat.dec_col), cat.dec_col, pa.array(dec)
                    )
                keep = sky.within(ra, dec, ra0, dec0, radius)
                if keep.any():
                    pieces.append(table.filter(pa.array(keep)))
        return pieces

    def _group(self, file: _File, rg: int, columns: list[str]) -> _Group:
        key = (file.path, rg, tuple(columns))
        group = self.cache.get(key)
        if group is None:
            names = file.metadata.schema.names
            read = [c for c in (HEALPIX_29, *columns) if c in names]
            table = pq.ParquetFile(file.path, metadata=file.metadata).read_row_group(
                rg, columns=read
            )
            hp29 = None
            if HEALPIX_29 in table.column_names:
                hp29 = table.column(HEALPIX_29).to_numpy()
            is_sorted = hp29 is not None and bool(np.all(hp29[1:] >= hp29[:-1]))
            group = _Group(table, hp29, is_sorted, table.nbytes)
            self.cache.put(key, group)
        return group


def _overlaps(starts: np.ndarray, ends: np.ndarray, ranges: np.ndarray) -> bool:
    """Whether sorted partition spans [starts, ends) meet any of the order-29 `ranges`."""
    if ranges.size == 0 or starts.size == 0:
        return False
    first = np.searchsorted(ends, ranges[:, 0], side="right")
    last = np.searchsorted(starts, ranges[:, 1], side="left")
    return bool(np.any(last > first))


def search_partitions(s: _Survey, ra: float, dec: float, radius_deg: float) -> list[_Read]:
    """The partitions (and margin partition) a cone needs, with the order-29 ranges in each."""
    ranges = sky.disc_ranges(ra, dec, radius_deg, sky.query_order(radius_deg))
    if s.margin is not None and radius_deg * 3600.0 <= s.info.margin_arcsec:
        home = s.main.locate(int(sky.healpix_29(np.array([ra]), np.array([dec]))[0]))
        if home is not None:
            lo, hi = s.main.starts[home], s.main.ends[home]
            inside = np.clip(ranges, lo, hi)
            reads = [_Read(s.main, home, inside[inside[:, 1] > inside[:, 0]])]
            mi = s.margin.locate(int(lo))
            if mi is not None and s.margin.pixels[mi] == s.main.pixels[home]:
                reads.append(_Read(s.margin, mi, sky.subtract_range(ranges, lo, hi)))
            return reads
    return [_Read(s.main, i, sub) for i, sub in s.main.overlapping(ranges).items()]


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


def _available_outputs(s: _Survey, cache: PartitionCache) -> dict[str, str | None]:
    """Every output column name → catalogue column: the survey's outputs, then the
    catalogue's other columns under their own names."""
    out = dict(s.outputs)
    used = {c for c in s.outputs.values() if c}
    for name in s.main.schema(cache).names:
        if name not in used and name not in out and name not in HIDDEN_COLUMNS:
            out[name] = name
    return out


def _output(s, pieces, wanted, available, cache) -> pa.Table:
    if pieces:
        table = pa.concat_tables(pieces, promote_options="permissive")
    else:
        table = s.main.schema(cache).empty_table()
    columns, names = [], []
    for name in wanted:
        source = available[name]
        if source is None:  # a band without an error column
            columns.append(pa.array(np.full(table.num_rows, np.nan, dtype=np.float32)))
        else:
            columns.append(table.column(source))
        names.append(name)
    return pa.table(columns, names=names)


def _load_survey(
    name: str,
    location: Location,
    key: object,
    reg: registry.Registration | None,
    cache: PartitionCache,
) -> _Survey:
    main_loc, margin_loc = _catalog_locations(location)
    main = _Catalog.open(main_loc)
    margin = None
    if margin_loc is not None:
        try:
            margin = _Catalog.open(margin_loc)
        except READ_ERRORS as exc:
            log.warning("%s: margin %s unusable, reading without: %s", name, margin_loc, exc)
    props = main.props
    schema_names = main.schema(cache).names
    if reg is not None and reg.bands:
        band_map = dict(reg.bands)
        named = [c for pair in band_map.values() for c in pair if c is not None]
        missing = [c for c in named if c not in schema_names]
        if missing:
            raise RefcatError(
                f"band map names column(s) {missing} that {location.url} does not have; "
                f"columns: {', '.join(schema_names)}"
            )
    else:
        if props.get("calserv_bands"):
            bands = [b for b in props["calserv_bands"].split(",") if b]
        else:  # a dropped-in HATS catalogue: bands are the columns X that have an X_err
            bands = [n for n in schema_names if f"{n}_err" in schema_names and n != main.ra_col]
        band_map = {b: (b, f"{b}_err" if f"{b}_err" in schema_names else None) for b in bands}
    outputs: dict[str, str | None] = {}
    if "source_id" in schema_names:
        outputs["source_id"] = "source_id"
    outputs["ra"], outputs["dec"] = main.ra_col, main.dec_col
    for band, (mag, err) in band_map.items():
        outputs[band], outputs[f"{band}_err"] = mag, err
    pm_columns = ("pmra", "pmdec") if {"pmra", "pmdec"} <= set(schema_names) else None
    epoch = props.get("calserv_epoch")
    if reg is not None and reg.epoch is not None:
        epoch = reg.epoch
    orders = [p.order for p in main.pixels] or [0]
    if "moc_sky_fraction" in props:
        sky_fraction = float(props["moc_sky_fraction"])
    else:
        sky_fraction = sum(p.sky_fraction for p in main.pixels)
    margin_arcsec = float(margin.props.get("hats_margin_threshold", 0.0)) if margin else 0.0
    info = SurveyInfo(
        name=name,
        bands=tuple(band_map),
        nrows=int(props.get("hats_nrows", 0)),
        min_order=min(orders),
        max_order=max(orders),
        npartitions=len(main.pixels),
        sky_fraction=sky_fraction,
        path=location.url,
        margin_arcsec=margin_arcsec,
        dropped_rows=int(props.get("calserv_dropped_rows", 0)),
        epoch=float(epoch) if epoch is not None and pm_columns else None,
    )
    pm_max = float(props.get("calserv_pm_max", DEFAULT_PM_MAX_MASYR))
    return _Survey(info, key, main, margin, outputs, pm_columns, pm_max)


def _catalog_locations(location: Location) -> tuple[Location, Location | None]:
    """The object and margin catalogues of a survey entry.

    The entry is a HATS collection (``collection.properties`` naming
    ``hats_primary_table_url`` and ``default_margin`` / ``all_margins``) or a catalogue, whose
    margin is found through its ``calserv_margin`` key (stores of earlier calserv versions) or
    as a sibling ``<entry>_margin``.
    """
    text = location.read_text(COLLECTION_PROPERTIES)
    if text is not None:
        props = parse_properties(text)
        primary = props.get("hats_primary_table_url")
        if not primary:
            raise RefcatError(f"{location.url}/{COLLECTION_PROPERTIES}: no hats_primary_table_url")
        margins = [m for m in props.get("all_margins", "").replace(",", " ").split() if m]
        margin = props.get("default_margin") or (margins[0] if margins else None)
        return _inner(location, primary), _inner(location, margin) if margin else None
    text = location.read_text(HATS_PROPERTIES) or location.read_text(PROPERTIES) or ""
    key = parse_properties(text).get("calserv_margin")
    if key:
        return location, location.child(key)
    sibling = location.child(f"../{posix_name(location.url)}_margin")
    if sibling.read_text(PROPERTIES) or sibling.read_text(HATS_PROPERTIES):
        return location, sibling
    return location, None


def _inner(location: Location, path: str) -> Location:
    """A collection member: a name relative to the collection (absolute paths and URLs
    written by tools that knew where the collection was are taken by their last part)."""
    if "://" in path or path.startswith("/"):
        path = path.rstrip("/").rsplit("/", 1)[-1]
    return location.child(path)


def posix_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]

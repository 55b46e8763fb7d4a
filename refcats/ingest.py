"""Ingest a CSV, FITS or Parquet star list into the store as a HATS catalogue.

Memory stays bounded (about ``chunk_rows`` rows plus one partition at a time) for inputs far
larger than RAM:

1. *read* (`_read_rows`): stream the input in chunks, validate and normalise each
   (``_healpix_29, [source_id], ra, dec, <band>, <band>_err[, pmra, pmdec]``), append it to a
   temporary Arrow file and count stars per order-10 HEALPix pixel;
2. *plan* (`plan_partitions`): split HEALPix pixels top-down until each holds ≤
   ``partition_rows`` stars;
3. *spill* (`_spill_rows`): route the rows of each chunk to per-partition temporary files;
4. *write* (`_write_partitions`): sort each partition by ``_healpix_29`` and write its Parquet
   file;
5. *margins* (`_write_margins`): copy, for each partition, the stars of neighbouring partitions
   lying within ``margin_arcsec`` of its edge into the margin catalogue.

The result is a HATS collection (see `refcats.layout`): ``collection.properties``, the object
catalogue ``SURVEY/`` and the margin catalogue ``SURVEY_<w>arcs/`` side by side, which
``hats`` validates strictly and ``lsdb.open_catalog`` opens with its margin.

Everything is built in ``ROOT/.tmp-SURVEY-xxxx``; nothing is visible until it is complete.
Publication is atomic: ``ROOT/SURVEY`` is a symlink to a version directory
(``ROOT/.SURVEY@v<time>``) and is replaced with ``rename(2)``, so readers see either the old or
the new survey, never a mixture. The previous version is kept for rollback (and for a reader
that may still hold it); older ones are deleted. A failed ingest deletes its temporary
directory and leaves the published version untouched. Ingests of one survey are serialised
with a lock file.

Input policy: rows whose RA or Dec is NaN/null are *dropped* and counted (a star without a
position is unusable, and merged catalogues do contain a few); coordinates that are present
but outside RA ∈ [0, 360), Dec ∈ [-90, 90] (or infinite) *refuse* the file, as they mean a
wrong column or unit (radians, sexagesimal). Magnitudes may be NaN (band not measured).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import healpy as hp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from refcats import sky
from refcats.layout import (
    COLLECTION_PROPERTIES,
    DATASET,
    HEALPIX_29,
    PARTITION_INFO,
    PROPERTIES,
    Pixel,
    RefcatError,
    SurveyInfo,
    format_partition_info,
    format_properties,
    row_group_bounds,
    row_groups_for,
)
from refcats.presets import Preset
from refcats.registry import check_band_name, check_survey_name
from refcats.sources import Source, open_source

log = logging.getLogger(__name__)

HIST_ORDER = 10  # order of the density histogram = highest partition order
COVERAGE_ORDER = 7  # sky_fraction = fraction of order-7 cells (~0.21 deg²) holding a star
ROW_GROUP_ROWS = 16_384  # small row groups let cone queries read only what they touch
DEFAULT_MARGIN_ARCSEC = 1200.0
RESERVED = {"ra", "dec", "source_id", "pmra", "pmdec", HEALPIX_29}


def ingest(
    root: Path,
    survey: str,
    source: Path | Sequence[Path],
    bands: Sequence[str] | None = None,
    *,
    ra_col: str = "ra",
    dec_col: str = "dec",
    band_columns: Mapping[str, tuple[str, str | None]] | None = None,
    pm_columns: tuple[str, str] | None = None,
    epoch: float | None = None,
    preset: Preset | None = None,
    chunk_rows: int = 1_000_000,
    progress: bool = False,
    partition_rows: int = 500_000,
    margin_arcsec: float = DEFAULT_MARGIN_ARCSEC,
) -> SurveyInfo:
    """Build (or atomically replace) survey ``survey`` under store ``root`` from a file.

    Parameters
    ----------
    root : store root directory (created if missing)
    survey : survey name, e.g. ``"APASS"``; letters, digits, ``_+-.``
    source : CSV, FITS (first table HDU) or Parquet file (or Parquet dataset directory), or a
        list of such files holding the same columns
    bands : band names; band ``X`` is read from columns ``X`` and ``X_err`` (magnitudes)
        unless mapped by ``band_columns``. ``None``: the bands of ``band_columns``, else every
        column ``X`` that has an ``X_err`` partner.
    ra_col, dec_col : columns holding ICRS RA and Dec in degrees
    band_columns : ``{band: (mag_column, err_column or None)}``; a ``None`` error column
        stores NaN errors
    pm_columns, epoch : proper-motion columns (mas/yr, RA one including cos Dec) and the Julian
        epoch of the positions; stored so that queries can move stars to a frame's epoch
    preset : a published survey format (`refcats.presets`): fixes the columns, units,
        sentinels, quality cuts and epoch, replacing the column arguments above
    chunk_rows : rows read per chunk (bounds memory)
    progress : show tqdm progress bars
    partition_rows : maximum stars per partition (adaptive HEALPix split)
    margin_arcsec : width of the margin catalogue in arcsec (0 = no margin)

    Returns
    -------
    SurveyInfo of the new survey. Column names are matched exactly, then case-insensitively.

    Raises
    ------
    RefcatError
        bad name, missing column, non-numeric or out-of-range coordinates, empty input.
    """
    check_survey_name(survey)
    if partition_rows < 1 or chunk_rows < 1:
        raise RefcatError("partition_rows and chunk_rows must be positive")
    paths = [Path(source)] if isinstance(source, str | Path) else [Path(s) for s in source]
    if not paths:
        raise RefcatError("no input file")
    opts = _Options(survey, progress, partition_rows, margin_arcsec, epoch, {})
    sources = [open_source(path, preset.csv if preset else None) for path in paths]
    total = None if any(s.nrows is None for s in sources) else sum(s.nrows for s in sources)
    if preset is not None:
        for src in sources:
            preset.check_columns(src)
        spec = _Spec("ra", "dec", "source_id" if preset.has_source_id else None,
                     {b: (b, f"{b}_err") for b in preset.bands},
                     ("pmra", "pmdec") if preset.epoch is not None else None)  # fmt: skip
        opts = replace(opts, epoch=preset.epoch, extra_properties={"calserv_preset": preset.name})

        def chunks() -> Iterator[tuple[pa.Table, int]]:
            for src in sources:
                for chunk in src.chunks(preset.columns, chunk_rows, preset.csv_types()):
                    yield _normalise(preset.convert(chunk), spec, src)

        return _build(Path(root), chunks, spec, total, opts)
    spec = _resolve_columns(sources[0], bands, ra_col, dec_col, band_columns, pm_columns)
    for src in sources[1:]:  # every file must hold the columns found in the first
        missing = [c for c in spec.source_columns if c not in src.columns]
        if missing:
            raise RefcatError(f"{src.path.name}: missing column(s) {', '.join(missing)}")
    if spec.motion and epoch is None:
        raise RefcatError("proper-motion columns need the epoch of the positions (--epoch)")

    def plain_chunks() -> Iterator[tuple[pa.Table, int]]:
        for src in sources:
            yield from _normalised_chunks(src, spec, chunk_rows)

    return _build(Path(root), plain_chunks, spec, total, opts)


def ingest_table(
    root: Path,
    survey: str,
    table: pa.Table,
    bands: Sequence[str],
    *,
    partition_rows: int = 500_000,
    margin_arcsec: float = DEFAULT_MARGIN_ARCSEC,
    progress: bool = False,
    extra_properties: Mapping[str, object] | None = None,
) -> SurveyInfo:
    """Ingest an in-memory table with columns ``ra, dec, <band>, <band>_err[, source_id]``."""
    check_survey_name(survey)
    src = Source(Path(f"<{survey} table>"), "table", table.column_names, table.num_rows)
    spec = _resolve_columns(src, bands, "ra", "dec", None, None)

    def chunks() -> Iterator[tuple[pa.Table, int]]:
        for batch in table.to_batches(max_chunksize=1_000_000):
            yield _normalise(pa.Table.from_batches([batch]), spec, src)

    opts = _Options(survey, progress, partition_rows, margin_arcsec, None, extra_properties or {})
    return _build(Path(root), chunks, spec, table.num_rows, opts)


# --------------------------------------------------------------------------- input columns


class _Spec:
    """Which source column feeds which output column."""

    def __init__(
        self,
        ra: str,
        dec: str,
        source_id: str | None,
        bands: dict[str, tuple],
        motion: tuple[str, str] | None = None,
    ):
        self.ra, self.dec, self.source_id, self.bands = ra, dec, source_id, bands
        self.motion = motion
        fields = [pa.field(HEALPIX_29, pa.int64())]
        if source_id:
            fields.append(pa.field("source_id", pa.int64()))
        fields += [pa.field("ra", pa.float64()), pa.field("dec", pa.float64())]
        for band in bands:
            fields += [pa.field(band, pa.float32()), pa.field(f"{band}_err", pa.float32())]
        if motion:
            fields += [pa.field("pmra", pa.float32()), pa.field("pmdec", pa.float32())]
        self.schema = pa.schema(fields)

    @property
    def source_columns(self) -> list[str]:
        cols = [self.ra, self.dec] + ([self.source_id] if self.source_id else [])
        for mag, err in self.bands.values():
            cols += [mag] + ([err] if err else [])
        cols += list(self.motion or ())
        return list(dict.fromkeys(cols))

    @property
    def csv_types(self) -> dict[str, pa.DataType]:
        types = {c: pa.float64() for c in self.source_columns}
        if self.source_id:
            types[self.source_id] = pa.int64()
        return types


def _resolve_columns(src, bands, ra_col, dec_col, band_columns, pm_columns) -> _Spec:
    available = list(src.columns)
    lower = {c.lower(): c for c in available}

    def find(name: str) -> str | None:
        return name if name in available else lower.get(name.lower())

    def listing() -> str:
        shown = ", ".join(available[:60]) + (" ..." if len(available) > 60 else "")
        return f"available columns: {shown}"

    missing = [c for c in (ra_col, dec_col, *(pm_columns or ())) if find(c) is None]
    band_columns = dict(band_columns or {})
    if bands is None:
        if band_columns:
            bands = list(band_columns)
        else:
            bands = [
                c
                for c in available
                if find(f"{c}_err") and c.lower() not in RESERVED and not c.endswith("_err")
            ]
            if not bands:
                raise RefcatError(
                    f"{src.path.name}: no band found (a band X needs columns X and X_err); "
                    f"name the bands or map them. {listing()}"
                )
    bands = list(dict.fromkeys(list(bands) + list(band_columns)))
    mapping: dict[str, tuple[str, str | None]] = {}
    for band in bands:
        check_band_name(band)
        mag_name, err_name = band_columns.get(band, (band, f"{band}_err"))
        mag = find(mag_name)
        err = find(err_name) if err_name else None
        if mag is None:
            missing.append(mag_name)
        if err_name and err is None:
            missing.append(err_name)
        mapping[band] = (mag, err)
    if missing:
        hint = ""
        if find(ra_col) is None or find(dec_col) is None:
            hint = " (name the coordinate columns with ra_col/dec_col, --ra-col/--dec-col)"
        elif band_columns or bands:
            hint = " (map bands to columns with band_columns, --band BAND:MAGCOL:ERRCOL)"
        raise RefcatError(
            f"{src.path.name}: missing column(s) {', '.join(repr(m) for m in missing)}{hint}; "
            f"{listing()}"
        )
    motion = (find(pm_columns[0]), find(pm_columns[1])) if pm_columns else None
    return _Spec(find(ra_col), find(dec_col), find("source_id"), mapping, motion)


def _normalised_chunks(src: Source, spec: _Spec, chunk_rows: int):
    for chunk in src.chunks(spec.source_columns, chunk_rows, spec.csv_types):
        yield _normalise(chunk, spec, src)


def _numeric(table: pa.Table, name: str, dtype, src) -> np.ndarray:
    column = table.column(name)
    kind = column.type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind)):
        raise RefcatError(
            f"{src.path.name}: column {name!r} holds {column.type} values, expected numbers "
            "(degrees or magnitudes)"
        )
    column = pc.cast(column, pa.float64())
    return column.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _normalise(chunk: pa.Table, spec: _Spec, src) -> tuple[pa.Table, int]:
    """Validated output columns of one chunk, and the number of rows dropped (NaN coords)."""
    ra = _numeric(chunk, spec.ra, np.float64, src)
    dec = _numeric(chunk, spec.dec, np.float64, src)
    keep = ~(np.isnan(ra) | np.isnan(dec))
    dropped = int(keep.size - keep.sum())
    bad = keep & ~((ra >= 0.0) & (ra < 360.0) & (dec >= -90.0) & (dec <= 90.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        nbad = int(bad.sum())
        raise RefcatError(
            f"{src.path.name}: {nbad} row(s) in this chunk have coordinates out of range "
            f"(RA must be in [0, 360), Dec in [-90, 90] degrees), e.g. {spec.ra}={ra[i]!r}, "
            f"{spec.dec}={dec[i]!r}; are the columns in degrees?"
        )
    all_rows = dropped == 0
    ra, dec = (ra, dec) if all_rows else (ra[keep], dec[keep])
    arrays = {HEALPIX_29: sky.healpix_29(ra, dec)}
    if spec.source_id:
        sid = chunk.column(spec.source_id)
        if not pa.types.is_integer(sid.type):
            try:
                sid = pc.cast(sid, pa.int64())
            except pa.ArrowInvalid as exc:
                raise RefcatError(
                    f"{src.path.name}: column {spec.source_id!r} must hold integers: {exc}"
                ) from exc
        sid = sid.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        arrays["source_id"] = sid if all_rows else sid[keep]
    arrays["ra"], arrays["dec"] = ra, dec
    for band, (mag, err) in spec.bands.items():
        values = _numeric(chunk, mag, np.float32, src)
        arrays[band] = values if all_rows else values[keep]
        if err:
            values = _numeric(chunk, err, np.float32, src)
            arrays[f"{band}_err"] = values if all_rows else values[keep]
        else:
            arrays[f"{band}_err"] = np.full(len(ra), np.nan, dtype=np.float32)
    for name, column in zip(("pmra", "pmdec"), spec.motion or (), strict=False):
        values = _numeric(chunk, column, np.float32, src)
        arrays[name] = values if all_rows else values[keep]
    return pa.table(arrays, schema=spec.schema), dropped


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class _Options:
    """What shapes a build besides its rows."""

    survey: str
    progress: bool
    partition_rows: int
    margin_arcsec: float
    epoch: float | None
    extra_properties: Mapping[str, object]


@dataclass
class _ReadResult:
    """Stage 1 output: the normalised rows on disk and their counts."""

    rows_file: Path
    hist: np.ndarray  # stars per order-HIST_ORDER pixel
    nrows: int
    dropped: int
    pm_max: float  # fastest total proper motion, mas/yr (0 without proper motions)


def _build(root: Path, chunks, spec: _Spec, total: int | None, opts: _Options) -> SurveyInfo:
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _survey_lock(root, opts.survey):
        for stale in root.glob(f".tmp-{opts.survey}-*"):  # left by a crashed ingest
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f".tmp-{opts.survey}-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            info = _build_collection(tmp, chunks, spec, total, opts)
            version = _publish(root, opts.survey, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info(
        "ingested %s: %d stars in %d partitions in %.1f s",
        opts.survey,
        info.nrows,
        info.npartitions,
        time.perf_counter() - started,
    )
    return replace(info, path=str(version))


def _bar(progress: bool, desc: str, total=None, unit="rows"):
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=not progress)


def _build_collection(tmp: Path, chunks, spec: _Spec, total, opts: _Options) -> SurveyInfo:
    """Build the whole collection in ``tmp``: the five stages of the module docstring."""
    work = tmp / "_work"
    work.mkdir()
    catalog = tmp / opts.survey
    read = _read_rows(work, chunks, spec, total, opts)
    parts = plan_partitions(read.hist, opts.partition_rows)
    sky_fraction = _sky_fraction(read.hist)
    read.hist = None
    spill = _spill_rows(read.rows_file, parts, spec, work / "spill", opts)
    _write_partitions(catalog, parts, spill, spec.schema, opts)
    margin_name = None
    if opts.margin_arcsec > 0:
        margin_name = f"{opts.survey}_{round(opts.margin_arcsec)}arcs"
        _write_margins(tmp / margin_name, catalog, parts, spec.schema, opts)
    shutil.rmtree(work)
    _write_catalog_properties(catalog, parts, spec, read, sky_fraction, opts)
    _write_collection_properties(tmp, opts.survey, margin_name)
    orders = [pixel.order for pixel, _ in parts]
    return SurveyInfo(
        name=opts.survey,
        bands=tuple(spec.bands),
        nrows=read.nrows,
        min_order=min(orders),
        max_order=max(orders),
        npartitions=len(parts),
        sky_fraction=sky_fraction,
        path=str(tmp),
        margin_arcsec=float(opts.margin_arcsec),
        dropped_rows=read.dropped,
        epoch=opts.epoch if spec.motion else None,
    )


def _read_rows(work: Path, chunks, spec: _Spec, total, opts: _Options) -> _ReadResult:
    """Stage 1: stream, validate and normalise the input; count stars per pixel."""
    rows_file = work / "rows.arrow"
    hist = np.zeros(12 << (2 * HIST_ORDER), dtype=np.int64)
    nrows = dropped = 0
    pm_max = 0.0
    with (
        pa.OSFile(str(rows_file), "wb") as sink,
        pa.ipc.new_file(sink, spec.schema) as writer,
        _bar(opts.progress, f"{opts.survey}: reading", total) as bar,
    ):
        for table, ndrop in chunks():
            dropped += ndrop
            bar.update(table.num_rows + ndrop)
            if table.num_rows == 0:
                continue
            writer.write_table(table)
            fine = table.column(HEALPIX_29).to_numpy() >> sky.shift(HIST_ORDER)
            pixels, counts = np.unique(fine, return_counts=True)
            hist[pixels] += counts
            nrows += table.num_rows
            if spec.motion:
                pm = np.hypot(table["pmra"].to_numpy(), table["pmdec"].to_numpy())
                pm_max = max(pm_max, float(np.nanmax(pm, initial=0.0)))
    if nrows == 0:
        reason = f"all {dropped} rows have NaN coordinates" if dropped else "it has no rows"
        raise RefcatError(f"nothing to ingest into {opts.survey}: {reason}")
    if dropped:
        log.warning("%s: dropped %d rows with NaN/null coordinates", opts.survey, dropped)
    return _ReadResult(rows_file, hist, nrows, dropped, pm_max)


def _sky_fraction(hist: np.ndarray) -> float:
    """Fraction of order-COVERAGE_ORDER cells holding a star."""
    coverage = hist.reshape(12 << (2 * COVERAGE_ORDER), -1).sum(axis=1)
    return float(np.count_nonzero(coverage)) / coverage.size


def _spill_rows(rows_file: Path, parts, spec: _Spec, spill: Path, opts: _Options) -> Path:
    """Stage 3: route the rows of each batch to per-partition temporary files."""
    spill.mkdir()
    starts = np.array([pixel.start for pixel, _ in parts], dtype=np.int64)
    order_idx = np.argsort(starts)
    starts_sorted = starts[order_idx]
    nrows = sum(count for _, count in parts)
    # plain reads, not memory maps: mapped pages would count in the process RSS
    with (
        pa.OSFile(str(rows_file)) as source,
        _bar(opts.progress, f"{opts.survey}: partitioning", nrows) as bar,
    ):
        reader = pa.ipc.open_file(source)
        for ibatch in range(reader.num_record_batches):
            batch = reader.get_batch(ibatch)
            hp29 = batch.column(HEALPIX_29).to_numpy()
            which = order_idx[np.searchsorted(starts_sorted, hp29, side="right") - 1]
            perm = np.argsort(which, kind="stable")
            sorted_which = which[perm]
            cuts = np.flatnonzero(np.diff(sorted_which)) + 1
            batch = batch.take(pa.array(perm))
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, perm.size], strict=True):
                path = spill / f"{int(sorted_which[lo])}-{ibatch}.arrow"
                with pa.OSFile(str(path), "wb") as out, pa.ipc.new_file(out, spec.schema) as w:
                    w.write_batch(batch.slice(lo, hi - lo))
            bar.update(batch.num_rows)
    rows_file.unlink()
    pa.default_memory_pool().release_unused()
    return spill


def _write_partitions(catalog: Path, parts, spill: Path, schema: pa.Schema, opts: _Options):
    """Stage 4: sort each partition by ``_healpix_29`` and write its Parquet file."""
    pool = pa.default_memory_pool()
    collector: list = []
    with _bar(opts.progress, f"{opts.survey}: writing", len(parts), "partitions") as bar:
        for idx, (pixel, _) in enumerate(parts):
            files = sorted(spill.glob(f"{idx}-*.arrow"))
            table = pa.concat_tables([_read_arrow(f) for f in files])
            table = table.take(pa.array(np.argsort(table.column(HEALPIX_29).to_numpy())))
            _write_partition(catalog, pixel, table, collector)
            del table
            for f in files:
                f.unlink()
            pool.release_unused()
            bar.update(1)
    _write_dataset_metadata(catalog, schema, collector)
    (catalog / PARTITION_INFO).write_text(format_partition_info([p for p, _ in parts]))


def _write_catalog_properties(catalog, parts, spec, read: _ReadResult, sky_fraction, opts):
    orders = [pixel.order for pixel, _ in parts]
    size_kib = sum(f.stat().st_size for f in (catalog / DATASET).rglob("*.parquet")) // 1024
    props = {
        "obs_collection": opts.survey,
        "dataproduct_type": "object",
        "hats_nrows": read.nrows,
        "hats_col_ra": "ra",
        "hats_col_dec": "dec",
        "hats_col_healpix": HEALPIX_29,
        "hats_col_healpix_order": 29,
        "hats_order": max(orders),
        "hats_max_rows": opts.partition_rows,
        "hats_npix_suffix": ".parquet",
        "hats_estsize": size_kib,
        "moc_sky_fraction": f"{sky_fraction:.6f}",
        "hats_builder": "calserv refcats",
        "hats_creation_date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M%Z"),
        "hats_version": "v1.0",
        "calserv_bands": ",".join(spec.bands),
        "calserv_npartitions": len(parts),
        "calserv_min_order": min(orders),
        "calserv_dropped_rows": read.dropped,
    }
    if spec.motion and opts.epoch is not None:
        props["calserv_epoch"] = opts.epoch
        props["calserv_pm_max"] = f"{read.pm_max:.1f}"
    props.update(opts.extra_properties)
    (catalog / PROPERTIES).write_text(format_properties(props), encoding="utf-8")


def _write_collection_properties(collection: Path, survey: str, margin: str | None) -> None:
    props: dict[str, object] = {"obs_collection": survey, "hats_primary_table_url": survey}
    if margin:
        props["all_margins"] = margin
        props["default_margin"] = margin
    props["hats_builder"] = "calserv refcats"
    text = format_properties(props, title="HATS Collection")
    (collection / COLLECTION_PROPERTIES).write_text(text, encoding="utf-8")


def _read_arrow(path: Path) -> pa.Table:
    with pa.OSFile(str(path)) as fh:
        return pa.ipc.open_file(fh).read_all()


def plan_partitions(hist: np.ndarray, max_rows: int) -> list[tuple[Pixel, int]]:
    """Stage 2, adaptive HATS partitioning of an order-``HIST_ORDER`` count map.

    Splits HEALPix pixels top-down (from order 0) while they hold more than ``max_rows`` stars;
    returns ``(pixel, count)`` of the non-empty leaves, sorted by pixel (order, npix).
    """
    hist_order = (hist.size // 12).bit_length() // 2  # hist.size = 12 * 4**order
    leaves: list[tuple[Pixel, int]] = []
    candidates = np.arange(12, dtype=np.int64)
    for order in range(hist_order + 1):
        counts = hist.reshape(12 << (2 * order), -1).sum(axis=1)[candidates]
        final = (counts <= max_rows) | (order == hist_order)
        nonempty = final & (counts > 0)
        leaves += [
            (Pixel(order, int(p)), int(c))
            for p, c in zip(candidates[nonempty], counts[nonempty], strict=True)
        ]
        split = candidates[~final]
        if split.size == 0:
            break
        candidates = (split[:, None] * 4 + np.arange(4)).ravel()
    return sorted(leaves)


def _write_partition(catalog: Path, pixel: Pixel, table: pa.Table, collector) -> None:
    path = catalog / pixel.relative_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    file_collector: list = []
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS, metadata_collector=file_collector)
    for md in file_collector:
        md.set_file_path(path.relative_to(catalog / DATASET).as_posix())
        collector.append(md)


def _write_dataset_metadata(catalog: Path, schema: pa.Schema, collector: list) -> None:
    (catalog / DATASET).mkdir(parents=True, exist_ok=True)
    pq.write_metadata(schema, catalog / DATASET / "_common_metadata")
    if collector:
        pq.write_metadata(schema, catalog / DATASET / "_metadata", metadata_collector=collector)


# --------------------------------------------------------------------------- margins


def margin_ranges(pixel: Pixel, margin_arcsec: float) -> np.ndarray:
    """Order-29 ranges covering every point within ``margin_arcsec`` outside ``pixel``.

    Samples the pixel boundary, takes the inclusive ``query_disc`` of each sample with radius
    margin + 0.6 × sample spacing (so no point within the margin is missed) at an order whose
    pixels are about half the margin, and removes the pixel itself. A superset: it may hold
    stars up to about one such pixel farther out.
    """
    margin = np.radians(margin_arcsec / 3600.0)
    fine = max(pixel.order, min(sky.query_order(margin_arcsec / 3600.0 * 1.5), 13))
    edge = hp.nside2resol(1 << pixel.order)  # ~ pixel side, radians
    step = int(np.clip(np.ceil(edge / (margin / 2)), 2, 1024))
    vecs = hp.boundaries(1 << pixel.order, pixel.npix, step=step, nest=True).T
    spacing = np.max(np.arccos(np.clip(np.sum(vecs * np.roll(vecs, 1, axis=0), axis=1), -1, 1)))
    radius = margin + 0.6 * spacing
    nside = 1 << fine
    pixels = np.unique(
        np.concatenate([hp.query_disc(nside, v, radius, inclusive=True, nest=True) for v in vecs])
    )
    return sky.subtract_range(sky.pixel_ranges(fine, pixels), pixel.start, pixel.end)


def _write_margins(mdir: Path, catalog: Path, parts, schema, opts: _Options) -> None:
    """Stage 5: for each partition, the stars of its neighbours within the margin width."""
    starts = np.array([pixel.start for pixel, _ in parts], dtype=np.int64)
    ends = np.array([pixel.end for pixel, _ in parts], dtype=np.int64)
    paths = [catalog / pixel.relative_path() for pixel, _ in parts]
    metas = [pq.read_metadata(path) for path in paths]
    bounds = [row_group_bounds(md) for md in metas]
    collector: list = []
    written: list[Pixel] = []
    total = 0
    with _bar(opts.progress, f"{opts.survey}: margins", len(parts), "partitions") as bar:
        for pixel, _ in parts:
            ranges = margin_ranges(pixel, opts.margin_arcsec)
            pieces = []
            if ranges.size == 0:  # the pixel is the whole sky at this order: nothing outside
                bar.update(1)
                continue
            for q in np.flatnonzero((starts < ranges[:, 1].max()) & (ends > ranges[:, 0].min())):
                sub = ranges[(ranges[:, 0] < ends[q]) & (ranges[:, 1] > starts[q])]
                if sub.size == 0:
                    continue
                groups = row_groups_for(bounds[q], sub)
                if not groups:
                    continue
                table = pq.ParquetFile(paths[q], metadata=metas[q]).read_row_groups(groups)
                rows = sky.rows_in_ranges(table.column(HEALPIX_29).to_numpy(), sub)
                if rows.size:
                    pieces.append(table.take(pa.array(rows)))
            if pieces:
                table = pa.concat_tables(pieces)
                table = table.take(pa.array(np.argsort(table.column(HEALPIX_29).to_numpy())))
                _write_partition(mdir, pixel, table, collector)
                written.append(pixel)
                total += table.num_rows
            pieces = table = None
            pa.default_memory_pool().release_unused()
            bar.update(1)
    _write_dataset_metadata(mdir, schema, collector)
    (mdir / PARTITION_INFO).write_text(format_partition_info(written))
    props = {
        "obs_collection": mdir.name,
        "dataproduct_type": "margin",
        "hats_nrows": total,
        "hats_col_ra": "ra",
        "hats_col_dec": "dec",
        "hats_col_healpix": HEALPIX_29,
        "hats_col_healpix_order": 29,
        "hats_primary_table_url": opts.survey,
        "hats_margin_threshold": float(opts.margin_arcsec),
        "hats_order": max((p.order for p in written), default=0),
        "hats_npix_suffix": ".parquet",
        "hats_builder": "calserv refcats",
    }
    (mdir / PROPERTIES).write_text(format_properties(props), encoding="utf-8")


# --------------------------------------------------------------------------- publish


@contextmanager
def _survey_lock(root: Path, survey: str):
    with open(root / f".{survey}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def delete_survey(root: Path, survey: str) -> bool:
    """Delete built survey ``survey`` (its link and every version); False if there is none."""
    check_survey_name(survey)
    link = root / survey
    if not (link.is_symlink() or link.is_dir()):
        return False
    with _survey_lock(root, survey):
        if link.is_symlink():
            link.unlink()
        else:
            shutil.rmtree(link)
        for old in root.glob(f".{survey}@v*"):
            shutil.rmtree(old, ignore_errors=True)
    return True


def _publish(root: Path, survey: str, built: Path) -> Path:
    """Make ``built`` the current version of ``survey`` with one atomic rename."""
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{secrets.token_hex(3)}"
    version = root / f".{survey}@v{stamp}"
    os.rename(built, version)
    link = root / survey
    previous: Path | None = None
    if link.is_symlink():
        previous = root / os.readlink(link)
    elif link.exists():  # a real directory (dropped-in catalogue): move it aside first
        previous = root / f".{survey}@v{stamp}-old"
        os.rename(link, previous)
    tmp_link = root / f".{survey}.link-{secrets.token_hex(4)}"
    os.symlink(version.name, tmp_link)
    os.replace(tmp_link, link)
    for old in root.glob(f".{survey}@v*"):
        if old.name not in {version.name, previous.name if previous else None}:
            shutil.rmtree(old, ignore_errors=True)
    return version

"""Ingest a CSV, FITS or Parquet star list into the store as a HATS catalogue.

Memory stays bounded (about ``chunk_rows`` rows plus one partition at a time) for inputs far
larger than RAM:

1. *read*: stream the input in chunks, validate and normalise each (``_healpix_29, [source_id],
   ra, dec, <band>, <band>_err``), append it to a temporary Arrow file and count stars per
   order-10 HEALPix pixel;
2. *plan*: split HEALPix pixels top-down until each holds ≤ ``partition_rows`` stars;
3. *spill*: route the rows of each chunk to per-partition temporary files;
4. *write*: sort each partition by ``_healpix_29`` and write its Parquet file;
5. *margins*: copy, for each partition, the stars of neighbouring partitions lying within
   ``margin_arcsec`` of its edge into the margin catalogue ``margin/``.

Everything is built in ``ROOT/.tmp-SURVEY-xxxx``; nothing is visible until it is complete.
Publication is atomic: ``ROOT/SURVEY`` is a symlink to a version directory
(``ROOT/.SURVEY@v<time>``) and is replaced with ``rename(2)``, so readers see either the old or
the new survey, never a mixture. The previous version is kept (a reader may still hold it)
and older ones are deleted. A failed ingest deletes its temporary directory and leaves the
published version untouched. Ingests of one survey are serialised with a lock file.

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
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import healpy as hp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from refcats import sky
from refcats.layout import (
    DATASET,
    HEALPIX_29,
    MARGIN,
    RefcatError,
    SurveyInfo,
    partition_path,
    row_group_bounds,
    row_groups_for,
    write_partition_info,
    write_properties,
)
from refcats.sources import Source, open_source

log = logging.getLogger(__name__)

HIST_ORDER = 10  # order of the density histogram = highest partition order
COVERAGE_ORDER = 7  # sky_fraction = fraction of order-7 cells (~0.21 deg²) holding a star
ROW_GROUP_ROWS = 16_384  # small row groups let cone queries read only what they touch
DEFAULT_MARGIN_ARCSEC = 1200.0
SURVEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+\-.]*$")
BAND_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED = {"ra", "dec", "source_id", HEALPIX_29}


def ingest(
    root: Path,
    survey: str,
    source: Path,
    bands: Sequence[str] | None = None,
    *,
    ra_col: str = "ra",
    dec_col: str = "dec",
    band_columns: Mapping[str, tuple[str, str | None]] | None = None,
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
    source : CSV, FITS (first table HDU) or Parquet file (or Parquet dataset directory)
    bands : band names; band ``X`` is read from columns ``X`` and ``X_err`` (magnitudes)
        unless mapped by ``band_columns``. ``None``: the bands of ``band_columns``, else every
        column ``X`` that has an ``X_err`` partner.
    ra_col, dec_col : columns holding ICRS RA and Dec in degrees
    band_columns : ``{band: (mag_column, err_column or None)}``; a ``None`` error column
        stores NaN errors
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
    if not SURVEY_NAME.match(survey or "") or survey.endswith("_margin"):
        raise RefcatError(
            f"bad survey name {survey!r}: use letters, digits and _+-. (not ending in _margin)"
        )
    if partition_rows < 1 or chunk_rows < 1:
        raise RefcatError("partition_rows and chunk_rows must be positive")
    src = open_source(Path(source))
    spec = _resolve_columns(src, bands, ra_col, dec_col, band_columns)
    return _build(
        Path(root),
        survey,
        lambda: _normalised_chunks(src, spec, chunk_rows),
        spec,
        total=src.nrows,
        progress=progress,
        partition_rows=partition_rows,
        margin_arcsec=margin_arcsec,
    )


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
    src = Source(Path(f"<{survey} table>"), "table", table.column_names, table.num_rows)
    spec = _resolve_columns(src, bands, "ra", "dec", None)

    def chunks() -> Iterator[tuple[pa.Table, int]]:
        for batch in table.to_batches(max_chunksize=1_000_000):
            yield _normalise(pa.Table.from_batches([batch]), spec, src)

    return _build(
        Path(root),
        survey,
        chunks,
        spec,
        total=table.num_rows,
        progress=progress,
        partition_rows=partition_rows,
        margin_arcsec=margin_arcsec,
        extra_properties=extra_properties,
    )


# --------------------------------------------------------------------------- input columns


class _Spec:
    """Which source column feeds which output column."""

    def __init__(self, ra: str, dec: str, source_id: str | None, bands: dict[str, tuple]):
        self.ra, self.dec, self.source_id, self.bands = ra, dec, source_id, bands
        fields = [pa.field(HEALPIX_29, pa.int64())]
        if source_id:
            fields.append(pa.field("source_id", pa.int64()))
        fields += [pa.field("ra", pa.float64()), pa.field("dec", pa.float64())]
        for band in bands:
            fields += [pa.field(band, pa.float32()), pa.field(f"{band}_err", pa.float32())]
        self.schema = pa.schema(fields)

    @property
    def source_columns(self) -> list[str]:
        cols = [self.ra, self.dec] + ([self.source_id] if self.source_id else [])
        for mag, err in self.bands.values():
            cols += [mag] + ([err] if err else [])
        return list(dict.fromkeys(cols))

    @property
    def csv_types(self) -> dict[str, pa.DataType]:
        types = {c: pa.float64() for c in self.source_columns}
        if self.source_id:
            types[self.source_id] = pa.int64()
        return types


def _resolve_columns(src, bands, ra_col, dec_col, band_columns) -> _Spec:
    available = list(src.columns)
    lower = {c.lower(): c for c in available}

    def find(name: str) -> str | None:
        return name if name in available else lower.get(name.lower())

    def listing() -> str:
        shown = ", ".join(available[:60]) + (" ..." if len(available) > 60 else "")
        return f"available columns: {shown}"

    missing = [c for c in (ra_col, dec_col) if find(c) is None]
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
        if not BAND_NAME.match(band) or band.lower() in RESERVED or band.endswith("_err"):
            raise RefcatError(
                f"bad band name {band!r}: use letters, digits and _, not ra/dec/source_id, "
                "not ending in _err"
            )
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
    return _Spec(find(ra_col), find(dec_col), find("source_id"), mapping)


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
    return pa.table(arrays, schema=spec.schema), dropped


# --------------------------------------------------------------------------- build


def _build(
    root: Path,
    survey: str,
    chunks,
    spec: _Spec,
    *,
    total: int | None,
    progress: bool,
    partition_rows: int,
    margin_arcsec: float,
    extra_properties: Mapping[str, object] | None = None,
) -> SurveyInfo:
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _survey_lock(root, survey):
        for stale in root.glob(f".tmp-{survey}-*"):  # left by a crashed ingest
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f".tmp-{survey}-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            info = _build_into(
                tmp,
                survey,
                chunks,
                spec,
                total,
                progress,
                partition_rows,
                margin_arcsec,
                extra_properties or {},
            )
            version = _publish(root, survey, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info(
        "ingested %s: %d stars in %d partitions in %.1f s",
        survey,
        info.nrows,
        info.npartitions,
        time.perf_counter() - started,
    )
    return SurveyInfo(**{**info.__dict__, "path": version})


def _bar(progress: bool, desc: str, total=None, unit="rows"):
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=not progress)


def _build_into(tmp, survey, chunks, spec, total, progress, partition_rows, margin_arcsec, extra):
    work = tmp / "_work"
    work.mkdir()
    rows_file = work / "rows.arrow"

    # 1. read, validate, normalise, count
    hist = np.zeros(12 << (2 * HIST_ORDER), dtype=np.int64)
    nrows = dropped = 0
    with (
        pa.OSFile(str(rows_file), "wb") as sink,
        pa.ipc.new_file(sink, spec.schema) as writer,
        _bar(progress, f"{survey}: reading", total) as bar,
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
    if nrows == 0:
        reason = f"all {dropped} rows have NaN coordinates" if dropped else "it has no rows"
        raise RefcatError(f"nothing to ingest into {survey}: {reason}")
    if dropped:
        log.warning("%s: dropped %d rows with NaN/null coordinates", survey, dropped)

    # 2. plan partitions
    parts = plan_partitions(hist, partition_rows)
    coverage = hist.reshape(12 << (2 * COVERAGE_ORDER), -1).sum(axis=1)
    sky_fraction = float(np.count_nonzero(coverage)) / coverage.size
    del hist, coverage
    pool = pa.default_memory_pool()
    starts = np.array([p << sky.shift(k) for k, p, _ in parts], dtype=np.int64)
    order_idx = np.argsort(starts)
    starts_sorted = starts[order_idx]

    # 3. spill rows to per-partition files
    spill = work / "spill"
    spill.mkdir()
    # plain reads, not memory maps: mapped pages would count in the process RSS
    with (
        pa.OSFile(str(rows_file)) as source,
        _bar(progress, f"{survey}: partitioning", nrows) as bar,
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
                idx = int(sorted_which[lo])
                path = spill / f"{idx}-{ibatch}.arrow"
                with pa.OSFile(str(path), "wb") as out, pa.ipc.new_file(out, spec.schema) as w:
                    w.write_batch(batch.slice(lo, hi - lo))
            bar.update(batch.num_rows)
    rows_file.unlink()
    pool.release_unused()

    # 4. sort and write partitions
    collector: list = []
    with _bar(progress, f"{survey}: writing", len(parts), "partitions") as bar:
        for idx, (order, npix, _) in enumerate(parts):
            files = sorted(spill.glob(f"{idx}-*.arrow"))
            tables = [_read_arrow(f) for f in files]
            table = pa.concat_tables(tables)
            table = table.take(pa.array(np.argsort(table.column(HEALPIX_29).to_numpy())))
            _write_partition(tmp, order, npix, table, collector)
            del tables, table
            for f in files:
                f.unlink()
            pool.release_unused()
            bar.update(1)
    _write_dataset_metadata(tmp, spec.schema, collector)

    # 5. margins
    margin_rows = 0
    if margin_arcsec > 0:
        margin_rows = _write_margins(tmp, survey, parts, spec.schema, margin_arcsec, progress)
    shutil.rmtree(work)

    orders = [k for k, _, _ in parts]
    size_kib = sum(f.stat().st_size for f in (tmp / DATASET).rglob("*.parquet")) // 1024
    props = {
        "obs_collection": survey,
        "dataproduct_type": "object",
        "hats_nrows": nrows,
        "hats_col_ra": "ra",
        "hats_col_dec": "dec",
        "hats_col_healpix": HEALPIX_29,
        "hats_col_healpix_order": 29,
        "hats_order": max(orders),
        "hats_max_rows": partition_rows,
        "hats_npix_suffix": ".parquet",
        "hats_estsize": size_kib,
        "moc_sky_fraction": f"{sky_fraction:.6f}",
        "hats_builder": "calserv refcats",
        "hats_creation_date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M%Z"),
        "hats_version": "v1.0",
        "calserv_bands": ",".join(spec.bands),
        "calserv_npartitions": len(parts),
        "calserv_min_order": min(orders),
        "calserv_dropped_rows": dropped,
    }
    if margin_arcsec > 0:
        props["calserv_margin"] = MARGIN
        props["calserv_margin_rows"] = margin_rows
    props.update(extra)
    write_properties(tmp / "properties", props)
    write_partition_info(tmp, [(k, p) for k, p, _ in parts])
    return SurveyInfo(
        name=survey,
        bands=tuple(spec.bands),
        nrows=nrows,
        min_order=min(orders),
        max_order=max(orders),
        npartitions=len(parts),
        sky_fraction=sky_fraction,
        path=tmp,
        margin_arcsec=float(margin_arcsec),
        dropped_rows=dropped,
    )


def _read_arrow(path: Path) -> pa.Table:
    with pa.OSFile(str(path)) as fh:
        return pa.ipc.open_file(fh).read_all()


def plan_partitions(hist: np.ndarray, max_rows: int) -> list[tuple[int, int, int]]:
    """Adaptive HATS partitioning of an order-``HIST_ORDER`` count map.

    Splits HEALPix pixels top-down (from order 0) while they hold more than ``max_rows`` stars;
    returns ``(order, npix, count)`` of the non-empty leaves, sorted by (order, npix).
    """
    hist_order = (hist.size // 12).bit_length() // 2  # hist.size = 12 * 4**order
    leaves: list[tuple[int, int, int]] = []
    candidates = np.arange(12, dtype=np.int64)
    for order in range(hist_order + 1):
        counts = hist.reshape(12 << (2 * order), -1).sum(axis=1)[candidates]
        final = (counts <= max_rows) | (order == hist_order)
        nonempty = final & (counts > 0)
        leaves += [
            (order, int(p), int(c))
            for p, c in zip(candidates[nonempty], counts[nonempty], strict=True)
        ]
        split = candidates[~final]
        if split.size == 0:
            break
        candidates = (split[:, None] * 4 + np.arange(4)).ravel()
    return sorted(leaves)


def _write_partition(catalog: Path, order: int, npix: int, table: pa.Table, collector) -> None:
    path = partition_path(catalog, order, npix)
    path.parent.mkdir(parents=True, exist_ok=True)
    file_collector: list = []
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS, metadata_collector=file_collector)
    for md in file_collector:
        md.set_file_path(path.relative_to(catalog / DATASET).as_posix())
        collector.append(md)


def _write_dataset_metadata(catalog: Path, schema: pa.Schema, collector: list) -> None:
    pq.write_metadata(schema, catalog / DATASET / "_common_metadata")
    if collector:
        pq.write_metadata(schema, catalog / DATASET / "_metadata", metadata_collector=collector)


# --------------------------------------------------------------------------- margins


def margin_ranges(order: int, npix: int, margin_arcsec: float) -> np.ndarray:
    """Order-29 ranges covering every point within ``margin_arcsec`` outside pixel (order, npix).

    Samples the pixel boundary, takes the inclusive ``query_disc`` of each sample with radius
    margin + 0.6 × sample spacing (so no point within the margin is missed) at an order whose
    pixels are about half the margin, and removes the pixel itself. A superset: it may hold
    stars up to about one such pixel farther out.
    """
    margin = np.radians(margin_arcsec / 3600.0)
    fine = max(order, min(sky.query_order(margin_arcsec / 3600.0 * 1.5), 13))
    edge = hp.nside2resol(1 << order)  # ~ pixel side, radians
    step = int(np.clip(np.ceil(edge / (margin / 2)), 2, 1024))
    vecs = hp.boundaries(1 << order, npix, step=step, nest=True).T
    spacing = np.max(np.arccos(np.clip(np.sum(vecs * np.roll(vecs, 1, axis=0), axis=1), -1, 1)))
    radius = margin + 0.6 * spacing
    nside = 1 << fine
    pixels = np.unique(
        np.concatenate([hp.query_disc(nside, v, radius, inclusive=True, nest=True) for v in vecs])
    )
    lo = npix << sky.shift(order)
    return sky.subtract_range(sky.pixel_ranges(fine, pixels), lo, (npix + 1) << sky.shift(order))


def _write_margins(tmp, survey, parts, schema, margin_arcsec, progress) -> int:
    mdir = tmp / MARGIN
    starts = np.array([p << sky.shift(k) for k, p, _ in parts], dtype=np.int64)
    ends = np.array([(p + 1) << sky.shift(k) for k, p, _ in parts], dtype=np.int64)
    paths = [partition_path(tmp, k, p) for k, p, _ in parts]
    metas = [pq.read_metadata(path) for path in paths]
    bounds = [row_group_bounds(md) for md in metas]
    collector: list = []
    written: list[tuple[int, int]] = []
    total = 0
    with _bar(progress, f"{survey}: margins", len(parts), "partitions") as bar:
        for order, npix, _ in parts:
            ranges = margin_ranges(order, npix, margin_arcsec)
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
                _write_partition(mdir, order, npix, table, collector)
                written.append((order, npix))
                total += table.num_rows
            pieces = table = None
            pa.default_memory_pool().release_unused()
            bar.update(1)
    (mdir / DATASET).mkdir(parents=True, exist_ok=True)
    _write_dataset_metadata(mdir, schema, collector)
    write_partition_info(mdir, written)
    write_properties(
        mdir / "properties",
        {
            "obs_collection": f"{survey}_margin",
            "dataproduct_type": "margin",
            "hats_nrows": total,
            "hats_col_ra": "ra",
            "hats_col_dec": "dec",
            "hats_col_healpix": HEALPIX_29,
            "hats_col_healpix_order": 29,
            "hats_primary_table_url": "..",
            "hats_margin_threshold": float(margin_arcsec),
            "hats_order": max((k for k, _ in written), default=0),
            "hats_npix_suffix": ".parquet",
            "hats_builder": "calserv refcats",
        },
    )
    return total


# --------------------------------------------------------------------------- publish


@contextmanager
def _survey_lock(root: Path, survey: str):
    with open(root / f".{survey}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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

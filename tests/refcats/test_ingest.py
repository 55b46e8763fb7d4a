"""Ingest of CSV, FITS and Parquet; bad inputs; atomic replacement."""

import threading

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from refcats import ingest as ingest_mod
from refcats.ingest import ingest, plan_partitions
from refcats.layout import RefcatError, parse_properties
from refcats.store import RefStore
from refcats.synth import synth_table
from tests.refcats.helpers import brute_cone, ids, pixels

VIZIER_NAMES = {"source_id": "source_id", "ra": "RAJ2000", "dec": "DEJ2000",
                "V": "Vmag", "V_err": "e_Vmag", "B": "Bmag", "B_err": "e_Bmag"}  # fmt: skip
MAPPED = dict(
    ra_col="RAJ2000",
    dec_col="DEJ2000",
    band_columns={"V": ("Vmag", "e_Vmag"), "B": ("Bmag", "e_Bmag")},
)


def vizier_like(n=6000, seed=3) -> pa.Table:
    t = synth_table(n, ra=359.8, dec=10.0, radius_deg=1.0, seed=seed)
    return t.select(list(VIZIER_NAMES)).rename_columns(list(VIZIER_NAMES.values()))


def check_survey(root, name, source: pa.Table, bands):
    store = RefStore(root)
    info = store.info(name)
    assert info.nrows == source.num_rows and info.bands == tuple(bands)
    truth = source.rename_columns(
        [{"RAJ2000": "ra", "DEJ2000": "dec"}.get(c, c) for c in source.column_names]
    )
    for ra, dec, r in [(359.8, 10.0, 0.5), (0.1, 10.2, 0.3), (359.5, 9.5, 0.2)]:
        got = store.cone(name, ra, dec, r)
        assert ids(got) == brute_cone(truth, ra, dec, r)
    one = store.cone(name, 359.8, 10.0, 2.0).sort_by("source_id").slice(0, 1)
    row = truth.filter(pa.compute.equal(truth["source_id"], one["source_id"][0]))
    assert one["V"][0].as_py() == pytest.approx(row["Vmag"][0].as_py())
    assert one["V_err"][0].as_py() == pytest.approx(row["e_Vmag"][0].as_py())
    assert one["ra"][0].as_py() == row["ra"][0].as_py()
    return info


@pytest.mark.parametrize("fmt", ["csv", "fits", "parquet"])
def test_ingest_formats_with_mapped_columns(tmp_path, fmt):
    table = vizier_like()
    src = tmp_path / f"cat.{fmt}"
    if fmt == "csv":
        pacsv.write_csv(table, src)
    elif fmt == "fits":
        Table(table.to_pydict()).write(src)
    else:
        pq.write_table(table, src)
    root = tmp_path / "store"
    info = ingest(root, "VIZ", src, ["V", "B"], chunk_rows=1000, partition_rows=800, **MAPPED)
    assert info.npartitions > 4
    check_survey(root, "VIZ", table, ["V", "B"])
    props = parse_properties((root / "VIZ" / "VIZ" / "properties").read_text())
    assert props["dataproduct_type"] == "object" and props["hats_col_ra"] == "ra"
    assert props["calserv_bands"] == "V,B" and int(props["hats_nrows"]) == table.num_rows
    coll = parse_properties((root / "VIZ" / "collection.properties").read_text())
    assert coll["hats_primary_table_url"] == "VIZ" and coll["default_margin"] == "VIZ_1200arcs"
    margin = parse_properties((root / "VIZ" / "VIZ_1200arcs" / "properties").read_text())
    assert margin["dataproduct_type"] == "margin" and float(margin["hats_margin_threshold"]) > 0
    # HATS layout: Norder=k/Dir=D/Npix=n.parquet, rows sorted by _healpix_29
    for pixel in pixels(root / "VIZ"):
        part = pq.read_table(root / "VIZ" / "VIZ" / pixel.relative_path())
        hp29 = part["_healpix_29"].to_numpy()
        assert np.all(np.diff(hp29) >= 0)
        assert np.all(hp29 >> (2 * (29 - pixel.order)) == pixel.npix)
    assert (root / "VIZ" / "VIZ" / "dataset" / "_common_metadata").is_file()


def test_default_columns_and_inferred_bands(tmp_path):
    table = synth_table(3000, ra=20, dec=-40, radius_deg=0.5, seed=9)
    pacsv.write_csv(table, tmp_path / "s.csv")
    info = ingest(tmp_path / "st", "S", tmp_path / "s.csv")  # bands from X / X_err pairs
    assert info.bands == ("B", "V", "R", "I")
    # Gaia-size source ids survive CSV (int64, not float)
    big = table.set_column(0, "source_id", pa.array(np.arange(3000) + 4_295_806_720_000_000_000))
    pacsv.write_csv(big, tmp_path / "big.csv")
    ingest(tmp_path / "st", "BIG", tmp_path / "big.csv", ["V"])
    got = RefStore(tmp_path / "st").cone("BIG", 20, -40, 1)
    assert ids(got) == set(big["source_id"].to_pylist())


def test_band_without_error_column(tmp_path):
    table = (
        synth_table(500, seed=2).select(["ra", "dec", "R"]).rename_columns(["ra", "dec", "Rmag"])
    )
    pq.write_table(table, tmp_path / "r.parquet")
    ingest(tmp_path / "st", "R", tmp_path / "r.parquet", band_columns={"R": ("Rmag", None)})
    got = RefStore(tmp_path / "st").cone("R", 150, 2, 2)
    assert got.num_rows == 500 and np.isnan(got["R_err"].to_numpy()).all()


def test_nan_coordinates_are_dropped_and_counted(tmp_path):
    table = synth_table(1000, seed=4)
    ra = table["ra"].to_numpy().copy()
    ra[[3, 500, 999]] = np.nan
    table = table.set_column(1, "ra", pa.array(ra))
    pq.write_table(table, tmp_path / "n.parquet")
    info = ingest(tmp_path / "st", "N", tmp_path / "n.parquet", ["V"], chunk_rows=300)
    assert info.nrows == 997 and info.dropped_rows == 3
    assert RefStore(tmp_path / "st").info("N").dropped_rows == 3


def write_csv_text(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("ra,dec,V,V_err\n", {"bands": ["V"]}, "no rows"),
        ("", {"bands": ["V"]}, "empty"),
        ("ra,dec,V,V_err\n1,2,3,0.1\n", {"bands": ["G"]}, r"missing column\(s\) 'G', 'G_err'"),
        (
            "RA,DE,V,V_err\n1,2,3,0.1\n",
            {"bands": ["V"]},
            r"'dec' \(name the.*available columns: RA, DE",
        ),
        ("ra,dec,V,V_err\n1,95,3,0.1\n", {"bands": ["V"]}, "out of range"),
        ("ra,dec,V,V_err\n360,0,3,0.1\n", {"bands": ["V"]}, r"RA must be in \[0, 360\)"),
        ("ra,dec,V,V_err\n-1,0,3,0.1\n", {"bands": ["V"]}, "out of range"),
        ("ra,dec,V,V_err\ninf,0,3,0.1\n", {"bands": ["V"]}, "out of range"),
        ("ra,dec,V,V_err\n12:30:00,0,3,0.1\n", {"bands": ["V"]}, "cannot read"),
        ("ra,dec,V,V_err\nnan,0,3,0.1\n", {"bands": ["V"]}, "all 1 rows have NaN"),
        ("ra,dec,V,V_err\n1,2,3,0.1\n", {"bands": ["ra"]}, "bad band name"),
        ("ra,dec,X\n1,2,3\n", {}, "no band found"),
    ],
)
def test_bad_inputs_raise_refcat_error(tmp_path, content, kwargs, message):
    src = write_csv_text(tmp_path / "bad.csv", content)
    root = tmp_path / "st"
    with pytest.raises(RefcatError, match=message):
        ingest(root, "BAD", src, **kwargs)
    assert not (root / "BAD").exists()
    assert not list(root.glob(".tmp-*")) if root.exists() else True
    assert RefStore(root).surveys() == []


def test_bad_names_and_files(tmp_path):
    src = write_csv_text(tmp_path / "ok.csv", "ra,dec,V,V_err\n1,2,3,0.1\n")
    with pytest.raises(RefcatError, match="bad survey name"):
        ingest(tmp_path, "../x", src, ["V"])
    with pytest.raises(RefcatError, match="no such file"):
        ingest(tmp_path, "X", tmp_path / "missing.csv", ["V"])
    with pytest.raises(RefcatError, match=r"not a|cannot read"):
        ingest(tmp_path, "X", write_csv_text(tmp_path / "x.fits", "garbage" * 100), ["V"])


def test_failed_reingest_keeps_previous_version(tmp_path, monkeypatch):
    root = tmp_path / "st"
    v1 = vizier_like(4000, seed=5)
    pq.write_table(v1, tmp_path / "v1.parquet")
    ingest(root, "VIZ", tmp_path / "v1.parquet", ["V", "B"], partition_rows=500, **MAPPED)
    before = RefStore(root).cone("VIZ", 359.8, 10, 3).sort_by("source_id")

    # a bad row in a later chunk: refused after earlier chunks were already read
    v2 = vizier_like(4000, seed=6)
    dec = v2["DEJ2000"].to_numpy().copy()
    dec[3500] = 123.0
    pq.write_table(v2.set_column(2, "DEJ2000", pa.array(dec)), tmp_path / "v2.parquet")
    with pytest.raises(RefcatError, match="out of range"):
        ingest(root, "VIZ", tmp_path / "v2.parquet", ["V", "B"], chunk_rows=1000, **MAPPED)

    # a crash while writing the margins (after every partition was written)
    def boom(*args, **kwargs):
        raise OSError("disk full")

    pq.write_table(vizier_like(4000, seed=7), tmp_path / "v3.parquet")
    monkeypatch.setattr(ingest_mod, "_write_margins", boom)
    with pytest.raises(OSError, match="disk full"):
        ingest(root, "VIZ", tmp_path / "v3.parquet", ["V", "B"], partition_rows=500, **MAPPED)

    after = RefStore(root).cone("VIZ", 359.8, 10, 3).sort_by("source_id")
    assert after.equals(before)
    assert not list(root.glob(".tmp-*"))
    assert len(list(root.glob(".VIZ@v*"))) == 1


def test_reingest_is_atomic_for_concurrent_readers(tmp_path):
    root = tmp_path / "st"
    versions = [vizier_like(3000 + 1000 * i, seed=10 + i) for i in range(3)]
    for i, t in enumerate(versions):
        pq.write_table(t, tmp_path / f"v{i}.parquet")
    ingest(root, "VIZ", tmp_path / "v0.parquet", ["V"], partition_rows=400, **MAPPED)
    expected = {
        len(brute_cone(t.rename_columns(["source_id", "ra", "dec", *t.column_names[3:]]),
                       359.8, 10.0, 2.0)) for t in versions
    }  # fmt: skip
    seen, errors, stop = set(), [], threading.Event()

    def reader():
        store = RefStore(root, cache_bytes=1 << 20)
        while not stop.is_set():
            try:
                seen.add(store.cone("VIZ", 359.8, 10.0, 2.0).num_rows)
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in (1, 2, 1):
        ingest(root, "VIZ", tmp_path / f"v{i}.parquet", ["V"], partition_rows=400, **MAPPED)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert seen <= expected and len(seen) >= 2
    assert len(list(root.glob(".VIZ@v*"))) == 2  # current + previous


def test_chunked_spill_equals_single_chunk(tmp_path):
    table = vizier_like(5000, seed=8)
    pq.write_table(table, tmp_path / "c.parquet")
    a = ingest(tmp_path / "a", "C", tmp_path / "c.parquet", ["V"], chunk_rows=100_000,
               partition_rows=700, **MAPPED)  # fmt: skip
    b = ingest(tmp_path / "b", "C", tmp_path / "c.parquet", ["V"], chunk_rows=333,
               partition_rows=700, **MAPPED)  # fmt: skip
    assert pixels(a.path) == pixels(b.path)
    for pixel in pixels(a.path):
        rel = f"C/{pixel.relative_path()}"
        assert pq.read_table(f"{a.path}/{rel}").equals(pq.read_table(f"{b.path}/{rel}"))


def test_plan_partitions_respects_threshold():
    rng = np.random.default_rng(0)
    hist = np.zeros(12 << 20, dtype=np.int64)
    np.add.at(hist, rng.integers(0, 1 << 18, 200_000), 1)  # dense in base pixel 0
    np.add.at(hist, rng.integers(0, 12 << 20, 5_000), 1)
    parts = plan_partitions(hist, 10_000)
    assert sum(c for _, c in parts) == hist.sum()
    assert max(c for _, c in parts) <= 10_000
    covered = np.zeros(hist.size, bool)
    for pixel, _ in parts:
        s = 2 * (10 - pixel.order)
        assert not covered[pixel.npix << s : (pixel.npix + 1) << s].any()
        covered[pixel.npix << s : (pixel.npix + 1) << s] = True
    assert not hist[~covered].any()

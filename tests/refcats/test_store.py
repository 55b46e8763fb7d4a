"""Cone and footprint queries agree with a brute-force angular search on the same stars."""

import healpy as hp
import numpy as np
import pyarrow as pa
import pytest

from refcats.layout import RefcatError
from refcats.store import RefStore, RowGroupCache, _Group, enclosing_cone
from tests.refcats.helpers import brute_cone, ids, pixels

EDGE_CASES = [
    (0.0, 0.0, 1.0),  # on RA = 0
    (359.99, 0.3, 2.5),  # wraps through RA = 0
    (0.01, -0.5, 0.2),
    (123.0, 90.0, 2.0),  # north pole
    (0.0, -90.0, 2.0),  # south pole
    (45.0, 89.95, 0.1),  # cone containing the pole
    (200.0, -89.9, 0.5),
    (359.9, -30.0, 0.15),  # small dense clump on RA wrap
    (10.0, 10.0, 0.0),  # zero radius
    (80.0, 20.0, 30.0),  # large cone
    (80.0, 20.0, 180.0),  # whole sky
]


def test_store_lists_survey(sky_store, sky_data):
    info = {i.name: i for i in RefStore(sky_store).surveys()}
    assert set(info) == {"SKY", "SKYNM"}
    sky = info["SKY"]
    assert sky.nrows == sky_data.num_rows
    assert sky.bands == ("B", "V", "R", "I")
    assert sky.npartitions == len(pixels(sky.path)) > 30
    assert sky.max_order > sky.min_order
    assert sky.margin_arcsec == 600.0 and info["SKYNM"].margin_arcsec == 0.0
    assert 0.05 < sky.sky_fraction <= 1.0  # order-7 cells holding a star


@pytest.mark.parametrize("survey", ["SKY", "SKYNM"])
@pytest.mark.parametrize(("ra", "dec", "radius"), EDGE_CASES)
def test_cone_edge_cases_match_brute_force(sky_store, sky_data, survey, ra, dec, radius):
    got = RefStore(sky_store).cone(survey, ra, dec, radius)
    assert ids(got) == brute_cone(sky_data, ra, dec, radius)
    assert len(ids(got)) == got.num_rows  # no duplicates from margins


def test_random_cones_match_brute_force(sky_store, sky_data, rng):
    store = RefStore(sky_store)
    clumps = [(0.0, 0.0), (0.0, 88.0), (0.0, -88.0), (359.9, -30.0)]
    for k in range(150):
        if k % 2:
            ra, dec = rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-1, 1)))
        else:
            cra, cdec = clumps[k % 4]
            ra = (cra + rng.normal(0, 2)) % 360.0
            dec = float(np.clip(cdec + rng.normal(0, 2), -90, 90))
        radius = float(10 ** rng.uniform(-2, 0.7))
        got = store.cone("SKY", ra, dec, radius)
        assert ids(got) == brute_cone(sky_data, ra, dec, radius), (ra, dec, radius)
        assert got.num_rows == len(ids(got))


def test_cones_on_partition_corners(sky_store, sky_data):
    """Cones centred on partition vertices and edges, inside and beyond the margin width."""
    store = RefStore(sky_store)
    parts = pixels(store.info("SKY").path)
    dense = [(p.order, p.npix) for p in parts if p.order >= 3][:25]
    assert dense
    for k, p in dense:
        vecs = hp.boundaries(1 << k, p, step=2, nest=True).T
        for vec in vecs[::3]:
            ra, dec = hp.vec2ang(vec, lonlat=True)
            for radius in (0.02, 0.15, 0.4):  # 0.15° < 600" margin < 0.4°
                got = store.cone("SKY", float(ra[0]), float(dec[0]), radius)
                assert ids(got) == brute_cone(sky_data, float(ra[0]), float(dec[0]), radius)
                assert got.num_rows == len(ids(got))


def test_cone_columns_and_types(sky_store):
    store = RefStore(sky_store)
    got = store.cone("SKY", 0.0, 0.0, 0.3)
    assert got.column_names == [
        "source_id", "ra", "dec", "B", "B_err", "V", "V_err", "R", "R_err", "I", "I_err",
    ]  # fmt: skip
    assert got.schema.field("ra").type == pa.float64()
    assert got.schema.field("V").type == pa.float32()
    assert store.cone("SKY", 0.0, 0.0, 0.3, columns=["ra", "dec", "V"]).column_names == [
        "ra", "dec", "V",
    ]  # fmt: skip
    empty = store.cone("SKY", 100.0, 50.0, 1e-6)
    assert empty.num_rows == 0 and empty.column_names == got.column_names
    with pytest.raises(RefcatError, match="no column"):
        store.cone("SKY", 0.0, 0.0, 0.3, columns=["Z"])
    with pytest.raises(RefcatError, match="unknown reference survey 'NOPE'"):
        store.cone("NOPE", 0.0, 0.0, 0.3)
    with pytest.raises(RefcatError, match="bad cone centre"):
        store.cone("SKY", 0.0, 95.0, 0.3)


def test_footprint_across_ra_zero(sky_store, sky_data, rng):
    store = RefStore(sky_store)
    ra = (rng.uniform(-0.4, 0.4, 300)) % 360.0
    dec = rng.uniform(-0.3, 0.3, 300)
    found = store.footprint(ra, dec, pad_arcsec=30.0)
    assert found.warnings == []
    got = found.tables
    assert set(got) == {"SKY", "SKYNM"}
    ra0, dec0, radius = enclosing_cone(ra, dec)
    assert abs(((ra0 + 180) % 360) - 180) < 0.05 and abs(dec0) < 0.05
    assert 0.3 < radius < 0.6
    expected = brute_cone(sky_data, ra0, dec0, radius + 30 / 3600)
    assert ids(got["SKY"]) == expected
    # every star inside the catalogue's bounding box is there
    t = sky_data
    box = (np.abs(((t["ra"].to_numpy() + 180) % 360) - 180) < 0.39) & (
        np.abs(t["dec"].to_numpy()) < 0.29
    )
    assert set(t["source_id"].to_numpy()[box].tolist()) <= ids(got["SKY"])
    assert got["SKYNM"].column_names == ["source_id", "ra", "dec", "V", "V_err"]


def test_footprint_at_pole_and_nowhere(sky_store, sky_data):
    store = RefStore(sky_store)
    ra = np.linspace(0, 350, 36)
    dec = np.full(36, 89.5)
    got = store.footprint(ra, dec, pad_arcsec=0).tables
    _, dec0, radius = enclosing_cone(ra, dec)
    assert dec0 == pytest.approx(90.0) and radius == pytest.approx(0.5, abs=1e-6)
    assert ids(got["SKY"]) == brute_cone(sky_data, 0.0, 90.0, 0.5)
    assert store.footprint(np.array([]), np.array([])).tables == {}
    assert store.footprint(np.array([np.nan]), np.array([1.0])).tables == {}


def test_lru_cache_respects_byte_budget(sky_store, sky_data, rng):
    full = RefStore(sky_store)
    small = RefStore(sky_store, cache_bytes=600_000)
    for _ in range(40):
        ra, dec = float(rng.normal(0, 2)) % 360, float(rng.normal(0, 2))
        a = small.cone("SKY", ra, dec, 0.5)
        assert small.cache.nbytes <= 600_000
        assert ids(a) == ids(full.cone("SKY", ra, dec, 0.5))
    assert small.cache.nbytes > 0 and len(small.cache) < len(full.cache)
    # a warm query is served from the cache
    full.cone("SKY", 0.0, 0.0, 0.3)
    misses = full.cache.misses
    full.cone("SKY", 0.0, 0.0, 0.3)
    assert full.cache.misses == misses


def test_row_group_cache_lru_order():
    cache = RowGroupCache(max_bytes=250)

    def group(n):
        return _Group(pa.table({"x": [0]}), None, True, n)

    cache.put(("a", 0), group(100))
    cache.put(("b", 0), group(100))
    assert cache.get(("a", 0)) is not None  # a is now most recent
    cache.put(("c", 0), group(100))  # evicts b
    assert cache.get(("b", 0)) is None and cache.get(("a", 0)) is not None
    assert cache.nbytes == 200
    cache.put(("big", 0), group(1000))  # larger than the budget: not kept
    assert cache.get(("big", 0)) is None and cache.nbytes == 200

"""Proper motions: positions are moved to the requested epoch before the distance cut."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from refcats.ingest import ingest
from refcats.layout import RefcatError
from refcats.sky import angular_distance_deg, propagate
from refcats.store import RefStore
from refcats.synth import synth_table


def test_propagate_matches_small_angle_formula():
    ra, dec = np.array([10.0, 200.0]), np.array([0.0, 60.0])
    new_ra, new_dec = propagate(ra, dec, np.array([1000.0, 500.0]), np.array([-200.0, 0.0]), 20)
    assert new_dec == pytest.approx(dec + np.array([-200.0, 0.0]) * 20 / 3.6e6, abs=1e-6)
    expected_ra = ra + np.array([1000.0, 500.0]) * 20 / 3.6e6 / np.cos(np.radians(dec))
    assert new_ra == pytest.approx(expected_ra, abs=1e-6)  # 4 mas: curvature of the step
    same = propagate(ra, dec, np.array([np.nan, 0.0]), np.array([np.nan, 0.0]), 20)
    assert same[0] == pytest.approx(ra) and same[1] == pytest.approx(dec)


def test_cone_at_another_epoch_uses_moved_positions(tmp_path):
    rng = np.random.default_rng(5)
    table = synth_table(4000, ra=40.0, dec=-20.0, radius_deg=0.5, seed=2)
    pmra = rng.normal(0, 400, table.num_rows).astype(np.float32)
    pmdec = rng.normal(0, 400, table.num_rows).astype(np.float32)
    pmra[:10] = np.nan  # stars without a proper motion stay put
    table = table.append_column("pm_ra", pa.array(pmra)).append_column("pm_de", pa.array(pmdec))
    pq.write_table(table, tmp_path / "pm.parquet")
    with pytest.raises(RefcatError, match="epoch"):
        ingest(tmp_path / "st", "PM", tmp_path / "pm.parquet", ["V"], pm_columns=("pm_ra", "pm_de"))
    info = ingest(tmp_path / "st", "PM", tmp_path / "pm.parquet", ["V"],
                  pm_columns=("pm_ra", "pm_de"), epoch=2016.0, partition_rows=500,
                  margin_arcsec=120)  # fmt: skip
    assert info.epoch == 2016.0
    store = RefStore(tmp_path / "st")
    assert store.info("PM").epoch == 2016.0
    ra, dec = table["ra"].to_numpy(), table["dec"].to_numpy()
    moved_ra, moved_dec = propagate(ra, dec, pmra, pmdec, 30.0)
    ids = table["source_id"].to_numpy()
    for ra0, dec0, radius in [(40.0, -20.0, 0.2), (40.3, -20.1, 0.01), (39.8, -19.9, 0.03)]:
        now = store.cone("PM", ra0, dec0, radius, epoch=2046.0)
        truth = ids[angular_distance_deg(ra0, dec0, moved_ra, moved_dec) <= radius]
        assert set(now["source_id"].to_pylist()) == set(truth.tolist())
        then = store.cone("PM", ra0, dec0, radius)  # no epoch: catalogue positions
        assert set(then["source_id"].to_pylist()) == set(
            ids[angular_distance_deg(ra0, dec0, ra, dec) <= radius].tolist()
        )
    got = store.cone("PM", 40.0, -20.0, 0.2, epoch=2046.0).sort_by("source_id")
    row = np.searchsorted(ids, got["source_id"].to_numpy())
    assert got["ra"].to_numpy() == pytest.approx(moved_ra[row], abs=1e-9)
    assert set(got["source_id"].to_pylist()) != set(
        store.cone("PM", 40.0, -20.0, 0.2).column("source_id").to_pylist()
    )

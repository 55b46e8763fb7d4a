"""Fixtures for the reference-store tests: synthetic surveys in temporary stores, no services."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from refcats.ingest import ingest
from refcats.synth import synth_table


def mixed_sky(seed: int = 1) -> pa.Table:
    """All-sky background plus dense clumps on RA=0 and at both poles (many partition orders)."""
    parts = [
        synth_table(20_000, radius_deg=None, seed=seed),
        synth_table(25_000, ra=0.0, dec=0.0, radius_deg=4.0, seed=seed + 1, first_id=100_001),
        synth_table(12_000, ra=0.0, dec=90.0, radius_deg=3.0, seed=seed + 2, first_id=200_001),
        synth_table(12_000, ra=0.0, dec=-90.0, radius_deg=3.0, seed=seed + 3, first_id=300_001),
        synth_table(8_000, ra=359.9, dec=-30.0, radius_deg=0.5, seed=seed + 4, first_id=400_001),
    ]
    return pa.concat_tables(parts)


@pytest.fixture(scope="session")
def sky_data() -> pa.Table:
    return mixed_sky()


@pytest.fixture(scope="session")
def sky_store(tmp_path_factory, sky_data) -> Path:
    """A store with survey SKY: small partitions (≤ 2000 rows) and a 600" margin,
    and SKYNM: the same stars without a margin catalogue."""
    root = tmp_path_factory.mktemp("store")
    src = root.parent / "sky.parquet"
    pq.write_table(sky_data, src)
    kw = dict(partition_rows=2_000, chunk_rows=20_000)
    ingest(root, "SKY", src, ["B", "V", "R", "I"], margin_arcsec=600.0, **kw)
    ingest(root, "SKYNM", src, ["V"], margin_arcsec=0.0, **kw)
    return root


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)

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


SYNTH_REF = Path(__file__).resolve().parents[1] / "data" / "synth-deep" / "ref.csv"


@pytest.fixture(scope="session")
def synth_ref() -> pa.Table:
    """The reference stars of the synth-deep sample frame (calserv column names)."""
    import pyarrow.csv as pacsv

    return pacsv.read_csv(SYNTH_REF)


@pytest.fixture(scope="session")
def viz_collection(tmp_path_factory, synth_ref) -> Path:
    """synth-deep's reference stars as a hats-import collection with VizieR column names,
    one directory per partition (npix_suffix "/") and a 60" margin."""
    from tests.refcats.servers import hats_import_collection

    return hats_import_collection(synth_ref, tmp_path_factory.mktemp("hats-import"))


@pytest.fixture(scope="session")
def http_server(viz_collection):
    from tests.refcats.servers import HttpServer

    server = HttpServer(viz_collection.parent)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(viz_collection):
    from tests.refcats.servers import S3Server

    server = S3Server()
    server.upload(viz_collection, "viz")
    yield server
    server.stop()

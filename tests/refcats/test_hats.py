"""Interoperability with the real HATS tools: what calserv writes passes hats' strict validation
and opens in lsdb with its margin; a hats-import collection (VizieR names, one directory per
partition) registered with a band map is read locally, over HTTP and over S3."""

import logging
import shutil

import lsdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hats.io.validation import is_valid_catalog

from refcats.cli import refcat
from refcats.ingest import ingest
from refcats.location import PartitionCache
from refcats.registry import Registration, save
from refcats.store import RefStore
from refcats.synth import synth_table
from tests.refcats.helpers import brute_cone, collection_location, ids
from tests.refcats.servers import BAND_MAP, MARGIN_ARCSEC

CONES = [(150.1, 2.2, 0.3), (150.0, 2.0, 0.01), (150.25, 2.1, 0.05), (150.1, 2.2, 2.0)]


def test_ingested_survey_is_a_strictly_valid_collection_that_lsdb_opens_with_margin(
    sky_store, sky_data, caplog
):
    caplog.set_level(logging.WARNING)
    assert is_valid_catalog(sky_store / "SKY", strict=True), caplog.text
    assert is_valid_catalog(sky_store / "SKYNM", strict=True), caplog.text
    cat = lsdb.open_catalog(sky_store / "SKY")
    assert cat.margin is not None and cat.margin.hc_structure.catalog_info.margin_threshold == 600
    store = RefStore(sky_store)
    for ra, dec, radius in [(0.0, 0.0, 0.5), (359.9, -30.0, 0.1), (123.0, 89.5, 1.0)]:
        theirs = cat.cone_search(ra, dec, radius * 3600).compute()
        ours = store.cone("SKY", ra, dec, radius)
        assert (
            set(theirs["source_id"].tolist()) == ids(ours) == brute_cone(sky_data, ra, dec, radius)
        )
    assert lsdb.open_catalog(sky_store / "SKYNM").margin is None


def test_superseded_versions_are_removed_keeping_one_for_rollback(tmp_path):
    pq.write_table(synth_table(300, seed=1), tmp_path / "a.parquet")
    for _ in range(3):
        ingest(tmp_path / "st", "S", tmp_path / "a.parquet", ["V"], margin_arcsec=60)
    assert len(list((tmp_path / "st").glob(".S@v*"))) == 2
    assert is_valid_catalog(tmp_path / "st" / "S", strict=True)


def register(root, name, location, *extra):
    return CliRunner().invoke(refcat, ["register", name, location, *extra, "--root", str(root)])


def check_cones(store, name, truth):
    info = store.info(name)
    assert info.bands == ("V", "R", "B") and info.nrows == truth.num_rows
    assert info.margin_arcsec == MARGIN_ARCSEC and info.npartitions > 3
    for ra, dec, radius in CONES:
        got = store.cone(name, ra, dec, radius)
        assert got.column_names == ["ra", "dec", "V", "V_err", "R", "R_err", "B", "B_err"]
        near = brute_cone(truth, ra, dec, radius)
        rows = truth.filter(np.isin(truth["source_id"].to_numpy(), list(near)))
        assert sorted(got["ra"].to_pylist()) == sorted(rows["ra"].to_pylist())
        assert sorted(got["R"].to_pylist()) == pytest.approx(sorted(rows["R"].to_pylist()))


@pytest.mark.parametrize("where", ["local", "http", "s3"])
def test_registered_hats_import_collection_is_read_with_its_band_map(
    tmp_path, viz_collection, synth_ref, where, request
):
    location, extra = collection_location(where, viz_collection, request)
    before = sorted(p.name for p in viz_collection.rglob("*"))
    result = register(tmp_path, "VIZ", location, *BAND_MAP, *extra)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split()[:4] == ["VIZ", "ok", "V,R,B", "1500"]
    assert sorted(p.name for p in viz_collection.rglob("*")) == before  # nothing written there
    disk = PartitionCache(tmp_path / "cache", 1 << 30)
    store = RefStore(tmp_path, disk_cache=disk)
    check_cones(store, "VIZ", synth_ref)
    fetched = disk.fetches
    assert (fetched > 0) == (where != "local")
    check_cones(RefStore(tmp_path, disk_cache=disk), "VIZ", synth_ref)  # a second worker
    assert disk.fetches == fetched  # partitions are immutable: fetched once per machine


def test_partition_cache_keeps_its_byte_budget(tmp_path, http_server, viz_collection, synth_ref):
    url = f"{http_server.url}/{viz_collection.name}"
    save(tmp_path, Registration("VIZ", url, {"R": ("Rmag", "e_Rmag")}))
    files = sorted((viz_collection / "viz" / "dataset").rglob("Npix=*.parquet"))
    budget = 3 * max(f.stat().st_size for f in files)
    disk = PartitionCache(tmp_path / "cache", budget)
    store = RefStore(tmp_path, disk_cache=disk)
    got = store.cone("VIZ", 150.1, 2.2, 2.0)  # every partition
    assert got.num_rows == synth_ref.num_rows
    assert 0 < disk.nbytes() <= budget and disk.fetches == len(files)


def test_list_flags_unusable_surveys_and_remove_forgets_them(tmp_path, viz_collection):
    result = register(tmp_path, "NOBANDS", str(viz_collection))  # VizieR names, no map
    assert result.exit_code == 1
    assert "UNUSABLE" in result.output and "no usable band" in result.output
    result = register(tmp_path, "BADMAP", str(viz_collection), "--band", "V:Vmag:e_Vmagg")
    assert result.exit_code == 1 and "e_Vmagg" in result.output
    assert register(tmp_path, "GOOD", str(viz_collection), *BAND_MAP).exit_code == 0
    result = CliRunner().invoke(refcat, ["list", "--root", str(tmp_path)])
    assert result.exit_code == 1
    lines = {line.split()[0]: line.split()[1] for line in result.output.splitlines()[1:4]}
    assert lines == {"BADMAP": "UNUSABLE", "GOOD": "ok", "NOBANDS": "UNUSABLE"}
    assert "UNUSABLE reference survey(s): BADMAP, NOBANDS" in result.output
    for name in ("BADMAP", "NOBANDS"):
        result = CliRunner().invoke(refcat, ["remove", name, "--root", str(tmp_path)])
        assert result.exit_code == 0 and "files are untouched" in result.output
    assert viz_collection.is_dir()
    result = CliRunner().invoke(refcat, ["list", "--root", str(tmp_path)])
    assert result.exit_code == 0 and "UNUSABLE" not in result.output
    result = register(tmp_path, "X", str(tmp_path / "nowhere"), *BAND_MAP)
    assert result.exit_code == 1 and "no such directory" in result.output


def test_survey_failing_at_query_time_is_a_warning(tmp_path, viz_collection, sky_store):
    broken, root = tmp_path / "broken", tmp_path / "store"
    shutil.copytree(viz_collection, broken)
    assert register(root, "BROKEN", str(broken), *BAND_MAP).exit_code == 0
    assert register(root, "GOOD", str(viz_collection), *BAND_MAP).exit_code == 0
    shutil.rmtree(broken / "viz" / "dataset")  # e.g. an unmounted disk, a deleted bucket
    found = RefStore(root).footprint(np.array([150.0, 150.2]), np.array([2.1, 2.3]))
    assert set(found.tables) == {"GOOD"}
    assert len(found.warnings) == 1 and found.warnings[0].startswith("reference survey BROKEN")
    result = CliRunner().invoke(refcat, ["list", "--root", str(root)])
    assert result.exit_code == 1 and "UNUSABLE BROKEN: unreadable" in result.output


def test_built_survey_is_removed_with_its_versions(tmp_path):
    pq.write_table(synth_table(300, seed=1), tmp_path / "a.parquet")
    for _ in range(2):
        ingest(tmp_path / "st", "S", tmp_path / "a.parquet", ["V"], margin_arcsec=0)
    result = CliRunner().invoke(refcat, ["remove", "S", "--root", str(tmp_path / "st")])
    assert result.exit_code == 0 and "deleted" in result.output
    assert not list((tmp_path / "st").glob(".S@v*")) and not (tmp_path / "st" / "S").exists()
    result = CliRunner().invoke(refcat, ["remove", "S", "--root", str(tmp_path / "st")])
    assert result.exit_code == 1 and "no reference survey 'S'" in result.output


def test_republished_remote_catalogue_is_fetched_anew(tmp_path, viz_collection, synth_ref):
    """Cached partitions belong to one version: a new properties text (a republished
    catalogue) means new cache entries, never a mixture of old and new files."""
    from tests.refcats.servers import HttpServer

    served = tmp_path / "served"
    shutil.copytree(viz_collection, served / "viz")
    server = HttpServer(served)
    try:
        save(tmp_path / "st", Registration("VIZ", f"{server.url}/viz", {"R": ("Rmag", "e_Rmag")}))
        disk = PartitionCache(tmp_path / "cache", 1 << 30)
        first = RefStore(tmp_path / "st", disk_cache=disk).cone("VIZ", 150.1, 2.2, 0.2)
        fetched = disk.fetches
        props = served / "viz" / "viz" / "properties"
        props.write_text(props.read_text() + "hats_creation_date=2030-01-01T00:00UTC\n")
        (served / "viz" / "viz" / "hats.properties").write_text(props.read_text())
        again = RefStore(tmp_path / "st", disk_cache=disk).cone("VIZ", 150.1, 2.2, 0.2)
    finally:
        server.stop()
    assert disk.fetches == 2 * fetched > 0
    assert again.sort_by("ra").equals(first.sort_by("ra"))

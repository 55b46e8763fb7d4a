"""A reference survey is consulted only for frames in its footprint: a far frame reads none of
its partitions, and a remote survey that has stopped answering is named in a warning (and
counted) only for frames it would have covered, even by a process started after it went down."""

from __future__ import annotations

import shutil

import numpy as np

from refcats.location import PartitionCache
from refcats.registry import Registration, save
from refcats.store import RefStore
from tests.refcats.servers import HttpServer

NEAR = (np.array([150.05, 150.15, 150.2]), np.array([2.1, 2.2, 2.3]))
FAR = (np.array([330.0, 330.1]), np.array([-60.0, -60.1]))


def test_a_down_survey_warns_only_for_frames_in_its_footprint(tmp_path, viz_collection):
    served = tmp_path / "served"
    shutil.copytree(viz_collection, served / "viz")
    server = HttpServer(served)
    root = tmp_path / "st"
    save(root, Registration("VIZ", f"{server.url}/viz", {"R": ("Rmag", "e_Rmag")}))
    cache_dir = tmp_path / "cache"
    try:
        store = RefStore(root, disk_cache=PartitionCache(cache_dir, 1 << 30))
        assert store.footprint(*NEAR).tables["VIZ"].num_rows > 0
        reads = (store.cache.misses, store.disk_cache.fetches)
        far = store.footprint(*FAR)
        assert far.tables == {} and far.warnings == []
        assert (store.cache.misses, store.disk_cache.fetches) == reads  # nothing was read
    finally:
        server.stop()

    restarted = RefStore(root, disk_cache=PartitionCache(cache_dir, 1 << 30))
    far = restarted.footprint(*FAR)
    assert far.warnings == [] and restarted.stats().get("unreadable:VIZ", 0) == 0
    near = restarted.footprint(*NEAR)
    assert len(near.warnings) == 1 and "reference survey VIZ skipped" in near.warnings[0]
    again = restarted.footprint(*NEAR)  # not asked again for a minute: the same answer at once
    assert again.warnings == near.warnings
    assert restarted.stats()["unreadable:VIZ"] == 2


def test_a_survey_never_seen_warns_everywhere(tmp_path):
    """Without a footprint on record (never read by this machine), a survey that cannot be read
    is named for every frame: nobody can say it does not cover it."""
    root = tmp_path / "st"
    save(root, Registration("NEVER", "http://127.0.0.1:9/none", {"R": ("R", None)}))
    store = RefStore(root, disk_cache=PartitionCache(tmp_path / "cache", 1 << 20))
    assert "reference survey NEVER skipped" in store.footprint(*FAR).warnings[0]
    assert store.reachable("NEVER").startswith("unreachable")
